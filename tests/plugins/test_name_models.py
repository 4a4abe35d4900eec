"""The name VAE's training (tiny runs, exact resume), its losses and its generator: determinism
alone vs batched, variations, and the content rules on outputs (refused names are resampled)."""
from __future__ import annotations

import math

import pytest
import torch

from engine import sdk
from plugins.name import checkpoint
from plugins.name.data import Example
from plugins.name.generator import NameGenerator
from plugins.name.training import TrainConfig, evaluate_vae, train_vae
from plugins.name.vae import NameVAE, VAEConfig, kl_weight
from plugins.name.vocab import EOS, PAD, UNK, Vocab, batch

TINY = {"emb": 16, "hidden": 32, "latent": 8, "style_emb": 4}
NAMES = {"person-en": ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov"],
         "person-zh": ["王伟", "李娜", "张敏", "刘洋", "陈静"],
         "place": ["Aachen", "Bologna", "Cremona", "Dresden", "Erfurt"]}


def examples(names=NAMES) -> list[Example]:
    return [Example(style, n, "train") for style, ns in names.items() for n in ns]


def _weights(stem) -> dict[str, torch.Tensor]:
    model = NameVAE(VAEConfig(**checkpoint.read_meta(stem)["config"]))
    checkpoint.load_into(stem, model)
    return model.state_dict()


def test_vocab_batches_end_with_eos_and_pad():
    v = Vocab.from_names(["ab", "b"])
    x, y = batch(v, ["ab", "b", "zz"], 4)
    assert x[:, 0].tolist() == [1, 1, 1] and y[0, :3].tolist() == [4, 5, EOS] and y[0, 3] == PAD
    assert y[2, :2].tolist() == [UNK, UNK]  # unknown characters become <unk>
    assert v.decode([4, 5, EOS, 4]) == "ab"


def test_kl_annealing_and_word_dropout():
    assert kl_weight(0, 100) == 0.0 and kl_weight(50, 100) == 0.5 and kl_weight(500, 100) == 1.0
    torch.manual_seed(0)
    cfg = VAEConfig(vocab_size=10, n_styles=2, **TINY)
    model = NameVAE(cfg)
    x, y = batch(Vocab(tuple("abcdef")), ["abc", "fed"], cfg.max_len)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    plain = model.loss(x, y, torch.tensor([0, 1]), kl_weight=0.0, generator=g())
    half = model.loss(x, y, torch.tensor([0, 1]), kl_weight=0.5, generator=g())
    assert torch.allclose(half["loss"], plain["rec"] + 0.5 * plain["kl"])
    assert float(plain["kl"].detach()) > 0
    dropped = model.loss(x, y, torch.tensor([0, 1]), kl_weight=0.0, word_dropout=1.0, generator=g())
    assert not torch.allclose(dropped["rec"], plain["rec"])  # every input char became <unk>


def test_tiny_training_learns_and_resumes_exactly(tmp_path):
    torch.set_num_threads(1)
    cfg = TrainConfig(steps=40, batch_size=16, kl_anneal_steps=20, checkpoint_every=10, lr=1e-2)
    train, valid = examples(), examples()
    straight = train_vae(train, valid, tmp_path / "straight", cfg, model_cfg=TINY, progress=False)
    h = straight["history"]
    assert h[-1]["nll_per_char"] < h[0]["nll_per_char"] - 0.3, h
    # stopped at step 17, then resumed from the checkpoint: the same weights, bit for bit
    first = train_vae(train, valid, tmp_path / "resumed", cfg, model_cfg=TINY, progress=False,
                      stop=lambda step: step == 17)
    assert first["step"] == 17
    resumed = train_vae(train, valid, tmp_path / "resumed", cfg, progress=False)
    assert resumed["step"] == 40
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["nll_per_char"] for r in resumed["history"]] == [r["nll_per_char"] for r in h]


def test_the_bound_is_a_bound():
    """The per-char figure is the negative ELBO: above the reconstruction term, KL ≥ 0."""
    torch.manual_seed(0)
    v = Vocab.from_names(n for ns in NAMES.values() for n in ns)
    model = NameVAE(VAEConfig(vocab_size=len(v), n_styles=5, **TINY))
    f = evaluate_vae(model, v, examples())
    assert f["nll_per_char"] >= f["rec_per_char"] and f["kl_per_name"] >= 0
    assert abs(f["rec_per_char"] - math.log(len(v))) < 1.0  # untrained ≈ uniform


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny VAE that has learnt a few names of three styles (and 'Gore', a refused word)."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("vae") / "vae"
    names = {**NAMES, "project": ["Gore"] * 4 + ["Gorden", "Gorman"]}
    train_vae(examples(names), [], out, TrainConfig(steps=250, batch_size=32, kl_anneal_steps=100, lr=1e-2,
                                                    checkpoint_every=1000), model_cfg=TINY, progress=False)
    gen = NameGenerator(out)
    gen.load("cpu")
    return gen


def _items(options, seed=5, n=6, **kw):
    return [sdk.Item(command="name", options=options, seed=seed, index=i, **kw) for i in range(n)]


def test_an_output_is_the_same_alone_or_in_any_batch(trained):
    items = _items({"style": "person-en"}) + _items({"style": "person-zh", "variety": 1.0}, seed=9) \
        + _items({"style": "place", "starts_with": "Bo"}, seed=2)
    together = [o.text for o in trained.generate(items)]
    alone = [trained.generate([it])[0].text for it in items]
    reversed_ = [o.text for o in trained.generate(items[::-1])][::-1]
    assert together == alone == reversed_
    assert len(set(together[:6])) > 1  # different indices, different names
    assert all(t.startswith("Bo") for t in together[12:])
    assert [o.text for o in trained.generate(_items({"style": "person-en"}, seed=6))] != together[:6]


def test_the_generator_learnt_its_styles(trained):
    zh = [o.text for o in trained.generate(_items({"style": "person-zh", "variety": 0.0}, n=10))]
    assert all(all("\u4e00" <= c <= "\u9fff" for c in n) for n in zh), zh
    en = [o.text for o in trained.generate(_items({"style": "person-en", "variety": 0.0}, n=10))]
    assert all(n.isascii() for n in en), en


def test_variations_stay_near_their_source(trained):
    base = {"style": "place"}
    src = trained.generate(_items(base, seed=3, n=4))[2].text
    var = [o.text for o in trained.generate(_items(base, seed=77, n=6, action="variations", source=(3, 2)))]
    again = [o.text for o in trained.generate(_items(base, seed=77, n=6, action="variations", source=(3, 2)))]
    assert var == again and len(var) == 6 and all(var)
    assert src


def test_refused_names_are_resampled_never_returned(trained):
    """'Gore' (global.violence) is what this model mostly says for `project`: every output is
    another name, and says how many candidates the rules refused."""
    assert not sdk.check_text("Gore").allowed
    outs = trained.generate(_items({"style": "project", "variety": 1.0}, n=12))
    assert all(sdk.check_text(o.text).allowed and o.text.casefold() != "gore" for o in outs)
    assert sum(o.meta.get("resampled", 0) for o in outs) >= 4, [(o.text, o.meta) for o in outs]
    assert all(o.meta["style"] == "project" for o in outs)


def test_a_prefix_the_rules_refuse_fails_instead_of_returning_it(trained):
    with pytest.raises(RuntimeError, match="no acceptable name"):
        trained.generate(_items({"style": "project", "starts_with": "porn"}, n=1))


def test_importance_weighting_tightens_the_bound(trained):
    from plugins.name.training import importance_weighted_nll

    ex = examples()
    elbo = evaluate_vae(trained.model, trained.vocab, ex)["nll_per_char"]
    # estimates, so compared as means over noise draws (the bound holds in expectation)
    iw1 = sum(importance_weighted_nll(trained.model, trained.vocab, ex, k=1, seed=s) for s in range(8)) / 8
    iw16 = sum(importance_weighted_nll(trained.model, trained.vocab, ex, k=16, seed=s) for s in range(8)) / 8
    assert abs(iw1 - elbo) < 0.15 * elbo  # k=1 is the ELBO (another noise draw)
    assert iw16 < iw1
    # the k samples are decoded in chunks of any size: the same bound
    one_go = importance_weighted_nll(trained.model, trained.vocab, ex, k=16, seed=0)
    assert importance_weighted_nll(trained.model, trained.vocab, ex, k=16, seed=0, rows=8) == pytest.approx(one_go, rel=1e-5)


def test_one_importance_sample_is_the_elbo_of_that_sample(trained):
    """k = 1: log w = log p(x|z) + log p(z) - log q(z|x) for the very z the ELBO's loss draws
    (same generator), and the mean of -log w over many z is rec + the analytic KL."""
    from plugins.name.training import log_importance_weights

    model, v = trained.model.eval(), trained.vocab
    names = [e for e in examples()]
    x, y = batch(v, [e.name for e in names], model.cfg.max_len)
    st = torch.tensor([["person-en", "person-zh", "place", "project", "fantasy"].index(e.style) for e in names])
    with torch.no_grad():
        out = model.loss(x, y, st, kl_weight=1.0, generator=torch.Generator().manual_seed(7))
        mu, logvar = model.encode(y, st)
        eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(7))
        lw = log_importance_weights(model, x, y, st, eps[None])[0]
        z = mu + eps * torch.exp(0.5 * logvar)
        log_q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(1)
        log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
        assert torch.allclose(-lw, out["rec_each"] + log_q - log_p, atol=1e-4)
        # in expectation over z: the negative ELBO (reconstruction + analytic KL)
        many = torch.randn((400, *mu.shape), generator=torch.Generator().manual_seed(8))
        neg = -log_importance_weights(model, x, y, st, many)
        elbo_mc = model.loss(x.repeat(400, 1), y.repeat(400, 1), st.repeat(400), kl_weight=1.0,
                             generator=torch.Generator().manual_seed(9))
        rec = elbo_mc["rec_each"].reshape(400, -1).mean(0)
        stderr = neg.std(0) / 20 + elbo_mc["rec_each"].reshape(400, -1).std(0) / 20
        assert ((neg.mean(0) - (rec + out["kl_each"])).abs() < 5 * stderr + 1e-3).all()


def test_the_served_bound_tightens_on_held_out_names():
    """The served VAE on real held-out names: IWAE(k=64) <= IWAE(k=8) <= the ELBO."""
    from plugins.name.data import build
    from plugins.name.generator import HERE
    from plugins.name.training import importance_weighted_nll

    torch.set_num_threads(1)
    gen = NameGenerator(HERE / "vae")
    gen.load("cpu")
    held = [e for e in build() if e.split == "test"][::10]
    elbo = evaluate_vae(gen.model, gen.vocab, held)["nll_per_char"]
    iw8 = importance_weighted_nll(gen.model, gen.vocab, held, k=8)
    iw64 = importance_weighted_nll(gen.model, gen.vocab, held, k=64)
    assert iw64 < iw8 < elbo, (iw64, iw8, elbo)
    assert elbo - iw64 < 0.5  # a bound on the same figure, not another quantity


def test_lr_schedule_dropout_and_init_resume_exactly(tmp_path):
    """The learning rate is a function of the step and the decoder's dropout masks come from
    the step's generator: stopped and resumed is bit for bit the run that never stopped, and
    ``init`` starts from another model's weights and step."""
    torch.set_num_threads(1)
    cfg = TrainConfig(steps=30, batch_size=8, kl_anneal_steps=10, checkpoint_every=10, lr=1e-2,
                      lr_steps=((12, 3e-3), (20, 1e-3)))
    assert [cfg.lr_at(s) for s in (0, 11, 12, 19, 20, 99)] == [1e-2, 1e-2, 3e-3, 3e-3, 1e-3, 1e-3]
    tiny = {**TINY, "dropout": 0.2}
    straight = train_vae(examples(), [], tmp_path / "straight", cfg, model_cfg=tiny, progress=False)
    train_vae(examples(), [], tmp_path / "resumed", cfg, model_cfg=tiny, progress=False, stop=lambda s: s == 15)
    resumed = train_vae(examples(), [], tmp_path / "resumed", cfg, progress=False)
    assert straight["step"] == resumed["step"] == 30 and straight["config"]["dropout"] == 0.2
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    assert all(torch.equal(a[k], b[k]) for k in a)
    nodrop = train_vae(examples(), [], tmp_path / "nodrop", cfg, model_cfg=TINY, progress=False)
    assert nodrop["config"]["dropout"] == 0.0
    c = _weights(tmp_path / "nodrop")
    assert not all(torch.equal(a[k], c[k]) for k in a)  # dropout changed the training
    # init: the weights and step of another model, then onwards (Adam afresh)
    more = TrainConfig(steps=36, batch_size=8, kl_anneal_steps=10, checkpoint_every=10, lr=1e-3)
    warm = train_vae(examples(), [], tmp_path / "warm", more, progress=False, init=tmp_path / "straight",
                     stop=lambda s: s == 30)
    assert warm["step"] == 30 and warm["init"]["step"] == 30 and warm["config"]["dropout"] == 0.2
    w = _weights(tmp_path / "warm")
    assert all(torch.equal(a[k], w[k]) for k in a)
    assert train_vae(examples(), [], tmp_path / "warm", more, progress=False)["step"] == 36


def test_train_tool_names_bad_schedules(tmp_path):
    from aigc.cli import main

    for bad in (["--lr-steps", "100"], ["--lr-steps", "x:1e-3"], ["--lr-steps", "10:-1"], ["--dropout", "1.0"]):
        assert main(["train", "names", "--data", str(tmp_path), "--out", str(tmp_path / "o"), *bad]) == 2

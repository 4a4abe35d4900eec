"""The VAE's fitted sampling prior (ex-post density estimation): what it starts as, that fitting
beats N(0, I) on held-out posteriors, that the written VAE loads and serves through it, and
the refusals."""
from __future__ import annotations

import json

import pytest
import torch

from engine.models.vae import VAE, LatentPrior, VaeConfig, split_component
from engine.models.weights import load_model
from engine.training.data import load_image_folder
from engine.training.vae_prior import PriorFitConfig, fit_prior
from engine.training.vae_trainer import VaeTrainConfig, VaeTrainer


@pytest.fixture(scope="module")
def vae_stem(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("vae")
    cfg = VaeTrainConfig(out=str(out), size=16, nz=4, width=8, cond_dim=8, batch=8, epochs=40, kl_warmup=1000,
                         progress=False, sample_every=1000, checkpoint_every=1000)
    VaeTrainer(cfg, load_image_folder(folder, size=16)).run()
    return out / "generator"


def test_a_fresh_prior_is_the_training_prior_shifted():
    prior = LatentPrior(cond_dim=8, nz=5, hidden=16)
    eps = torch.randn(3, 5)
    mean, tril = prior(torch.randn(3, 8))
    assert torch.equal(tril, torch.eye(5).expand(3, 5, 5))  # zero-initialised heads: identity scale
    assert torch.allclose(prior.sample(eps, torch.zeros(3, 8)), prior.mean(prior.net(torch.zeros(3, 8))) + eps)
    with torch.no_grad():
        prior.mean.weight.zero_(), prior.mean.bias.zero_()
    z = torch.randn(7, 5)
    expected = -torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1).mean()
    assert torch.allclose(prior.nll(torch.randn(7, 8), z), expected, atol=1e-5)


def test_an_unconditional_prior_takes_no_condition():
    prior = LatentPrior(cond_dim=0, nz=3, hidden=8)
    assert prior.sample(torch.randn(4, 3), None).shape == (4, 3)


def test_a_mixture_prior_scores_the_mixture_density():
    prior = LatentPrior(cond_dim=8, nz=3, hidden=16, components=4)
    with torch.no_grad():  # distinct weights, means and scales
        for head in (prior.mean, prior.log_diag, prior.off_diag, prior.logits):
            head.weight.normal_(0, 0.3), head.bias.normal_(0, 0.5)
    cond, z = torch.randn(5, 8), torch.randn(5, 3)
    log_w, mean, tril = prior.components(cond)
    assert log_w.shape == (5, 4) and mean.shape == (5, 4, 3) and tril.shape == (5, 4, 3, 3)
    assert torch.allclose(log_w.exp().sum(1), torch.ones(5))
    by_hand = torch.stack([torch.stack([
        log_w[b, k] + torch.distributions.MultivariateNormal(mean[b, k], scale_tril=tril[b, k]).log_prob(z[b])
        for k in range(4)]).logsumexp(0) for b in range(5)])
    assert torch.allclose(prior.nll(cond, z), -by_hand.mean(), atol=1e-5)
    with pytest.raises(ValueError, match="use components"):
        prior(cond)  # no single mean to give
    with pytest.raises(ValueError, match="prior_components must be at least 1"):
        LatentPrior(cond_dim=8, nz=3, hidden=16, components=0)


def test_splitting_a_draw_picks_components_by_weight_and_keeps_the_draw_standard_normal():
    g = torch.Generator().manual_seed(0)
    eps = torch.randn(200_000, 16, generator=g)
    weights = torch.tensor([0.1, 0.6, 0.3]).expand(len(eps), 3)
    pick, inner = split_component(eps, weights)
    share = torch.bincount(pick, minlength=3).float() / len(eps)
    assert torch.allclose(share, weights[0], atol=0.005)  # each component as often as its weight
    # the draw used inside a component is N(0, I) whichever component was picked
    for k in range(3):
        rows = inner[pick == k]
        assert rows.mean(0).abs().max() < 0.03 and (rows.std(0) - 1).abs().max() < 0.03, k
    # only the component along (1, ..., 1) is rewritten
    direction = torch.full((16,), 0.25)
    rest = lambda x: x - (x @ direction).unsqueeze(1) * direction  # noqa: E731
    assert torch.allclose(rest(inner), rest(eps), atol=1e-5)
    # a truncated draw (small |s|) picks the heaviest component: lower variety, more typical
    small = eps[(eps @ direction).abs() < 0.05]
    pick_small, _ = split_component(small, weights[:len(small)])
    assert (pick_small == 1).all()


def test_a_mixture_prior_samples_deterministically_row_by_row():
    prior = LatentPrior(cond_dim=8, nz=4, hidden=16, components=3)
    with torch.no_grad():
        for head in (prior.mean, prior.logits):
            head.weight.normal_(0, 1.0), head.bias.normal_(0, 1.0)
    cond, eps = torch.randn(6, 8), torch.randn(6, 4)
    z = prior.sample(eps, cond)
    assert torch.equal(z, prior.sample(eps, cond))
    assert torch.allclose(prior.sample(eps[2:3], cond[2:3]), z[2:3], atol=1e-6)
    pick, inner = split_component(eps, prior.components(cond)[0].exp())
    means = prior.components(cond)[1]
    assert torch.allclose(z, means[torch.arange(6), pick] + inner, atol=1e-5)  # identity scales: mean + draw


def test_a_vae_without_a_prior_decodes_its_draws_as_they_are():
    vae = VAE(VaeConfig(size=16, nz=4, width=8))
    eps = torch.randn(2, 4)
    assert vae.prior is None and torch.equal(vae.prior_latent(eps), eps)


def test_fitting_beats_the_standard_normal_and_the_written_vae_serves_through_it(folder, vae_stem, tmp_path):
    data = load_image_folder(folder, size=16)
    report = fit_prior(PriorFitConfig(vae=str(vae_stem), out=str(tmp_path / "vae"), hidden=32, epochs=30,
                                      progress=False), data, log=lambda m: None)
    # a short warm-up leaves the posterior far from N(0, I): the fitted prior explains it better
    assert report["held_out_nll"] < report["held_out_nll_standard_normal"]
    assert 1 <= report["epoch"] <= 30 and report["pairs"] > 0 and report["held_out_pairs"] > 0
    config = json.loads((tmp_path / "vae.json").read_text())
    assert config["prior_hidden"] == 32 and config["prior"]["recipe"]["epochs"] == 30
    assert config["prior"]["held_out_nll"] == report["held_out_nll"]
    vae, _ = load_model(tmp_path / "vae")  # strict: the prior's tensors are all there
    base, _ = load_model(vae_stem)
    assert vae.prior is not None and base.prior is None
    for (k, a), b in zip(base.state_dict().items(), vae.state_dict().values()):  # encoder, decoder untouched
        assert torch.allclose(a.float(), b.float(), atol=1e-2), k  # (the written copy is fp16)
    tok = vae.cfg.make_tokenizer()
    cond = vae.condition(tok.batch(["disc", "square"]))
    eps = torch.randn(2, 4, generator=torch.Generator().manual_seed(0))
    z = vae.prior_latent(eps, cond)
    assert not torch.allclose(z, eps)  # a different latent for the same draw ...
    assert torch.equal(z, vae.prior_latent(eps, cond))  # ... deterministically
    one = vae.prior_latent(eps[:1], cond[:1])
    assert torch.allclose(one, z[:1], atol=1e-6)  # a row's latent does not depend on its batch


def test_a_mixture_prior_fits_loads_and_serves(folder, vae_stem, tmp_path):
    data = load_image_folder(folder, size=16)
    report = fit_prior(PriorFitConfig(vae=str(vae_stem), out=str(tmp_path / "vae"), hidden=32, epochs=30,
                                      components=3, progress=False), data, log=lambda m: None)
    assert report["held_out_nll"] < report["held_out_nll_standard_normal"]
    config = json.loads((tmp_path / "vae.json").read_text())
    assert config["prior_components"] == 3 and config["prior"]["recipe"]["components"] == 3
    vae, _ = load_model(tmp_path / "vae")  # strict: the weights head is there
    assert vae.prior.k == 3 and vae.prior.logits is not None
    cond = vae.condition(vae.cfg.make_tokenizer().batch(["disc", "square"]))
    z = vae.prior_latent(torch.randn(2, 4, generator=torch.Generator().manual_seed(0)), cond)
    assert z.shape == (2, 4) and torch.isfinite(z).all()


def test_refusals_name_the_flag(folder, vae_stem, tmp_path, capsys):
    from aigc.cli import main
    from engine.training.gan_trainer import GanTrainConfig, GanTrainer

    GanTrainer(GanTrainConfig(out=str(tmp_path / "gan"), size=16, nz=8, ngf=8, ndf=8, cond_dim=8, batch=8, epochs=1,
                              progress=False), load_image_folder(folder, size=16)).save()
    with pytest.raises(ValueError, match="kind must be 'vae'"):
        fit_prior(PriorFitConfig(vae=str(tmp_path / "gan" / "generator"), out=str(tmp_path / "x")),
                  load_image_folder(folder, size=16))
    with pytest.raises(ValueError, match="--data: images are"):
        fit_prior(PriorFitConfig(vae=str(vae_stem), out=str(tmp_path / "x")), load_image_folder(folder, size=32))
    assert main(["train", "vae-prior", "--vae", str(tmp_path / "missing"), "--data", str(folder),
                 "--out", str(tmp_path / "x")]) == 2
    assert "aigc train vae-prior" in capsys.readouterr().err
    assert main(["train", "vae-prior", "--vae", str(vae_stem), "--data", str(folder), "--out", str(tmp_path / "x"),
                 "--epochs", "0"]) == 2
    assert "--epochs" in capsys.readouterr().err
    assert main(["train", "vae-prior", "--vae", str(vae_stem), "--data", str(folder), "--out", str(tmp_path / "x"),
                 "--components", "0"]) == 2
    assert "--components must be between 1 and 64" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--components: at most"):  # more components than training pairs
        fit_prior(PriorFitConfig(vae=str(vae_stem), out=str(tmp_path / "x"), components=1000, progress=False),
                  load_image_folder(folder, size=16), log=lambda m: None)
    assert main(["train", "vae-prior", "--vae", str(vae_stem), "--data", str(folder), "--out", str(tmp_path / "y"),
                 "--epochs", "2", "--hidden", "8", "--quiet"]) == 0
    assert '"held_out_nll"' in capsys.readouterr().out and (tmp_path / "y.safetensors").exists()


def test_a_refit_drops_the_old_calibration_and_tiny_folders_are_refused(folder, vae_stem, tmp_path):
    import shutil

    from PIL import Image

    for suffix in (".safetensors", ".json"):
        shutil.copy(vae_stem.with_suffix(suffix), tmp_path / f"vae{suffix}")
    config = json.loads((tmp_path / "vae.json").read_text())
    (tmp_path / "vae.json").write_text(json.dumps({**config, "truncation_scale": 1.4}))
    data = load_image_folder(folder, size=16)
    fit_prior(PriorFitConfig(vae=str(tmp_path / "vae"), out=str(tmp_path / "refit"), hidden=8, epochs=1,
                             progress=False), data, log=lambda m: None)
    # a truncation_scale was measured for the old sampling distribution, not this one
    assert "truncation_scale" not in json.loads((tmp_path / "refit.json").read_text())
    one = tmp_path / "one"
    one.mkdir()
    Image.new("RGBA", (16, 16), (255, 0, 0, 255)).save(one / "a.png")
    with pytest.raises(ValueError, match="--data: at least 2 images"):
        fit_prior(PriorFitConfig(vae=str(vae_stem), out=str(tmp_path / "x")), load_image_folder(one, size=16))

"""The built-in emoji plugin: schema, determinism (alone vs inside any batch), actions."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from engine import sdk
from engine.protocol import NAME_RE
from plugins.emoji.generator import CANDIDATES, PRIOR_WEIGHT, to_image, truncated_latent


@pytest.fixture(scope="module")
def gen():
    import plugins.emoji as emoji

    g = emoji.plugin.generators[0]
    g.load("cpu")
    return g


def _items(n: int, seed: int = 7, **kw) -> list[sdk.Item]:
    opts = {"prompt": "grinning face", "variety": 0.7, **kw}
    return [sdk.Item(command="emoji", options=opts, seed=seed, index=i) for i in range(n)]


def _px(outputs: list[sdk.Output]) -> list[np.ndarray]:
    return [np.asarray(o.data) for o in outputs]


def test_command_schema_and_localizations():
    import plugins.emoji as emoji

    (cmd,) = emoji.plugin.commands
    assert cmd.name == "emoji" and cmd.max_count == 4 and cmd.modality == "image"
    by_name = {o.name: o for o in cmd.options}
    assert by_name["prompt"].required and by_name["prompt"].max_length == 200
    assert by_name["prompt"].autocomplete in emoji.plugin.autocomplete
    assert (by_name["count"].job_field, by_name["count"].min_value, by_name["count"].max_value) == ("count", 1, 4)
    assert by_name["seed"].job_field == "seed" and by_name["seed"].max_value == 4294967295
    assert (by_name["variety"].min_value, by_name["variety"].max_value) == (0, 1)
    assert [a.name for a in cmd.actions] == ["reroll", "variations", "morph"]
    names = [cmd.name_localizations["zh-CN"]] + [o.name_localizations["zh-CN"] for o in cmd.options]
    for n in names:
        assert NAME_RE.match(n) and n == n.lower()
    assert all("zh-CN" in o.description_localizations for o in cmd.options)


def test_autocomplete_suggests_known_captions():
    import plugins.emoji as emoji

    got = emoji.emoji_names("grinn", {})
    assert got and all("grinn" in c for c in got) and len(got) <= 25


def test_output_is_64px_rgba_and_model_info_hashes_the_weights(gen):
    (out,) = gen.generate(_items(1))
    assert out.data.mode == "RGBA" and out.data.size == (64, 64)
    info = gen.model_info()
    digest = hashlib.sha256((gen.weights_dir / "gan.safetensors").read_bytes()).hexdigest()
    assert info["sha256"] == digest and info["name"]
    vae = hashlib.sha256((gen.weights_dir / "vae.safetensors").read_bytes()).hexdigest()
    assert info["vae_sha256"] == vae  # model:vae outputs depend on it too
    # the shipped calibrations (MODEL_CARD.md, #21 session 18) are part of what made an output
    assert (info["truncation_scale"], info["vae_truncation_scale"]) == ("1.2", "1.4")


@pytest.mark.parametrize(("model", "quality", "n"), [("gan", "draft", 32), ("gan", "best", 12), ("vae", "draft", 32)])
def test_alone_equals_inside_any_batch(gen, model, quality, n):
    torch.set_num_threads(2)
    items = _items(n, model=model, quality=quality)  # best: 8 candidates per item
    alone = _px([gen.generate([it])[0] for it in items])
    for bs in (3, 5, n):  # 3 and 5 once gave 1-ulp differences that flipped pixels
        batched = []
        for k in range(0, len(items), bs):
            batched += _px(gen.generate(items[k:k + bs]))
        assert all((a == b).all() for a, b in zip(alone, batched))
    # a different mix of jobs around item 5 changes nothing either
    other = "vae" if model == "gan" else "gan"
    mixed = [sdk.Item(command="emoji", options={"prompt": "red heart", "model": other}, seed=1, index=0),
             items[5], sdk.Item(command="emoji", options={"prompt": "dog"}, seed=2, index=3), items[9]]
    got = _px(gen.generate(mixed))
    assert (got[1] == alone[5]).all() and (got[3] == alone[9]).all()
    assert not (alone[0] == alone[1]).all()  # different indices: different outputs


def test_seed_and_prompt_change_the_output(gen):
    a, b, c = _px(gen.generate([_items(1, seed=1)[0], _items(1, seed=2)[0],
                                _items(1, seed=1, prompt="dog face")[0]]))
    assert not (a == b).all() and not (a == c).all()


def test_variations_are_deterministic_neighbours(gen):
    src = _items(1, seed=11)[0]
    var = [sdk.Item(command="emoji", options=src.options, seed=99, index=i, action="variations",
                    source=(11, 0)) for i in range(3)]
    first, second = _px(gen.generate(var)), _px(gen.generate(var[::-1]))[::-1]
    assert all((x == y).all() for x, y in zip(first, second))
    assert not (first[0] == first[1]).all()
    source = _px(gen.generate([src]))[0].astype(int)
    others = _px(gen.generate([_items(1, seed=12345 + k)[0] for k in range(4)]))
    # on average, a variation is closer to its source than an unrelated sample is (one pair
    # can go either way: measured over 32 pairs, variations win 88% at 0.5 rad)
    var_d = np.mean([np.abs(v.astype(int) - source).mean() for v in first])
    other_d = np.mean([np.abs(o.astype(int) - source).mean() for o in others])
    assert var_d < other_d


@pytest.mark.parametrize("quality", ["draft", "best"])
def test_morph_starts_from_the_source_latent(gen, quality):
    src = _items(1, seed=3, quality=quality)[0]
    morph = [sdk.Item(command="emoji", options=src.options, seed=50, index=i, action="morph",
                      source=(3, 0), action_options={"to": "red heart"}) for i in range(4)]
    outs = gen.generate(morph)
    assert [o.meta["t"] for o in outs] == [1.0, 0.75, 0.5, 0.25]
    assert "critic_logit" not in outs[0].meta  # a morph path is never re-selected
    if quality == "draft":
        # t = 1: the target prompt on the same latent, i.e. a plain draft of the target prompt
        target = _px(gen.generate([sdk.Item(command="emoji", options={**src.options, "prompt": "red heart"},
                                            seed=3, index=0)]))[0]
    else:
        # the source's chosen latent under the target prompt
        (z,) = gen._sources("gan", morph[:1], 100)
        with torch.no_grad():
            x = gen._decode("gan", z, gen._cond("gan", "red heart"))
        target = np.asarray(to_image(x))
    assert (np.asarray(outs[0].data) == target).all()


def test_best_quality_is_the_lowest_energy_candidate(gen):
    best = gen.generate(_items(8, seed=21, quality="best"))
    draft = gen.generate(_items(8, seed=21, quality="draft"))
    # an item without a quality is a draft (the command's default since #21, session 17)
    assert all((a == b).all() for a, b in zip(_px(gen.generate(_items(8, seed=21))), _px(draft)))
    assert all(o.meta["candidates"] == CANDIDATES and 0 <= o.meta["pick"] < CANDIDATES for o in best)
    assert all("critic_logit" not in o.meta for o in draft)
    assert any(o.meta["pick"] != 0 for o in best)
    # by hand, for every item: decode its candidates, score them, take the lowest energy
    for item, out in zip(_items(8, seed=21, quality="best"), best):
        z = torch.cat([truncated_latent(100, item.seed, item.index, 0.7, j, gen.truncation_scale("gan"))
                       for j in range(CANDIDATES)])
        with torch.no_grad():
            x = gen._decode("gan", z, gen._cond("gan", "grinning face").expand(CANDIDATES, -1)).float()
            logits = gen._score(x, ["grinning face"] * CANDIDATES).float()
        energy = PRIOR_WEIGHT * 0.5 * z.pow(2).sum(1) - logits
        pick = int(energy.argmin())
        assert out.meta["pick"] == pick and out.meta["critic_logit"] == round(float(logits[pick]), 3)
        assert (np.asarray(out.data) == np.asarray(to_image(x[pick:pick + 1]))).all()
    # the critic rates its choices above the drafts (draw 0, one of the candidates it saw)
    draft_logits = gen._score(torch.stack([torch.from_numpy(np.asarray(o.data).copy()).permute(2, 0, 1)
                                           for o in draft]).float() / 255.0, ["grinning face"] * 8)
    assert np.mean([o.meta["critic_logit"] for o in best]) > float(draft_logits.mean())
    with torch.inference_mode():  # as the engine calls it
        assert all((a == b).all() for a, b in zip(_px(gen.generate(_items(8, seed=21, quality="best"))), _px(best)))
    assert not all((a == b).all() for a, b in zip(_px(best), _px(draft)))


def test_a_critic_for_other_weights_is_refused(tmp_path):
    import json
    import shutil

    from plugins.emoji.generator import HERE, EmojiGenerator

    for name in ("gan.json", "gan.safetensors", "critic.safetensors"):
        shutil.copy(HERE / name, tmp_path / name)
    meta = json.loads((HERE / "critic.json").read_text())
    (tmp_path / "critic.json").write_text(json.dumps({**meta, "generator_sha256": "0" * 64}))
    with pytest.raises(ValueError, match="critic.json: generator_sha256 '0+' is not gan.safetensors"):
        EmojiGenerator(tmp_path).load("cpu")
    (tmp_path / "critic.json").write_text(json.dumps(meta))
    g = EmojiGenerator(tmp_path)
    g.load("cpu")  # the same bytes, copied: accepted, and the critic is part of the model's identity
    assert g.model_info()["critic_sha256"] == hashlib.sha256((HERE / "critic.safetensors").read_bytes()).hexdigest()
    (tmp_path / "critic.json").unlink()
    (tmp_path / "critic.safetensors").unlink()
    g = EmojiGenerator(tmp_path)
    g.load("cpu")  # no critic: every quality is a draft
    (out,) = g.generate(_items(1))
    assert "critic_logit" not in out.meta and "critic_sha256" not in g.model_info()


def test_model_card_sample_grid_layout():
    from plugins.emoji.generator import EmojiGenerator
    from plugins.emoji.sample_grid import LABEL_W, PAD, TILE, sample_grid

    gen = EmojiGenerator()
    gen.load("cpu")
    grid = sample_grid(gen, "gan", ["face", "red heart"], range(3))
    assert grid.size == (LABEL_W + 3 * (TILE + PAD) + PAD, 2 * (TILE + PAD) + PAD)
    assert grid.getpixel((LABEL_W + PAD + TILE // 2, PAD + TILE // 2)) != (255, 255, 255)  # a drawn tile


def test_the_vae_samples_through_its_fitted_prior(gen):
    """The shipped VAE carries a prior fitted to its posterior (engine/training/vae_prior.py): an
    output is decode(prior(eps)) for the output's standard-normal draw eps, not decode(eps)."""
    module, config = gen.models["vae"]
    assert module.prior is not None and config["prior"]["held_out_nll"] < config["prior"]["held_out_nll_standard_normal"]
    (out,) = gen.generate(_items(1, model="vae"))
    eps = truncated_latent(int(config["nz"]), 7, 0, 0.7, scale=gen.truncation_scale("vae"))
    with torch.no_grad():
        cond = gen._cond("vae", "grinning face")
        through = module.decode(module.prior_latent(eps, cond), cond)
        raw = module.decode(eps, cond)
    px = np.asarray(out.data).astype(int)  # (serving decodes in fixed micro-batches: last bits may differ)
    assert np.abs(px - np.asarray(to_image(through)).astype(int)).max() <= 1
    assert np.abs(px - np.asarray(to_image(raw)).astype(int)).mean() > 5


def test_truncation_scale_widens_the_threshold_and_is_recorded(tmp_path):
    """gan.json's truncation_scale multiplies the truncation threshold (variety 0.7 at 1.2 is
    variety 0.85's threshold), is part of model_info (outputs depend on it), and a value out of
    range is refused at load, naming the field."""
    import json
    import shutil

    from plugins.emoji.generator import HERE, EmojiGenerator

    plain = truncated_latent(100, 3, 0, 0.7)
    assert torch.equal(plain, truncated_latent(100, 3, 0, 0.7, scale=1.0))
    assert float(plain.abs().max()) <= 0.1 + 1.9 * 0.7 + 1e-6
    assert torch.equal(truncated_latent(100, 3, 0, 0.7, scale=1.2),
                       truncated_latent(100, 3, 0, (1.2 * (0.1 + 1.9 * 0.7) - 0.1) / 1.9))
    assert torch.equal(truncated_latent(100, 3, 0, 1.0, scale=0.5), truncated_latent(100, 3, 0, 1.0))  # never truncated

    for name in ("gan.safetensors", "gan.json"):
        shutil.copy(HERE / name, tmp_path / name)
    cfg = json.loads((tmp_path / "gan.json").read_text())
    for scale, expect in ((1.0, None), (1.5, "1.5")):
        (tmp_path / "gan.json").write_text(json.dumps({**cfg, "truncation_scale": scale}))
        g = EmojiGenerator(tmp_path)
        g.load("cpu")
        assert g.model_info().get("truncation_scale") == expect
    widened = np.asarray(g.generate(_items(1))[0].data)
    (tmp_path / "gan.json").write_text(json.dumps({**cfg, "truncation_scale": 1.0}))
    g = EmojiGenerator(tmp_path)
    g.load("cpu")
    assert not np.array_equal(widened, np.asarray(g.generate(_items(1))[0].data))
    for bad in (0, None, "wide", [1.2]):
        (tmp_path / "gan.json").write_text(json.dumps({**cfg, "truncation_scale": bad}))
        with pytest.raises(ValueError, match=r"gan.json: truncation_scale must be a number in \[0.1, 10\], got "):
            EmojiGenerator(tmp_path).load("cpu")

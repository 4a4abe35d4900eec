"""The audio data builders (small sets, through the real `aigc` CLI), the spectrogram round trip,
the model's shapes and the trainer's exact resume."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from plugins.sfx import dataset, spectro
from plugins.sfx.model import Config, Discriminator, Generator, minibatch_std


def aigc(*argv: str) -> int:
    from aigc.cli import main

    try:
        return int(main(list(argv)) or 0)
    except SystemExit as e:
        return int(e.code or 0)


@pytest.fixture(scope="module")
def sfx_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("sfx") / "set"
    assert aigc("data", "sfx", str(out), "--per-class", "3", "--test-per-class", "1", "--seed", "4") == 0
    return out


def test_sfx_builder_writes_a_loadable_reproducible_set(sfx_set, tmp_path):
    train, test = dataset.load(sfx_set), dataset.load(sfx_set, "test")
    manifest = json.loads((sfx_set / "dataset.json").read_text())
    assert manifest["kind"] == "sfx" and manifest["rate"] == 16000 and len(train.classes) == 10
    assert train.audio.shape == (30, 16384) and test.audio.shape == (10, 16384)
    assert sorted(np.bincount(train.labels)) == [3] * 10 and np.bincount(test.labels).tolist() == [1] * 10
    assert (np.abs(train.floats()).max(1) > 0.3).all()
    again = tmp_path / "again"
    assert aigc("data", "sfx", str(again), "--per-class", "3", "--test-per-class", "1", "--seed", "4") == 0
    assert (again / "audio.npy").read_bytes() == (sfx_set / "audio.npy").read_bytes()


def test_builder_and_loader_refuse_bad_input(tmp_path, capsys):
    assert aigc("data", "sfx", str(tmp_path / "x"), "--per-class", "0") == 2
    assert "--per-class: must be between 1 and 100000" in capsys.readouterr().out
    with pytest.raises(ValueError, match="has no dataset.json"):
        dataset.load(tmp_path)
    bad = tmp_path / "bad"
    dataset.write(bad, "sfx", ["a"], np.zeros((2, 16384), np.int16), np.zeros(2), np.zeros((1, 16384), np.int16),
                  np.zeros(1), 0)
    np.save(bad / "audio.npy", np.zeros((2, 100), np.float32))
    with pytest.raises(ValueError, match=r"audio.npy must be int16 \(N, 16384\)"):
        dataset.load(bad)


def test_digits_builder_speaks_every_digit(tmp_path):
    assert shutil.which("espeak-ng"), "scripts/install.sh installs espeak-ng"
    out = tmp_path / "digits"
    assert aigc("data", "digits", str(out), "--per-class", "1", "--test-per-class", "1") == 0
    train = dataset.load(out)
    assert train.kind == "digits" and train.classes[7] == "seven" and train.audio.shape == (10, 16384)
    x = train.floats()
    loud = (np.abs(x) > 0.1 * np.abs(x).max(1, keepdims=True)).sum(1) / 16000
    assert (loud > 0.05).all() and (loud < 0.8).all()  # speech, not silence or noise throughout
    from plugins.sfx.data_digits_tool import resample
    tone = np.sin(2 * np.pi * 1000 * np.arange(22050) / 22050)
    got = resample(tone, 22050, 16000)
    assert len(got) == 16000 and np.argmax(np.abs(np.fft.rfft(got))) == 1000


def test_spectrogram_round_trip_through_griffin_lim():
    t = torch.arange(16384) / 16000
    x = (0.5 * torch.sin(2 * torch.pi * 1000 * t) * torch.sin(torch.pi * t / 1.024)).unsqueeze(0)
    spec = spectro.to_spec(x)
    assert spec.shape == (1, 1, 128, 128) and spec.min() >= -1 and spec.max() <= 1
    assert int(spec[0, 0, :, 20].argmax()) == 16  # 1000 Hz / 62.5 Hz per bin
    back = spectro.to_audio(spec)
    assert back.shape == (1, 16384) and back.abs().max() == pytest.approx(0.9, abs=1e-4)
    # the magnitudes come back (spectral convergence): Griffin-Lim only had to find the phase
    def mag(a):
        return torch.stft(a, 256, 128, window=torch.hann_window(256), return_complex=True).abs()
    target = mag(x * 0.9 / 0.5)
    assert float((mag(back) - target).norm() / target.norm()) < 0.1
    assert torch.equal(spectro.to_audio(spec), back)


def test_model_shapes():
    cfg = Config(classes=10)
    g, d = Generator(cfg), Discriminator(cfg)
    x = g(torch.randn(3, cfg.nz), torch.tensor([0, 4, 9]))
    assert x.shape == (3, 1, 128, 128) and x.abs().max() <= 1
    assert d(x, torch.tensor([0, 4, 9])).shape == (3,)
    assert Config.from_json(json.loads(json.dumps(cfg.to_json()))) == cfg


def test_minibatch_stddev_discriminator_and_old_configs():
    cfg = Config(classes=10, mbstd=4)
    assert Config.from_json(json.loads(json.dumps(cfg.to_json()))) == cfg
    d = Discriminator(cfg)
    assert d.features_dim == 257 and d.linear.weight.shape == (1, 257)
    x, y = torch.randn(8, 1, 128, 128), torch.tensor([0, 1, 2, 3, 4, 5, 6, 7])
    assert d(x, y).shape == (8,)
    # the feature sees the batch: the same clip among copies of itself scores otherwise
    with torch.no_grad():
        assert not torch.allclose(d(x, y)[:1], d(x[:1].expand(4, -1, -1, -1), y[:4])[:1])
    h = torch.cat([torch.ones(4, 3), torch.tensor([[0.0] * 3, [2] * 3, [0] * 3, [2] * 3])])
    assert minibatch_std(h, 4).flatten().tolist() == pytest.approx([1e-4] * 4 + [1.0] * 4)
    assert minibatch_std(torch.randn(6, 3), 4).shape == (6, 1)  # groups of 3: the largest size dividing 6
    assert minibatch_std(torch.randn(1, 3), 4).abs().max() < 1e-3
    # a config written before the field (gan.json up to session 14) loads as before: no minibatch stddev
    old = {k: v for k, v in cfg.to_json().items() if k != "mbstd"}
    assert Config.from_json(old) == Config(classes=10) and Discriminator(Config.from_json(old)).features_dim == 256


TINY = dict(nz=8, embed=4, g_channels=(16, 8, 8, 8, 4), d_channels=(4, 8, 8, 8, 16))


def _tensors(trainer):
    tensors, meta = trainer.state()
    return tensors, {k: v for k, v in meta.items() if k != "elapsed_s"}


def test_training_resumes_exactly(sfx_set, tmp_path):
    from plugins.sfx.train_tool import Trainer

    data = dataset.load(sfx_set)
    cfg = Config(classes=10, **TINY)
    straight = Trainer(data, tmp_path / "straight", batch=4, config=cfg)
    straight.train(steps=4, ckpt_every=100)
    first = Trainer(data, tmp_path / "split", batch=4, config=cfg)
    first.train(steps=2, ckpt_every=100)
    resumed = Trainer(data, tmp_path / "split", batch=4, config=cfg)  # what a new process does
    assert resumed.step == 2
    resumed.train(steps=4, ckpt_every=100)
    a, meta_a = _tensors(straight)
    b, meta_b = _tensors(resumed)
    assert a.keys() == b.keys() and meta_a == meta_b
    for k in a:
        assert torch.equal(a[k], b[k]), k
    with pytest.raises(ValueError, match="another config, batch, seed"):
        Trainer(data, tmp_path / "split", batch=8, config=cfg)
    # the export is what the plugin serves
    from plugins.sfx.generator import SfxGenerator
    from engine import sdk

    resumed.export(tmp_path / "gan")
    gen = SfxGenerator(tmp_path / "gan")
    gen.load("cpu")
    (out,) = gen.generate([sdk.Item("sfx", {"kind": "laser"}, seed=1, index=0)])
    assert out.data.shape == (16384,) and gen.classes == data.classes


def test_train_cli_requires_a_bound(sfx_set, tmp_path, capsys):
    assert aigc("train", "sfx", "--data", str(sfx_set), "--out", str(tmp_path / "r")) == 2
    assert "--minutes or --steps" in capsys.readouterr().out
    assert aigc("train", "sfx", "--data", str(sfx_set), "--out", str(tmp_path / "r"), "--steps", "1",
                "--batch", "2", "--export", str(tmp_path / "g")) == 0
    assert (tmp_path / "g.safetensors").exists() and (tmp_path / "r" / "ckpt.json").exists()


@pytest.fixture(scope="module")
def digits_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits") / "set"
    assert aigc("data", "digits", str(out), "--per-class", "1", "--test-per-class", "1") == 0
    return out


def test_joined_sets_name_their_classes_and_keep_their_labels(sfx_set, digits_set):
    sfx, digits = dataset.load(sfx_set), dataset.load(digits_set)
    both = dataset.join([sfx, digits])
    assert both.kind == "sfx+digits" and len(both.classes) == 20
    assert both.classes[:10] == sfx.classes and both.classes[17] == "digit-seven"
    assert both.audio.shape == (40, 16384) and np.array_equal(both.audio[30:], digits.audio)
    assert np.array_equal(both.labels[:30], sfx.labels) and np.array_equal(both.labels[30:], digits.labels + 10)
    assert dataset.join([sfx]) is sfx
    with pytest.raises(ValueError, match="different set"):
        dataset.join([sfx, sfx])


def test_mode_seeking_warm_started_joint_training_resumes_exactly(sfx_set, digits_set, tmp_path):
    from plugins.sfx.train_tool import Trainer

    data = dataset.join([dataset.load(sfx_set), dataset.load(digits_set)])
    cfg10, cfg20 = Config(classes=10, **TINY), Config(classes=20, mbstd=4, **TINY)  # D's minibatch stddev on
    src = Trainer(dataset.load(sfx_set), tmp_path / "src", batch=4, config=cfg10)
    src.train(steps=1)
    src.export(tmp_path / "src_gan")
    kw = dict(batch=4, config=cfg20, ms_weight=0.05)
    straight = Trainer(data, tmp_path / "straight", **kw)
    fresh = straight.G.embed.weight.detach().clone()
    assert "10 of 20 classes kept" in straight.init_generator(tmp_path / "src_gan")
    emb = straight.G.embed.weight.detach()
    assert torch.equal(emb[:10], src.G_ema.embed.weight) and torch.equal(emb[10:], fresh[10:])
    assert torch.equal(straight.G.fc.weight, src.G_ema.fc.weight)
    straight.train(steps=4, ckpt_every=100)
    first = Trainer(data, tmp_path / "split", **kw)
    first.init_generator(tmp_path / "src_gan")
    first.train(steps=2, ckpt_every=100)
    resumed = Trainer(data, tmp_path / "split", **kw)
    resumed.train(steps=4, ckpt_every=100)
    a, meta_a = _tensors(straight)
    b, meta_b = _tensors(resumed)
    assert meta_a == meta_b and meta_a["ms_weight"] == 0.05
    for k in a:
        assert torch.equal(a[k], b[k]), k
    with pytest.raises(ValueError, match="--ms-weight"):
        Trainer(data, tmp_path / "split", batch=4, config=cfg20, ms_weight=0.0)
    with pytest.raises(ValueError, match="another config"):
        Trainer(data, tmp_path / "split", batch=4, config=Config(classes=20, **TINY), ms_weight=0.05)
    with pytest.raises(ValueError, match="only a new run"):
        resumed.init_generator(tmp_path / "src_gan")
    # the mode-seeking pairs share classes; without the term the batch's classes are used as they are
    y = torch.tensor([0, 3, 12, 19])
    assert resumed.fake_labels(y).tolist() == [0, 12, 0, 12]
    plain = Trainer(data, tmp_path / "plain", batch=4, config=cfg20)
    assert plain.fake_labels(y) is y and "ms_ratio" not in plain.train_step()
    assert Trainer(data, tmp_path / "probe", **kw).train_step()["ms_ratio"] > 0


def test_train_cli_joins_sets_and_refuses_bad_options(sfx_set, digits_set, tmp_path, capsys):
    base = ("train", "sfx", "--data", str(sfx_set), "--out", str(tmp_path / "r"), "--steps", "1")
    assert aigc(*base, "--batch", "3") == 2
    assert "--batch: must be an even number" in capsys.readouterr().out
    assert aigc(*base, "--ms-weight", "-1") == 2
    assert "--ms-weight: must be between 0 and 100" in capsys.readouterr().out
    assert aigc(*base, "--mbstd", "1") == 2
    assert "--mbstd: must be 0 (off) or a group size between 2 and --batch" in capsys.readouterr().out
    assert aigc(*base, "--data", str(sfx_set)) == 2
    assert "--data: data: each --data must be a different set" in capsys.readouterr().out
    assert aigc(*base, "--data", str(digits_set), "--batch", "2", "--ms-weight", "0.1", "--mbstd", "2",
                "--export", str(tmp_path / "g")) == 0
    meta = json.loads((tmp_path / "g.json").read_text())
    assert meta["kind"] == "sfx+digits" and meta["classes"][10] == "digit-zero" and meta["config"]["mbstd"] == 2


def test_per_class_mode_seeking_and_d_warmup_resume_exactly(sfx_set, tmp_path, capsys):
    """Session 16: --ms-weight-per-class (each latent pair's term weighted by its class) and
    --d-warmup (D-only steps with G held) are saved in the run, checked on resume, and resume
    exactly; a run without them keeps the single-weight loss and its checkpoint as before."""
    from plugins.sfx.train_tool import Trainer, parse_per_class

    data = dataset.load(sfx_set)
    cfg = Config(classes=10, mbstd=4, **TINY)
    per = {"alarm": 0.4, "blip": 0.0}
    kw = dict(batch=4, config=cfg, ms_weight=0.15, ms_weight_per_class=per, d_warmup=2)
    straight = Trainer(data, tmp_path / "straight", **kw)
    g0 = {k: v.clone() for k, v in straight.G.state_dict().items()}
    assert straight.train_step()["d_warmup"] == 1 and straight.train_step()["d_warmup"] == 1
    for k, v in straight.G.state_dict().items():  # G and its EMA held during D's warm-up
        assert torch.equal(v, g0[k]) and torch.equal(straight.G_ema.state_dict()[k], g0[k]), k
    assert straight.train_step()["ms_ratio"] > 0  # then G trains, with the per-class term
    assert not torch.equal(straight.G.fc.weight, g0["fc.weight"])
    straight.train(steps=5, ckpt_every=100)
    first = Trainer(data, tmp_path / "split", **kw)
    first.train(steps=3, ckpt_every=100)
    resumed = Trainer(data, tmp_path / "split", **kw)
    resumed.train(steps=5, ckpt_every=100)
    a, meta_a = _tensors(straight)
    b, meta_b = _tensors(resumed)
    assert meta_a == meta_b and meta_a["ms_weight_per_class"] == per and meta_a["d_warmup"] == 2
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert resumed.ms_class_weights[data.classes.index("alarm")] == pytest.approx(0.4)
    assert resumed.ms_class_weights[data.classes.index("blip")] == 0.0
    assert resumed.ms_class_weights[data.classes.index("coin")] == pytest.approx(0.15)
    for other in (dict(kw, ms_weight_per_class={"alarm": 0.3, "blip": 0.0}), dict(kw, ms_weight_per_class=None),
                  dict(kw, d_warmup=0)):
        with pytest.raises(ValueError, match="--ms-weight-per-class, --d-warmup"):
            Trainer(data, tmp_path / "split", **other)
    # a run without the new options writes no new keys (old checkpoints resume unchanged)
    plain = Trainer(data, tmp_path / "plain", batch=4, config=cfg, ms_weight=0.15)
    assert "ms_weight_per_class" not in plain.state()[1] and "d_warmup" not in plain.state()[1]
    # per-class weights alone switch the pairs on, even with --ms-weight 0
    only = Trainer(data, tmp_path / "only", batch=4, config=cfg, ms_weight_per_class={"alarm": 0.4})
    y = torch.tensor([0, 3, 5, 9])
    assert only.mode_seeking and only.fake_labels(y).tolist() == [0, 5, 0, 5]
    assert not Trainer(data, tmp_path / "zero", batch=4, config=cfg, ms_weight_per_class={"blip": 0.0}).mode_seeking
    # parsing and the CLI
    assert parse_per_class("alarm=0.4, blip=0", data.classes) == per and parse_per_class(None, data.classes) == {}
    for bad in ("alarm", "nosuch=1", "alarm=x", "alarm=-1"):
        with pytest.raises(ValueError):
            parse_per_class(bad, data.classes)
    base = ("train", "sfx", "--data", str(sfx_set), "--out", str(tmp_path / "cli"), "--steps", "2", "--batch", "4")
    assert aigc(*base, "--ms-weight-per-class", "nosuch=1") == 2
    assert "--ms-weight-per-class: 'nosuch=1'" in capsys.readouterr().out
    assert aigc(*base, "--d-warmup", "-1") == 2
    assert "--d-warmup: must be between" in capsys.readouterr().out
    assert aigc(*base, "--ms-weight-per-class", "alarm=0.4,blip=0", "--d-warmup", "1", "--mbstd", "4") == 0
    meta = json.loads((tmp_path / "cli" / "ckpt.json").read_text())
    assert meta["ms_weight_per_class"] == per and meta["d_warmup"] == 1 and meta["step"] == 2

"""Tiny CPU runs of both trainers: steps move the losses the right way, checkpoints
round-trip through safetensors, and a resumed run continues exactly."""
from __future__ import annotations

import json
import math
import warnings
from collections import Counter
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from safetensors import safe_open

from engine.models.weights import load_model
from engine.training.data import load_image_folder
from engine.training.diffaugment import diff_augment
from engine.training.gan_trainer import GanTrainConfig, GanTrainer, topk_count
from engine.training.losses import d_fake_term, d_loss, g_loss, g_loss_top_k
from engine.training.vae_trainer import VaeTrainConfig, VaeTrainer


def _gan_cfg(out, epochs=2, **kw) -> GanTrainConfig:
    base = dict(out=str(out), size=16, nz=8, ngf=8, ndf=8, cond_dim=8, batch=8, epochs=epochs,
                progress=False, sample_every=1000, checkpoint_every=1000)
    return GanTrainConfig(**{**base, **kw})


def _assert_same_g_and_d(straight: GanTrainer, resumed: GanTrainer, *more: str) -> None:
    """G, D and the ``more`` modules (trainer attributes) hold the same tensors in both runs."""
    for name in ("G", "D", *more):
        for (k, a), b in zip(getattr(straight, name).state_dict().items(), getattr(resumed, name).state_dict().values()):
            assert torch.equal(a, b), (name, k)


def _resumed_as_straight(straight: GanTrainer, out, data, kw: dict[str, Any], *more: str) -> None:
    """A run of ``kw`` for 1 epoch, resumed to ``straight``'s 3: it must end where ``straight``
    ended, G, D and the ``more`` modules alike."""
    GanTrainer(_gan_cfg(out, epochs=1, **kw), data).run()
    resumed = GanTrainer(_gan_cfg(out, epochs=3, **kw), data, resume=True)
    resumed.run()
    _assert_same_g_and_d(straight, resumed, *more)


def test_gan_step_moves_both_losses_the_right_way(folder, tmp_path):
    data = load_image_folder(folder, size=16)
    tr = GanTrainer(_gan_cfg(tmp_path, augment=""), data)
    real, prompt = tr.batch(0)
    z = torch.randn(real.shape[0], 8, generator=torch.Generator().manual_seed(1))
    tr.G.train(), tr.D.train()
    with torch.no_grad():
        fake = tr.G(z, prompt)

    def ld() -> float:
        return d_loss(tr.D(real, prompt), tr.D(fake, prompt)).item()

    before = ld()
    for _ in range(5):  # D steps on a fixed batch lower L_D
        loss = d_loss(tr.D(real, prompt), tr.D(fake, prompt))
        tr.opt_d.zero_grad(), loss.backward(), tr.opt_d.step()
    assert ld() < before

    def lg() -> float:
        return g_loss(tr.D(tr.G(z, prompt), prompt)).item()

    before = lg()
    for _ in range(5):  # G steps against a fixed D lower L_G
        loss = g_loss(tr.D(tr.G(z, prompt), prompt))
        tr.opt_g.zero_grad(), loss.backward(), tr.opt_g.step()
    assert lg() < before


def test_gan_run_writes_safetensors_checkpoint_samples_and_report(folder, tmp_path):
    data = load_image_folder(folder, size=16)
    report = GanTrainer(_gan_cfg(tmp_path, loss="hinge"), data).run()
    assert report["steps"] == 8 and report["img_s"] > 0
    with safe_open(str(tmp_path / "checkpoint.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert any(k.startswith("opt_d/") for k in keys) and any(k.startswith("ema/") for k in keys)
    g, config = load_model(tmp_path / "generator")
    assert config["spectral_norm"] and config["trained_steps"] == 8
    assert list((tmp_path / "samples").glob("*.png"))
    assert json.loads((tmp_path / "report.json").read_text())["kind"] == "gan"


@pytest.mark.parametrize("r1", [0.0, 1.0])
def test_gan_resume_is_exact(folder, tmp_path, r1):
    data = load_image_folder(folder, size=16)
    straight = GanTrainer(_gan_cfg(tmp_path / "a", epochs=3, r1=r1, r1_every=3), data)
    straight.run()
    GanTrainer(_gan_cfg(tmp_path / "b", epochs=1, r1=r1, r1_every=3), data).run()
    resumed = GanTrainer(_gan_cfg(tmp_path / "b", epochs=3, r1=r1, r1_every=3), data, resume=True)
    assert resumed.step == 4
    resumed.run()
    _assert_same_g_and_d(straight, resumed)
    for a, b in zip(straight.ema.model.state_dict().values(), resumed.ema.model.state_dict().values()):
        assert torch.equal(a, b)


def test_r1_penalty_is_the_squared_input_gradient_and_flattens_d_at_real_images(folder, tmp_path):
    """The R1 step reports E|grad_x D(aug(x))|^2 (the same augmentation draw recomputed here),
    and descending it with a large gamma makes D flatter at the real images."""
    from engine.training.gan_trainer import step_generator

    data = load_image_folder(folder, size=16)
    tr = GanTrainer(_gan_cfg(tmp_path, r1=50.0, r1_every=1, lr=1e-3), data)
    real, prompt = tr.batch(0)

    def grad_sq(step: int) -> float:
        x = real.clone().requires_grad_(True)
        logits = tr.D(diff_augment(x, tr.cfg.augment, step_generator(tr.cfg.seed, step, 4)), prompt)
        (g,) = torch.autograd.grad(logits.sum(), x)
        return g.pow(2).flatten(1).sum(dim=1).mean().item()

    state = {k: v.clone() for k, v in tr.D.state_dict().items()}
    expected = grad_sq(0)
    tr.D.load_state_dict(state)  # grad_sq's forward moved BatchNorm's running statistics only
    first = tr._r1_step(real, prompt, 0)
    assert first == pytest.approx(expected, rel=1e-4)
    for step in range(1, 8):
        last = tr._r1_step(real, prompt, step)
    assert last < 0.5 * first


def _train_cli(data, out, capsys, *flags, family: str = "gan", batch: str = "8") -> tuple[int, str]:
    """`aigc train FAMILY` on a tiny folder with extra flags: (exit code, stderr)."""
    from aigc.cli import main

    rc = main(["train", family, "--data", str(data), "--out", str(out), "--size", "16",
               "--epochs", "1", "--batch", batch, "--nz", "8", "--quiet", *flags])
    return rc, capsys.readouterr().err


def test_negative_r1_is_refused(folder, tmp_path, capsys):
    rc, err = _train_cli(folder, tmp_path / "run", capsys, "--r1", "-1")
    assert rc == 2 and "--r1: must be >= 0" in err, err
    assert not (tmp_path / "run").exists()


def test_negative_snapshot_every_is_refused(folder, tmp_path, capsys):
    rc, err = _train_cli(folder, tmp_path / "run", capsys, "--snapshot-every", "-1")
    assert rc == 2 and "--snapshot-every: must be >= 0" in err
    assert not (tmp_path / "run").exists()


def _exact_resume_then_export(folder, tmp_path, capsys, *flags) -> tuple[Any, dict[str, Any]]:
    """A tiny run with ``flags`` whole (tmp/a) and in two pieces (tmp/b: --stop-at, --resume)
    must end with equal weights; returns run a's exported generator and its config."""
    from aigc.cli import main

    assert _train_cli(folder, tmp_path / "a", capsys, *flags)[0] == 0
    assert _train_cli(folder, tmp_path / "b", capsys, *flags, "--stop-at", "2")[0] == 0
    assert _train_cli(folder, tmp_path / "b", capsys, *flags, "--resume")[0] == 0
    a, b = (load_model(tmp_path / run / "generator")[0].state_dict() for run in ("a", "b"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert main(["train", "export", str(tmp_path / "a"), str(tmp_path / "served" / "gan")]) == 0
    return load_model(tmp_path / "served" / "gan")


def test_resize_generator_trains_resumes_exactly_and_exports(folder, tmp_path, capsys):
    flags = ("--upsample", "resize", "--ngf", "8", "--ndf", "8", "--checkpoint-every", "2")
    g, config = _exact_resume_then_export(folder, tmp_path, capsys, *flags)
    assert config["upsample"] == "resize" and g(torch.randn(1, 8), cond=torch.zeros(1, 64)).shape == (1, 4, 16, 16)
    rc, err = _train_cli(folder, tmp_path / "a", capsys, "--ngf", "8", "--ndf", "8", "--loss", "hinge", "--resume")
    assert rc == 2 and "--upsample (checkpoint: 'resize', now: 'transposed')" in err, err
    assert "--loss (checkpoint: 'bce', now: 'hinge')" in err and "--ngf" not in err
    from engine.models.gan import GanConfig
    from engine.training.gan_trainer import refuse_architecture_change

    before_the_flag = {k: v for k, v in GanConfig(ngf=8).to_dict().items() if k != "upsample"}
    refuse_architecture_change(before_the_flag, GanConfig(ngf=8))  # older checkpoints resume as transposed
    with pytest.raises(SystemExit):
        _train_cli(folder, tmp_path / "c", capsys, "--upsample", "bilinear")
    assert "--upsample: invalid choice: 'bilinear'" in capsys.readouterr().err


def test_cond_norm_generator_trains_resumes_exactly_and_exports(folder, tmp_path, capsys):
    from engine.models.gan import CondBatchNorm2d

    flags = ("--cond-norm", "--ngf", "8", "--ndf", "8", "--checkpoint-every", "2")
    g, config = _exact_resume_then_export(folder, tmp_path, capsys, *flags)
    assert config["cond_norm"] is True and sum(isinstance(m, CondBatchNorm2d) for m in g.modules()) == 2
    # the prompt reaches past the input: an exported layer's scale and shift follow the condition
    last = [m for m in g.float().eval().modules() if isinstance(m, CondBatchNorm2d)][-1]
    h = torch.randn(2, last.norm.num_features, 8, 8)
    assert not torch.allclose(last(h, torch.zeros(2, 64)), last(h, torch.ones(2, 64)))
    rc, err = _train_cli(folder, tmp_path / "a", capsys, "--ngf", "8", "--ndf", "8", "--resume")
    assert rc == 2 and "--cond-norm (checkpoint: True, now: False)" in err, err
    rc, err = _train_cli(folder, tmp_path / "c", capsys, "--cond-norm", "--cond-dim", "0")
    assert rc == 2 and "--cond-norm: needs a conditional model (--cond-dim > 0)" in err, err
    assert not (tmp_path / "c").exists()


def _draw_counts(tr: GanTrainer, steps: range) -> Counter[str]:
    return Counter(tr.data.categories[j] for step in steps for j in tr.batch_indices(step).tolist())


def test_balance_evens_out_categories_and_off_keeps_the_epoch_permutation(folder, tmp_path):
    data = load_image_folder(folder, size=16)
    data.categories = ["many"] * 28 + ["few"] * 4  # 7:1, like person against the small classes
    off = GanTrainer(_gan_cfg(tmp_path / "off", batch=4), data)
    for epoch in range(3):  # off: every image exactly once per epoch, as before
        steps = range(epoch * off.steps_per_epoch, (epoch + 1) * off.steps_per_epoch)
        assert sorted(j for s in steps for j in off.batch_indices(s).tolist()) == list(range(32))
    full = GanTrainer(_gan_cfg(tmp_path / "full", batch=4, balance=1.0), data)
    counts = _draw_counts(full, range(300))
    assert 0.4 < counts["few"] / 1200 < 0.6, counts  # off: 4 / 32 = 0.125
    sqrt = _draw_counts(GanTrainer(_gan_cfg(tmp_path / "sqrt", batch=4, balance=0.5), data), range(300))
    assert 0.15 < sqrt["few"] / 1200 < counts["few"] / 1200, sqrt  # between off and equal
    # stateless: a step's draw depends on (seed, step) only, so resume stays exact
    again = GanTrainer(_gan_cfg(tmp_path / "again", batch=4, balance=1.0), data)
    assert torch.equal(again.batch_indices(17), full.batch_indices(17))
    assert not torch.equal(full.batch_indices(17), full.batch_indices(18))
    assert len(set(full.batch_indices(5).tolist())) == 4  # no image twice in one batch


@pytest.mark.parametrize("flag, message", [
    ("1.5", "--balance: must be between 0 (off) and 1 (equal categories), got 1.5"),
    ("-0.5", "--balance: must be between 0 (off) and 1 (equal categories), got -0.5"),
])
def test_balance_out_of_range_is_refused(folder, tmp_path, capsys, flag, message):
    rc, err = _train_cli(folder, tmp_path / "run", capsys, "--balance", flag)
    assert rc == 2 and message in err, err
    assert not (tmp_path / "run").exists()


def test_balance_without_categories_is_refused(tmp_path, capsys):
    for name in ("red_heart.png", "blue_car.png"):  # captions from file names: no categories
        Image.fromarray(np.full((16, 16, 4), 200, np.uint8), "RGBA").save(tmp_path / name)
    rc, err = _train_cli(tmp_path, tmp_path / "run", capsys, "--balance", "1", batch="2")
    assert rc == 2 and "--balance: needs a category per image" in err, err
    assert not (tmp_path / "run").exists()


def test_top_k_g_loss_learns_only_from_the_fakes_d_rates_highest():
    logits = torch.tensor([0.5, -2.0, 3.0, -0.1, 1.0], requires_grad=True)
    loss = g_loss_top_k(logits, 2)
    # the two highest logits, 3.0 and 1.0: -(log sigmoid(3) + log sigmoid(1)) / 2
    assert loss.item() == pytest.approx((math.log1p(math.exp(-3.0)) + math.log1p(math.exp(-1.0))) / 2, rel=1e-6)
    loss.backward()
    assert (logits.grad != 0).tolist() == [False, False, True, False, True]
    assert g_loss_top_k(logits, 2, "hinge").item() == pytest.approx(-2.0)
    assert torch.equal(g_loss_top_k(logits, 5), g_loss(logits))  # k = batch: the plain loss, same bits
    for k in (0, 6):
        with pytest.raises(ValueError, match=rf"top-k: k must be between 1 and the batch \(5\), got {k}"):
            g_loss_top_k(logits, k)


@given(batch=st.integers(1, 512), keep=st.floats(0.01, 1.0), decay=st.floats(0.5, 1.0), epoch=st.integers(0, 2000))
def test_topk_count_shrinks_from_the_batch_to_its_floor(batch, keep, decay, epoch):
    floor = math.ceil(keep * batch)
    k = topk_count(batch, epoch, keep, decay)
    assert topk_count(batch, 0, keep, decay) == batch
    assert floor <= k <= batch
    assert topk_count(batch, epoch + 1, keep, decay) <= k
    if decay ** epoch * batch <= floor - 0.5:
        assert k == floor


def test_topk_run_is_plain_in_its_first_epoch_then_differs_and_resumes_exactly(folder, tmp_path):
    """32 images, batch 8: 4 steps an epoch; k = 8, then 4 from epoch 1 (keep 0.5, decay 0.5)."""
    data = load_image_folder(folder, size=16)
    topk = dict(topk=0.5, topk_decay=0.5)

    def g_weights(tr: GanTrainer) -> list[torch.Tensor]:
        return list(tr.G.state_dict().values())

    plain1 = GanTrainer(_gan_cfg(tmp_path / "p1", epochs=1), data)
    plain1.run()
    topk1 = GanTrainer(_gan_cfg(tmp_path / "t1", epochs=1, **topk), data)
    topk1.run()
    assert all(torch.equal(a, b) for a, b in zip(g_weights(plain1), g_weights(topk1)))

    straight = GanTrainer(_gan_cfg(tmp_path / "t3", epochs=3, **topk), data)
    straight.run()
    plain3 = GanTrainer(_gan_cfg(tmp_path / "p3", epochs=3), data)
    plain3.run()
    assert not all(torch.equal(a, b) for a, b in zip(g_weights(plain3), g_weights(straight)))
    resumed = GanTrainer(_gan_cfg(tmp_path / "t1", epochs=3, **topk), data, resume=True)
    assert resumed.step == 4
    resumed.run()
    _assert_same_g_and_d(straight, resumed)


@pytest.mark.parametrize("flag, value, message", [
    ("--topk", "0", "--topk: the share of fakes G keeps must be in (0, 1] (1 = off), got 0.0"),
    ("--topk", "1.5", "--topk: the share of fakes G keeps must be in (0, 1] (1 = off), got 1.5"),
    ("--topk-decay", "0", "--topk-decay: the per-epoch decay of k must be in (0, 1], got 0.0"),
    ("--topk-decay", "1.01", "--topk-decay: the per-epoch decay of k must be in (0, 1], got 1.01"),
])
def test_topk_out_of_range_is_refused(folder, tmp_path, capsys, flag, value, message):
    rc, err = _train_cli(folder, tmp_path / "run", capsys, flag, value)
    assert rc == 2 and message in err, err
    assert not (tmp_path / "run").exists()


def test_stop_at_ends_early_without_changing_the_schedule(folder, tmp_path):
    """--stop-at 6 of a 12-step decaying schedule, then resumed to the end, is the straight
    run exactly: the LR decay counted to 12 steps all along (a 6-step schedule would have
    decayed from step 3)."""
    data = load_image_folder(folder, size=16)
    straight = GanTrainer(_gan_cfg(tmp_path / "a", epochs=3, lr_decay=True), data)
    straight.run()
    stopped = GanTrainer(_gan_cfg(tmp_path / "b", epochs=3, lr_decay=True, stop_at=6), data)
    report = stopped.run()
    assert report["steps"] == 6 and stopped.total_steps == 12
    _, config = load_model(tmp_path / "b" / "generator")
    assert config["trained_steps"] == 6
    resumed = GanTrainer(_gan_cfg(tmp_path / "b", epochs=3, lr_decay=True), data, resume=True)
    resumed.run()
    for a, b in zip(straight.ema.model.state_dict().values(), resumed.ema.model.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("family", ["gan", "vae"])
@pytest.mark.parametrize("stop_at", ["0", "5"])
def test_stop_at_outside_the_schedule_is_refused(folder, tmp_path, capsys, family, stop_at):
    rc, err = _train_cli(folder, tmp_path / "run", capsys, "--stop-at", stop_at, family=family)
    assert rc == 2 and "--stop-at: must be between 1 and the schedule's 4 steps" in err, err
    assert not (tmp_path / "run").exists()


def test_vae_run_lowers_reconstruction_and_resumes_exactly(folder, tmp_path):
    data = load_image_folder(folder, size=16)
    cfg = dict(size=16, nz=4, width=8, cond_dim=4, batch=8, progress=False, kl_warmup=10,
               sample_every=1000, checkpoint_every=1000, lr=3e-3)
    straight = VaeTrainer(VaeTrainConfig(out=str(tmp_path / "a"), epochs=8, **cfg), data)
    straight.run()
    VaeTrainer(VaeTrainConfig(out=str(tmp_path / "b"), epochs=4, **cfg), data).run()
    resumed = VaeTrainer(VaeTrainConfig(out=str(tmp_path / "b"), epochs=8, **cfg), data, resume=True)
    assert resumed.step == 16
    resumed.run()
    fresh = VaeTrainer(VaeTrainConfig(out=str(tmp_path / "c"), epochs=8, **cfg), data)
    x, prompt = fresh.batch(0)
    fresh.model.eval()
    with torch.no_grad():
        untrained = torch.nn.functional.binary_cross_entropy(fresh.model(x, prompt)[0], x).item()
    trained_model, _ = load_model(tmp_path / "b" / "generator")
    with torch.no_grad():
        trained = torch.nn.functional.binary_cross_entropy(trained_model(x, prompt)[0], x).item()
    assert trained < untrained
    a_model, _ = load_model(tmp_path / "a" / "generator")
    for a, b in zip(a_model.state_dict().values(), trained_model.state_dict().values()):
        assert torch.equal(a, b)


def test_diffaugment_is_seeded_and_keeps_shape():
    x = torch.rand(4, 4, 16, 16)
    a = diff_augment(x, "color,translation,cutout", torch.Generator().manual_seed(3))
    b = diff_augment(x, "color,translation,cutout", torch.Generator().manual_seed(3))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)
    assert torch.equal(diff_augment(x, "", torch.Generator()), x)


def test_image_folder_captions_bad_files_and_rgb(tmp_path):
    Image.new("RGBA", (40, 30), (255, 0, 0, 128)).save(tmp_path / "red_heart.png")
    Image.new("RGB", (20, 20), (0, 0, 255)).save(tmp_path / "blue-sky.jpg")
    (tmp_path / "broken.png").write_bytes(b"not an image at all")
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        data = load_image_folder(tmp_path, size=16)
    assert len(data) == 2 and data.skipped == 1
    assert sorted(data.captions) == ["blue sky", "red heart"]
    assert data.images.shape == (2, 4, 16, 16) and data.images.dtype == torch.uint8
    (tmp_path / "captions.csv").write_text("file,caption\nred_heart.png,a red heart\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rgb = load_image_folder(tmp_path, size=16, channels=3)
    assert "a red heart" in rgb.captions and rgb.images.shape[1] == 3
    i = rgb.captions.index("a red heart")
    assert rgb.images[i, :, 0, 0].tolist() == [255, 127, 127]  # half-transparent red on white


def test_train_cli_end_to_end(folder, tmp_path, capsys):
    from aigc.cli import main

    rc = main(["train", "gan", "--data", str(folder), "--out", str(tmp_path / "run"), "--size", "16",
               "--epochs", "1", "--batch", "8", "--ngf", "8", "--ndf", "8", "--nz", "8", "--quiet"])
    assert rc == 0 and '"steps": 4' in capsys.readouterr().out
    assert main(["train", "export", str(tmp_path / "run"), str(tmp_path / "served" / "gan")]) == 0
    with safe_open(str(tmp_path / "served" / "gan.safetensors"), "pt") as f:
        assert all(f.get_tensor(k).dtype in (torch.float16, torch.int64) for k in f.keys())
    assert main(["train", "gan", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 2


def test_minibatch_std_and_mode_seeking_train_and_resume_exactly(folder, tmp_path, capsys):
    data = load_image_folder(folder, size=16)
    kw = dict(minibatch_std=4, mode_seeking=1.0)
    straight = GanTrainer(_gan_cfg(tmp_path / "a", epochs=3, **kw), data)
    report = straight.run()
    assert report["final"]["mode_seeking"] > 0  # reported with the losses
    _resumed_as_straight(straight, tmp_path / "b", data, kw)
    assert straight.model_cfg.minibatch_std == 4 and straight.D.head.in_channels == 8 * 2 + 1
    rc, err = _train_cli(folder, tmp_path / "b", capsys, "--ngf", "8", "--ndf", "8", "--resume")
    assert rc == 2 and "--minibatch-std (checkpoint: 4, now: 0)" in err, err
    rc, err = _train_cli(folder, tmp_path / "c", capsys, "--mode-seeking", "-1")
    assert rc == 2 and "--mode-seeking: must be >= 0" in err, err


@pytest.mark.parametrize("space", ["pixels", "features"])
def test_mode_seeking_term_is_large_for_a_collapsed_generator(folder, tmp_path, space):
    data = load_image_folder(folder, size=16)
    tr = GanTrainer(_gan_cfg(tmp_path, mode_seeking=1.0, ms_space=space), data)
    real, prompt = tr.batch(0)
    z = torch.randn(real.shape[0], 8, generator=torch.Generator().manual_seed(1))
    tr.G.train()
    varied = tr._mode_seeking(tr.G(z, prompt), z, prompt, 0)
    with torch.no_grad():  # a generator that ignores z: every latent gives the same picture
        tr.G.main[0].weight[:8].zero_()
        for m in tr.G.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eval()
    collapsed = tr._mode_seeking(tr.G(z, prompt), z, prompt, 0)
    assert collapsed > 100 * varied


def test_feature_mode_seeking_round_trips_and_resumes_exactly(folder, tmp_path, capsys):
    """--ms-space features is saved with the run; a resume must repeat it (an old checkpoint,
    which has no ms_space, resumes as pixels); the run continues exactly, EMA included."""
    flags = ("--ngf", "8", "--ndf", "8", "--checkpoint-every", "2", "--minibatch-std", "4",
             "--mode-seeking", "0.2", "--ms-space", "features")
    _exact_resume_then_export(folder, tmp_path, capsys, *flags)
    meta = json.loads((tmp_path / "b" / "checkpoint.json").read_text())
    assert meta["train"]["ms_space"] == "features" and meta["train"]["mode_seeking"] == 0.2
    rc, err = _train_cli(folder, tmp_path / "b", capsys, *flags[:-2], "--resume")
    assert rc == 2 and "--ms-space features" in err and "now: pixels" in err, err
    with pytest.raises(ValueError, match="--ms-space: must be one of pixels, features"):
        GanTrainer(_gan_cfg(tmp_path / "c", mode_seeking=1.0, ms_space="latents"), load_image_folder(folder, size=16))
    # a checkpoint from before the flag resumes in pixel space, as it was trained
    meta["train"].pop("ms_space")
    (tmp_path / "b" / "checkpoint.json").write_text(json.dumps(meta))
    assert _train_cli(folder, tmp_path / "b", capsys, *flags[:-2], "--resume", "--epochs", "2")[0] == 0


def test_feature_mode_seeking_reaches_g_and_leaves_d_alone(folder, tmp_path):
    """The feature-space term is finite, has a gradient in G's parameters, leaves D's buffers
    (BatchNorm statistics) as they were, and does not change D's step: after one training
    step D is the same with the term on as with it off, while G differs."""
    data = load_image_folder(folder, size=16)
    tr = GanTrainer(_gan_cfg(tmp_path / "a", mode_seeking=0.2, ms_space="features", minibatch_std=4), data)
    real, prompt = tr.batch(0)
    z = torch.randn(real.shape[0], 8, generator=torch.Generator().manual_seed(1))
    d_before = {k: v.clone() for k, v in tr.D.state_dict().items()}
    term = tr._mode_seeking(tr.G(z, prompt), z, prompt, 0)
    assert torch.isfinite(term) and term > 0
    assert all(torch.equal(v, tr.D.state_dict()[k]) for k, v in d_before.items())  # buffers untouched
    term.backward()
    grads = [p.grad for p in tr.G.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)

    on = GanTrainer(_gan_cfg(tmp_path / "b", mode_seeking=0.2, ms_space="features", minibatch_std=4), data)
    off = GanTrainer(_gan_cfg(tmp_path / "c", minibatch_std=4), data)
    on.train_step(0), off.train_step(0)
    d_on, d_off = on.D.state_dict(), off.D.state_dict()
    assert all(torch.equal(d_on[k], d_off[k]) for k in d_on)
    assert not all(torch.equal(a, b) for a, b in zip(on.G.parameters(), off.G.parameters()))


def _zero_latent(g: torch.nn.Module, nz: int) -> None:
    """Make a generator ignore z: every latent gives the same picture for a prompt."""
    with torch.no_grad():
        g.main[0].weight[:nz].zero_()


def test_category_groups_share_a_category_word_and_leave_the_other_rows_as_they_were(folder, tmp_path):
    """--mbstd-groups category: in a batch of 16 with groups of 4 (4 strided groups: rows j, j+4,
    j+8, j+12), group 0 is four distinct images of its first image's category, each conditioned
    on the category word; every other row is the plain run's row with the plain run's prompt."""
    data = load_image_folder(folder, size=16)
    grouped = GanTrainer(_gan_cfg(tmp_path / "a", batch=16, minibatch_std=4, mbstd_groups="category"), data)
    plain = GanTrainer(_gan_cfg(tmp_path / "b", batch=16, minibatch_std=4), data)
    for step in range(3):
        real_p, _ = plain.batch(step)
        texts_p, idx_p = plain._texts, plain.batch_indices(step)
        real_g, _ = grouped.batch(step)
        texts_g = grouped._texts
        rows = [0, 4, 8, 12]
        category = data.categories[int(idx_p[0])]
        assert [texts_g[r] for r in rows] == [category] * 4
        assert torch.equal(real_g[0], real_p[0])  # the group keeps its first image
        members = {i for i, c in enumerate(data.categories) if c == category}
        picked = [int(i) for i in grouped.category_groups(idx_p, texts_p, step)[0][rows]]
        assert len(set(picked)) == 4 and set(picked) <= members
        others = [r for r in range(16) if r not in rows]
        assert [texts_g[r] for r in others] == [texts_p[r] for r in others]
        assert torch.equal(real_g[others], real_p[others])


def test_category_groups_let_d_see_a_generator_that_ignores_z(folder, tmp_path):
    """Why the flag exists: with random groups a generator that draws one picture per prompt
    still varies inside every group (the prompts differ), so minibatch stddev cannot see the
    collapse; in a category group all rows share one prompt, and its variance is zero."""
    data = load_image_folder(folder, size=16)

    def group_variance(x: torch.Tensor) -> torch.Tensor:  # the strided layout minibatch_stddev uses
        return x.reshape(4, 4, -1).var(dim=0, unbiased=False).mean(dim=1)

    for groups in ("random", "category"):
        tr = GanTrainer(_gan_cfg(tmp_path / groups, batch=16, minibatch_std=4, mbstd_groups=groups), data)
        _zero_latent(tr.G, 8)
        real, prompt = tr.batch(0)
        z = torch.randn(16, 8, generator=torch.Generator().manual_seed(1))
        tr.G.eval(), tr.D.eval()
        with torch.no_grad():
            fake = group_variance(tr.D.features(tr.G(z, prompt)))
            reals = group_variance(tr.D.features(real))
        assert (reals > 0).all()  # different real images in every group
        assert (fake[1:] > 0).all()  # groups that mix prompts vary either way
        if groups == "category":
            assert fake[0] < 1e-6 * fake[1:].min()
        else:
            assert fake[0] > 1e-3 * fake[1:].min()


def test_category_groups_resume_exactly_and_are_refused_without_what_they_need(folder, tmp_path, capsys):
    flags = ("--ngf", "8", "--ndf", "8", "--checkpoint-every", "2", "--minibatch-std", "4",
             "--mbstd-groups", "category")
    _exact_resume_then_export(folder, tmp_path, capsys, *flags)
    meta = json.loads((tmp_path / "b" / "checkpoint.json").read_text())
    assert meta["train"]["mbstd_groups"] == "category"
    rc, err = _train_cli(folder, tmp_path / "b", capsys, *flags[:-2], "--resume")
    assert rc == 2 and "--mbstd-groups category" in err and "now: random" in err, err
    rc, err = _train_cli(folder, tmp_path / "c", capsys, "--mbstd-groups", "category")
    assert rc == 2 and "--mbstd-groups category: needs --minibatch-std" in err, err
    rc, err = _train_cli(folder, tmp_path / "d", capsys, "--minibatch-std", "4", "--mbstd-groups", "category",
                         "--cond-dim", "0")
    assert rc == 2 and "--mbstd-groups category: needs a conditional model" in err, err
    with pytest.raises(ValueError, match="--mbstd-groups: must be one of random, category"):
        GanTrainer(_gan_cfg(tmp_path / "e", minibatch_std=4, mbstd_groups="prompt"), load_image_folder(folder, size=16))


def test_balanced_groups_draw_categories_evenly_and_the_share_sets_how_many_groups(folder, tmp_path):
    """--mbstd-groups balanced: each category group's category is drawn uniformly, whatever the
    batch holds, and all its images come from it; --mbstd-share sets how many of the groups
    are category groups (a batch of 32 in groups of 4 has 8 groups: share 0.5 makes 4)."""
    data = load_image_folder(folder, size=16)
    tr = GanTrainer(_gan_cfg(tmp_path / "a", batch=32, minibatch_std=4, mbstd_groups="balanced", mbstd_share=0.5),
                    data)
    plain = GanTrainer(_gan_cfg(tmp_path / "b", batch=32, minibatch_std=4), data)
    seen: Counter[str] = Counter()
    for step in range(40):
        tr.batch(step), plain.batch(step)
        idx = tr.category_groups(plain.batch_indices(step), plain._texts, step)[0]
        for j in range(8):
            rows = [j + 8 * k for k in range(4)]
            if j < 4:
                (category,) = {tr._texts[r] for r in rows}
                assert {data.categories[int(idx[r])] for r in rows} == {category}
                assert len({int(idx[r]) for r in rows}) == 4
                seen[category] += 1
            else:  # the other half keep the plain run's rows and prompts
                assert [tr._texts[r] for r in rows] == [plain._texts[r] for r in rows]
    assert set(seen) == {"disc", "square"} and abs(seen["disc"] - seen["square"]) < 40
    with pytest.raises(ValueError, match=r"--mbstd-share: the share of category groups must be in \(0, 1\]"):
        GanTrainer(_gan_cfg(tmp_path / "x", minibatch_std=4, mbstd_groups="balanced", mbstd_share=0), data)


def test_coarse_discriminator_sees_pooled_images_trains_and_resumes_exactly(folder, tmp_path, capsys):
    """--coarse-d 2: a second D on the 2x average-pooled images (pix2pixHD's multi-scale D).
    Both Ds learn in one optimiser, G answers to both, the checkpoint carries the second D,
    and a resumed run continues exactly (the coarse D included)."""
    data = load_image_folder(folder, size=32)
    kw = dict(size=32, coarse_d=2)
    straight = GanTrainer(_gan_cfg(tmp_path / "a", epochs=3, **kw), data)
    assert straight.D_coarse.cfg.size == 16 and straight.D.cfg.size == 32
    before = [p.detach().clone() for p in straight.D_coarse.parameters()]
    report = straight.run()
    assert report["final"]["loss_d_coarse"] > 0 and report["final"]["loss_g_coarse"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, straight.D_coarse.parameters()))
    with safe_open(str(tmp_path / "a" / "checkpoint.safetensors"), "pt") as f:
        assert any(k.startswith("d_coarse/") for k in f.keys())
    _resumed_as_straight(straight, tmp_path / "b", data, kw, "D_coarse")
    # the coarse D's gradient reaches G: with it, G's first step differs from plain G's
    plain = GanTrainer(_gan_cfg(tmp_path / "c", epochs=1, size=32), data)
    coarse = GanTrainer(_gan_cfg(tmp_path / "d", epochs=1, **kw), data)
    plain.train_step(0), coarse.train_step(0)
    assert any(not torch.equal(a, b) for a, b in zip(plain.G.parameters(), coarse.G.parameters()))


@pytest.mark.parametrize("factor, size", [(3, 64), (4, 32), (-2, 64)])
def test_coarse_discriminator_factor_is_checked(folder, tmp_path, capsys, factor, size):
    rc, err = _train_cli(folder, tmp_path / "run", capsys, "--coarse-d", str(factor))  # the CLI runs at --size 16
    assert rc == 2 and "--coarse-d: a pooling factor in 2, 4 that leaves at least 16 px" in err, err
    with pytest.raises(ValueError, match="--coarse-d"):
        GanTrainer(_gan_cfg(tmp_path / "x", size=size, coarse_d=factor), load_image_folder(folder, size=size))


def test_coarse_discriminator_must_be_repeated_on_resume(folder, tmp_path):
    data = load_image_folder(folder, size=32)
    GanTrainer(_gan_cfg(tmp_path / "a", epochs=1, size=32, coarse_d=2), data).run()
    with pytest.raises(ValueError, match="--coarse-d 2; repeat it"):
        GanTrainer(_gan_cfg(tmp_path / "a", epochs=2, size=32), data, resume=True)


def test_aux_classifier_names_each_rows_category_trains_and_resumes_exactly(folder, tmp_path):
    """--aux-class (AC-GAN) with --aux-twin (TAC-GAN): each row's label is the category of the
    prompt it was drawn with, both heads learn in D's optimiser, G answers to them, the
    checkpoint carries both, and a resumed run continues exactly."""
    data = load_image_folder(folder, size=16)
    kw = dict(aux_class=1.0, aux_twin=1.0)
    straight = GanTrainer(_gan_cfg(tmp_path / "a", epochs=3, **kw), data)
    assert straight.classes == ["disc", "square"]
    straight.batch(0)
    for text, label in zip(straight._texts, straight._labels.tolist()):
        assert text.startswith(straight.classes[label]), (text, label)  # "disc number 3" -> disc
    before = [p.detach().clone() for p in (*straight.aux.parameters(), *straight.aux_twin.parameters())]
    report = straight.run()
    final = report["final"]
    assert final["aux_d"] > 0 and 0.0 <= final["aux_fake_acc"] <= 1.0 and "aux_g" in final
    after = [*straight.aux.parameters(), *straight.aux_twin.parameters()]
    assert all(not torch.equal(a, b) for a, b in zip(before, after))
    with safe_open(str(tmp_path / "a" / "checkpoint.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert any(k.startswith("aux/") for k in keys) and any(k.startswith("aux_twin/") for k in keys)
    _resumed_as_straight(straight, tmp_path / "b", data, kw, "aux", "aux_twin")
    # the classifier's gradient reaches G, and the twin changes what it is
    firsts = []
    for name, extra in (("plain", {}), ("ac", dict(aux_class=1.0)), ("tac", kw), ("half", dict(aux_class=1.0, aux_twin=0.5))):
        tr = GanTrainer(_gan_cfg(tmp_path / name, epochs=1, **extra), data)
        tr.train_step(0)
        firsts.append([p.detach().clone() for p in tr.G.parameters()])
    for one, other in ((0, 1), (1, 2), (2, 3), (1, 3)):
        assert any(not torch.equal(a, b) for a, b in zip(firsts[one], firsts[other]))


def test_aux_classifier_learns_to_tell_the_categories_apart(folder, tmp_path):
    """The head is a real classifier: after a short run it names most real images' category
    (discs against squares; chance is a half)."""
    data = load_image_folder(folder, size=16)
    tr = GanTrainer(_gan_cfg(tmp_path / "a", epochs=30, aux_class=1.0, augment=""), data)
    tr.run()
    tr.D.eval()
    with torch.no_grad():
        prompt = tr.tokenizer.batch(data.categories)
        _, feats = tr.D(data.as_float(torch.arange(len(data)), tr.device), prompt, with_features=True)
        named = [tr.classes[i] for i in tr.aux(feats).argmax(dim=1).tolist()]
    right = sum(n == c for n, c in zip(named, data.categories))
    assert right >= 0.8 * len(data), (right, named)


@pytest.mark.parametrize("flags, message", [
    (("--aux-class", "-1"), "--aux-class: must be >= 0"),
    (("--aux-twin",), "--aux-twin: needs --aux-class WEIGHT"),
    (("--aux-margin", "0.5"), "--aux-margin: needs --aux-class WEIGHT"),
    (("--aux-class", "1", "--aux-margin", "1"), "--aux-margin: a probability in (0, 1), or 0 for off; got 1.0"),
    (("--aux-class", "1", "--aux-twin", "1.5"), "--aux-twin: a weight from 0 (AC-GAN) to 1 (TAC-GAN), got 1.5"),
    (("--aux-class", "1", "--aux-twin", "-0.5"), "--aux-twin: a weight from 0 (AC-GAN) to 1 (TAC-GAN), got -0.5"),
    (("--aux-class", "1", "--cond-dim", "0"), "--aux-class: needs a conditional model and at least two categories"),
])
def test_aux_classifier_flags_are_checked(folder, tmp_path, capsys, flags, message):
    rc, err = _train_cli(folder, tmp_path / "run", capsys, *flags)
    assert rc == 2 and message in err, err


def test_aux_classifier_needs_categories_and_must_be_repeated_on_resume(folder, tmp_path):
    data = load_image_folder(folder, size=16)
    data.categories = []  # a folder whose captions carry no category column
    with pytest.raises(ValueError, match="--aux-class: needs a conditional model and at least two categories"):
        GanTrainer(_gan_cfg(tmp_path / "x", aux_class=1.0), data)
    data = load_image_folder(folder, size=16)
    GanTrainer(_gan_cfg(tmp_path / "a", epochs=1, aux_class=1.0, aux_twin=1.0), data).run()
    with pytest.raises(ValueError, match="--aux-class 1.0; repeat it"):
        GanTrainer(_gan_cfg(tmp_path / "a", epochs=2), data, resume=True)
    with pytest.raises(ValueError, match="--aux-twin 1.0; repeat it"):
        GanTrainer(_gan_cfg(tmp_path / "a", epochs=2, aux_class=1.0, aux_twin=0.5), data, resume=True)


def test_aux_margin_lets_recognised_fakes_go(folder, tmp_path):
    """--aux-margin P: G's classifier term is a hinge at -log P. A margin no fake reaches is
    plain AC-GAN's term (the same first step); one every fake already passes adds nothing to
    G's loss (D's classifier still learns)."""
    data = load_image_folder(folder, size=16)

    def first_step(name: str, **kw: Any) -> tuple[dict[str, float], list[torch.Tensor]]:
        tr = GanTrainer(_gan_cfg(tmp_path / name, epochs=1, aux_class=1.0, **kw), data)
        out = tr.train_step(0)
        return out, [p.detach().clone() for p in tr.G.parameters()]

    ac_out, ac = first_step("ac")
    # two classes: an untrained head gives each fake about 1/2, so 0.999 is never reached, 1e-6 always is
    high_out, high = first_step("high", aux_margin=0.999)
    low_out, low = first_step("low", aux_margin=1e-6)
    assert high_out["aux_g"] == pytest.approx(ac_out["aux_g"] + math.log(0.999), rel=1e-5)
    for a, b in zip(ac, high):
        torch.testing.assert_close(a, b)
    assert low_out["aux_g"] == 0.0 and ac_out["aux_g"] > 0.5
    assert any(not torch.equal(a, b) for a, b in zip(ac, low))


def test_mismatched_prompts_come_from_another_category_and_a_one_category_batch_is_skipped(folder, tmp_path):
    """--mismatch: each row's wrong prompt is another row's, of an image of the other category;
    where the batch holds only one category there is no wrong prompt, and the row weighs 0."""
    data = load_image_folder(folder, size=16)
    tr = GanTrainer(_gan_cfg(tmp_path / "a", mismatch=1.0), data)
    assert tr.aux is None and tr.classes == ["disc", "square"]
    for step in range(4):
        tr.batch(step)
        prompt, keep = tr.mismatched(step)
        assert keep.tolist() == [1.0] * len(tr._texts)
        # which of the batch's prompts each row got: match its encoding (texts are distinct)
        encoded = [tr.tokenizer.batch([t])["ids"] for t in tr._texts]
        offsets = prompt["offsets"].tolist() + [prompt["ids"].shape[0]]
        for row in range(len(tr._texts)):
            ids = prompt["ids"][offsets[row]:offsets[row + 1]]
            sources = [j for j, e in enumerate(encoded) if torch.equal(e, ids)]
            assert sources and all(tr._labels[j] != tr._labels[row] for j in sources), (step, row)
        again, _ = tr.mismatched(step)  # drawn from the step's own generator: repeatable
        assert all(torch.equal(v, again[k]) for k, v in prompt.items())
    # a batch of one category: every row is left out, and the term is 0
    tr._labels = torch.zeros(len(tr._texts), dtype=torch.long)
    _, keep = tr.mismatched(0)
    assert keep.sum().item() == 0.0
    assert d_fake_term(torch.randn(len(tr._texts)), "bce", keep).item() == 0.0


@pytest.mark.parametrize("kind", ["bce", "hinge"])
def test_d_fake_term_is_d_losss_fake_half_and_weights_leave_rows_out(kind):
    real, fake = torch.zeros(6), torch.linspace(-2, 2, 6)
    half = d_loss(real, fake, kind) - d_loss(real, torch.full((6,), -1e4), kind)
    assert d_fake_term(fake, kind).item() == pytest.approx(half.item(), rel=1e-6)
    keep = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    assert d_fake_term(fake, kind, keep).item() == pytest.approx(d_fake_term(fake[[0, 2]], kind).item(), rel=1e-6)
    with pytest.raises(ValueError, match="unknown GAN loss"):
        d_fake_term(fake, "wgan")


def test_mismatch_trains_with_both_discriminators_and_resumes_exactly(folder, tmp_path):
    data = load_image_folder(folder, size=32)
    kw = dict(size=32, mismatch=1.0, coarse_d=2)
    straight = GanTrainer(_gan_cfg(tmp_path / "a", epochs=3, **kw), data)
    final = straight.run()["final"]
    assert final["mismatch_d"] > 0
    _resumed_as_straight(straight, tmp_path / "b", data, kw, "D_coarse")
    with pytest.raises(ValueError, match="--mismatch 1.0; repeat it"):
        GanTrainer(_gan_cfg(tmp_path / "b", epochs=4, size=32, coarse_d=2), data, resume=True)
    # the term changes what D learns from the first step
    firsts = []
    for name, extra in (("plain", {}), ("mis", dict(mismatch=1.0))):
        tr = GanTrainer(_gan_cfg(tmp_path / name, epochs=1, **extra), load_image_folder(folder, size=16))
        tr.train_step(0)
        firsts.append([p.detach().clone() for p in tr.D.parameters()])
    assert any(not torch.equal(a, b) for a, b in zip(*firsts))


def test_mismatch_teaches_d_which_prompt_an_image_fits(folder, tmp_path):
    """The point of the term: after a short run D scores real images higher under their own
    category word than under the other one, by far more than a run without the term does."""
    data = load_image_folder(folder, size=16)
    gaps = {}
    for name, weight in (("plain", 0.0), ("mis", 1.0)):
        tr = GanTrainer(_gan_cfg(tmp_path / name, epochs=30, mismatch=weight, augment=""), data)
        tr.run()
        tr.D.eval()
        other = {"disc": "square", "square": "disc"}
        with torch.no_grad():
            x = data.as_float(torch.arange(len(data)), tr.device)
            right = tr.D(x, tr.tokenizer.batch(data.categories))
            wrong = tr.D(x, tr.tokenizer.batch([other[c] for c in data.categories]))
        gaps[name] = (right - wrong).mean().item()
    assert gaps["mis"] > 2.0 and gaps["mis"] > gaps["plain"] + 1.0, gaps


@pytest.mark.parametrize("flags, message", [
    (("--mismatch", "-1"), "--mismatch: must be >= 0 (0 = off), got -1.0"),
    (("--mismatch", "1", "--cond-dim", "0"), "--mismatch: needs a conditional model and at least two categories"),
])
def test_mismatch_flags_are_checked(folder, tmp_path, capsys, flags, message):
    rc, err = _train_cli(folder, tmp_path / "run", capsys, *flags)
    assert rc == 2 and message in err, err


def _rebuild(tr: GanTrainer, data) -> tuple[float, float]:
    """G(mean latent the encoder reads off each training image, under its caption): (mean L1 to
    the image, the share of images whose rebuild is nearer to them than to any other image)."""
    tr.G.eval(), tr.encoder.eval()
    with torch.no_grad():
        x = data.as_float(torch.arange(len(data)), tr.device)
        mu, _ = tr.encoder(x)
        rebuilt = tr.G(mu, tr.tokenizer.batch(data.captions))
    dist = (rebuilt[:, None] - x[None]).abs().mean(dim=(2, 3, 4))
    return dist.diagonal().mean().item(), (dist.argmin(dim=1) == torch.arange(len(data))).float().mean().item()


def test_recon_teaches_g_to_redraw_each_training_image_from_its_latent(folder, tmp_path):
    """--recon (VAE-GAN): after a short run G redraws each training image from the latent the
    encoder reads off it (its L1 falls to under a quarter, and most rebuilds are nearest their own
    image among 32 of two shapes in random colours; chance is 1/32), the run logs both terms,
    and the KL keeps the latents near N(0, I)."""
    data = load_image_folder(folder, size=16)
    tr = GanTrainer(_gan_cfg(tmp_path / "a", epochs=100, lr=2e-3, recon=10.0, augment=""), data)
    before, _ = _rebuild(tr, data)
    tr.G.train(), tr.encoder.train()
    report = tr.run()
    after, matched = _rebuild(tr, data)
    assert after < 0.25 * before and matched >= 0.5, (before, after, matched)
    assert report["final"]["recon_l1"] > 0 and 0 < report["final"]["recon_kl"] < 50


def test_recon_resumes_exactly_with_its_encoder(folder, tmp_path):
    kw = dict(recon=10.0, coarse_d=2, size=32)
    data = load_image_folder(folder, size=32)
    straight = GanTrainer(_gan_cfg(tmp_path / "a", epochs=3, **kw), data)
    straight.run()
    with safe_open(str(tmp_path / "a" / "checkpoint.safetensors"), "pt") as f:
        assert any(k.startswith("encoder/") for k in f.keys())
    _resumed_as_straight(straight, tmp_path / "b", data, kw, "encoder")
    with pytest.raises(ValueError, match="--recon 10.0; repeat it"):
        GanTrainer(_gan_cfg(tmp_path / "b", epochs=4, size=32, coarse_d=2), data, resume=True)
    with pytest.raises(ValueError, match="--recon-kl 0.01; repeat it"):
        GanTrainer(_gan_cfg(tmp_path / "b", epochs=4, **kw, recon_kl=0.05), data, resume=True)
    # the served generator is G alone: the encoder stays in the checkpoint
    _, config = load_model(tmp_path / "a" / "generator")
    assert config["ngf"] == 8


@pytest.mark.parametrize("flags, message", [
    (("--recon", "-1"), "--recon/--recon-kl: must be >= 0 (--recon 0 = off), got -1.0/0.01"),
    (("--recon", "1", "--recon-kl", "-0.5"), "--recon/--recon-kl: must be >= 0 (--recon 0 = off), got 1.0/-0.5"),
])
def test_recon_flags_are_checked(folder, tmp_path, capsys, flags, message):
    rc, err = _train_cli(folder, tmp_path / "run", capsys, *flags)
    assert rc == 2 and message in err, err


def test_skip_z_widens_a_cond_norm_generator_exactly_then_lets_z_set_every_layer(folder, tmp_path):
    """--cond-norm-z (BigGAN's skip-z): warm-started from a plain cond-norm generator, the
    widened one draws exactly the same images (z's new columns are zero); after training, z
    moves each layer's scale and shift; the run resumes exactly and exports a generator that
    loads back with the flag."""
    data = load_image_folder(folder, size=16)
    GanTrainer(_gan_cfg(tmp_path / "base", epochs=1, cond_norm=True), data).run()
    base, _ = load_model(tmp_path / "base" / "generator")
    kw = dict(cond_norm=True, cond_norm_z=True, init_generator=str(tmp_path / "base" / "generator"))
    tr = GanTrainer(_gan_cfg(tmp_path / "a", epochs=3, **kw), data)
    tr.G.eval(), base.eval()
    _, prompt = tr.batch(0)
    z = torch.randn(prompt["offsets"].shape[0], 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(tr.G(z, prompt), base(z, prompt))
    norm = next(m for m in tr.G.main if hasattr(m, "gain"))
    assert norm.gain.weight.shape[1] == 8 + 8 and norm.gain.weight[:, 8:].abs().sum() == 0
    tr.G.train()
    tr.run()
    assert norm.gain.weight[:, 8:].abs().sum() > 0  # z's columns learned
    GanTrainer(_gan_cfg(tmp_path / "b", epochs=1, **kw), data).run()
    resumed = GanTrainer(_gan_cfg(tmp_path / "b", epochs=3, **kw), data, resume=True)
    resumed.run()
    _assert_same_g_and_d(tr, resumed)
    served, config = load_model(tmp_path / "a" / "generator")
    assert config["cond_norm_z"] is True
    with pytest.raises(ValueError, match="--cond-norm-z"):
        GanTrainer(_gan_cfg(tmp_path / "b", epochs=4, cond_norm=True), data, resume=True)


def test_a_resize_run_starts_from_a_transposed_generator_without_its_checkerboard(folder, tmp_path):
    """--upsample resize with a transposed-conv --init-generator: G starts as that generator's
    projection onto resize convs (engine.models.gan.resize_from_transposed, with skip-z's zero
    columns on top), the run reports what each layer dropped, and trains from there; the other
    way round is refused."""
    from engine.models.gan import Generator, resize_from_transposed

    data = load_image_folder(folder, size=16)
    GanTrainer(_gan_cfg(tmp_path / "base", epochs=1, cond_norm=True), data).run()
    base, _ = load_model(tmp_path / "base" / "generator")
    kw = dict(cond_norm=True, upsample="resize", init_generator=str(tmp_path / "base" / "generator"))
    tr = GanTrainer(_gan_cfg(tmp_path / "a", epochs=2, **kw), data)
    want, dropped = resize_from_transposed(base, Generator(tr.model_cfg))
    assert all(torch.equal(v, want[k]) for k, v in tr.G.state_dict().items())
    assert all(torch.equal(v, want[k]) for k, v in tr.ema.model.state_dict().items())
    assert len(dropped) == 2 and all(0 < d < 1 for d in dropped)
    report = tr.run()
    assert report["init"]["resize_dropped_energy"] == [round(d, 4) for d in dropped]
    assert any(not torch.equal(v, want[k]) for k, v in tr.G.state_dict().items())
    z_too = GanTrainer(_gan_cfg(tmp_path / "z", epochs=1, cond_norm_z=True, **kw), data)
    for k, v in z_too.G.state_dict().items():  # the projection, and z's columns zero
        w = want[k]
        assert torch.equal(v[:, :w.shape[1]], w) and v[:, w.shape[1]:].abs().sum() == 0 if v.shape != w.shape \
            else torch.equal(v, w), k
    with pytest.raises(ValueError, match="--init-generator: does not fit this run's model"):
        GanTrainer(_gan_cfg(tmp_path / "b", epochs=1, cond_norm=True,
                            init_generator=str(tmp_path / "a" / "generator")), data)


def test_a_wider_run_starts_from_a_narrow_generator_widened(folder, tmp_path):
    """--ngf a multiple of --init-generator's: G and its EMA start as the narrow generator
    widened (engine.models.gan.widen_generator), drawing its images; the run reports it and
    trains; a width that is not a multiple is refused with the flag named."""
    data = load_image_folder(folder, size=16)
    GanTrainer(_gan_cfg(tmp_path / "base", epochs=1, cond_norm=True), data).run()
    base, _ = load_model(tmp_path / "base" / "generator")
    kw = dict(cond_norm=True, init_generator=str(tmp_path / "base" / "generator"))
    tr = GanTrainer(_gan_cfg(tmp_path / "a", epochs=2, ngf=16, **kw), data)
    z = torch.randn(4, 8)
    prompt = tr.tokenizer.batch(["a", "b", "c", "d"])
    base.eval(), tr.G.eval(), tr.ema.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(tr.G(z, prompt), base(z, prompt), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(tr.ema.model(z, prompt), base(z, prompt), rtol=1e-4, atol=1e-5)
    report = tr.run()
    assert report["init"]["widened_ngf"] == [8, 16]
    assert load_model(tmp_path / "a" / "generator")[1]["ngf"] == 16
    with pytest.raises(ValueError, match="--init-generator: its ngf 8 cannot grow to --ngf 12"):
        GanTrainer(_gan_cfg(tmp_path / "b", epochs=1, ngf=12, **kw), data)


@pytest.mark.parametrize("flags, message", [
    (("--cond-norm-z",), "--cond-norm-z: needs --cond-norm"),
])
def test_skip_z_flags_are_checked(folder, tmp_path, capsys, flags, message):
    rc, err = _train_cli(folder, tmp_path / "run", capsys, *flags)
    assert rc == 2 and message in err, err

"""Post-hoc EMA: raw generator snapshots during training, averaged at export time."""
from __future__ import annotations

import pytest
import torch

from engine.models.prompt_encoder import make_prompt_encoder
from engine.models.weights import load_model
from engine.training.data import load_image_folder
from engine.training.gan_trainer import GanTrainConfig, GanTrainer
from engine.training.posthoc_ema import ema_weights, posthoc_ema, snapshot_stem, snapshot_steps


def _cfg(out, **kw) -> GanTrainConfig:
    base = dict(out=str(out), size=16, nz=8, ngf=8, ndf=8, cond_dim=8, batch=8, epochs=2,
                progress=False, sample_every=1000, checkpoint_every=1000, snapshot_every=2)
    return GanTrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def run(folder, tmp_path_factory):
    """A tiny 8-step run that keeps its raw generator every 2 steps."""
    out = tmp_path_factory.mktemp("run")
    trainer = GanTrainer(_cfg(out), load_image_folder(folder, size=16))
    trainer.run()
    return out, trainer


def test_snapshots_hold_the_raw_generator_at_their_steps(run):
    out, trainer = run
    assert snapshot_steps(out) == [2, 4, 6, 8]
    last, config = load_model(snapshot_stem(out, 8))
    assert config["trained_steps"] == 8
    for (k, a), b in zip(trainer.G.state_dict().items(), last.state_dict().values()):
        assert torch.equal(a, b), k
    earlier, _ = load_model(snapshot_stem(out, 4))
    assert not torch.equal(earlier.state_dict()["main.0.weight"], last.state_dict()["main.0.weight"])


def test_resume_rewrites_the_same_snapshots(folder, run, tmp_path):
    out, _ = run
    data = load_image_folder(folder, size=16)
    GanTrainer(_cfg(tmp_path, epochs=1), data).run()
    GanTrainer(_cfg(tmp_path), data, resume=True).run()
    assert snapshot_steps(tmp_path) == [2, 4, 6, 8]
    for step in (2, 8):
        a = snapshot_stem(out, step).with_suffix(".safetensors").read_bytes()
        assert snapshot_stem(tmp_path, step).with_suffix(".safetensors").read_bytes() == a


def test_ema_weights_match_the_hand_computed_average():
    states = [(2, {"w": torch.tensor([0.0])}), (4, {"w": torch.tensor([1.0])}), (6, {"w": torch.tensor([2.0])})]
    # H = 2: decay 1/2 per step, so each 2-step gap keeps 1/4 of the average
    assert ema_weights(states, 2.0)["w"].item() == pytest.approx(0.25 * (0.25 * 0 + 0.75 * 1) + 0.75 * 2)
    assert ema_weights(states, 1.0)["w"].item() == 2.0  # length 1: the last weights
    assert ema_weights(states, 1e9)["w"].item() == pytest.approx(0.0, abs=1e-6)  # very long: the first


def test_posthoc_ema_ends_at_the_chosen_snapshot_and_keeps_its_batchnorm_statistics(run):
    out, _ = run
    raw4, _ = load_model(snapshot_stem(out, 4))
    same, config = posthoc_ema(out, 1.0, at=4)
    for (k, a), b in zip(raw4.state_dict().items(), same.state_dict().values()):
        assert torch.equal(a, b), k
    assert config["trained_steps"] == 4 and config["posthoc_ema"] == {"ema_steps": 1.0, "snapshots": 2, "first": 2}
    long, _ = posthoc_ema(out, 4.0)
    raw8, _ = load_model(snapshot_stem(out, 8))
    name = next(k for k in raw8.state_dict() if k.endswith("running_mean"))
    assert torch.equal(long.state_dict()[name], raw8.state_dict()[name])
    w = "main.0.weight"
    expected = ema_weights([(s, load_model(snapshot_stem(out, s))[0].state_dict()) for s in (2, 4, 6, 8)], 4.0)[w]
    assert torch.allclose(long.state_dict()[w], expected.float())
    assert not torch.allclose(long.state_dict()[w], raw8.state_dict()[w])


def test_export_with_ema_steps_writes_a_servable_fp16_generator(run, tmp_path):
    from aigc.cli import main

    out, _ = run
    assert main(["train", "export", str(out), str(tmp_path / "gan"), "--ema-steps", "4", "--at", "6"]) == 0
    g, config = load_model(tmp_path / "gan")
    assert config["trained_steps"] == 6 and config["posthoc_ema"]["ema_steps"] == 4.0
    prompt = make_prompt_encoder(config["tokenizer"]).batch(["disc", "square"])
    assert g(torch.randn(2, 8), prompt).shape == (2, 4, 16, 16)


@pytest.mark.parametrize("flags, message", [
    (["--ema-steps", "0.5"], "--ema-steps: must be at least 1"),
    (["--ema-steps", "4", "--at", "5"], "--at: the run has no snapshot at step 5 (it has 4, from step 2 to 8)"),
    (["--at", "4"], "--at: only with --ema-steps"),
])
def test_export_refuses_what_it_cannot_rebuild(run, tmp_path, capsys, flags, message):
    from aigc.cli import main

    out, _ = run
    assert main(["train", "export", str(out), str(tmp_path / "gan"), *flags]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "gan.safetensors").exists()


def test_export_without_snapshots_says_how_to_keep_them(folder, tmp_path, capsys):
    from aigc.cli import main

    GanTrainer(_cfg(tmp_path / "run", epochs=1, snapshot_every=0), load_image_folder(folder, size=16)).run()
    assert snapshot_steps(tmp_path / "run") == []
    assert main(["train", "export", str(tmp_path / "run"), str(tmp_path / "gan"), "--ema-steps", "4"]) == 2
    assert "train with --snapshot-every K" in capsys.readouterr().err


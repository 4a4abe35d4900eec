"""The critic trainer: a discriminator trained against a frozen generator, for serving-time
selection. Tiny CPU runs: it learns to separate real from fake on images it never saw,
runs are reproducible, and bad inputs are refused with the field named."""
from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import torch

from engine.evaluation.judge import is_held_out
from engine.models.gan import Discriminator
from engine.models.state import save_model
from engine.models.weights import load_model
from engine.training.critic_trainer import CriticTrainConfig, CriticTrainer, auc
from engine.training.data import load_image_folder
from engine.training.gan_trainer import GanTrainConfig, GanTrainer


@pytest.fixture(scope="module")
def generator_stem(folder, tmp_path_factory):
    """An untrained conditional 16 px generator, saved the way a finished run saves it."""
    out = tmp_path_factory.mktemp("gan")
    cfg = GanTrainConfig(out=str(out), size=16, nz=8, ngf=8, ndf=8, cond_dim=8, batch=8, epochs=1, progress=False)
    GanTrainer(cfg, load_image_folder(folder, size=16)).save()
    return out / "generator"


def _cfg(generator_stem, out, **kw) -> CriticTrainConfig:
    return CriticTrainConfig(**{**dict(generator=str(generator_stem), out=str(out), steps=100, batch=8, ndf=8,
                                       progress=False), **kw})


def test_auc_counts_ties_half():
    assert auc(torch.tensor([2.0, 3.0]), torch.tensor([0.0, 1.0])) == 1.0
    assert auc(torch.tensor([0.0]), torch.tensor([1.0])) == 0.0
    assert auc(torch.tensor([1.0]), torch.tensor([1.0])) == 0.5


def test_critic_learns_to_tell_real_from_the_generators_fakes(folder, generator_stem, tmp_path):
    data = load_image_folder(folder, size=16)
    trainer = CriticTrainer(_cfg(generator_stem, tmp_path / "critic"), data)
    assert trainer.held_out_auc() < 0.9  # untrained: no better than a guess, give or take
    report = trainer.run()
    first, last = trainer.history[0]["loss"], trainer.history[-1]["loss"]
    assert last < first
    assert report["held_out_auc"] > 0.95  # real images it never trained on, against fresh fakes
    critic, meta = load_model(tmp_path / "critic")
    assert isinstance(critic, Discriminator) and meta["part"] == "critic"
    assert meta["spectral_norm"] and meta["ndf"] == 8
    gen_meta = json.loads(generator_stem.with_suffix(".json").read_text())
    assert meta["generator_version"] == gen_meta["version"] and meta["tokenizer"] == gen_meta["tokenizer"]
    assert meta["generator_sha256"] == hashlib.sha256(generator_stem.with_suffix(".safetensors").read_bytes()).hexdigest()
    # no BatchNorm: a row's score does not depend on its batch
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in critic.modules())


def test_critic_runs_are_reproducible(folder, generator_stem, tmp_path):
    data = load_image_folder(folder, size=16)
    a = CriticTrainer(_cfg(generator_stem, tmp_path / "a", steps=10), data)
    a.run()
    b = CriticTrainer(_cfg(generator_stem, tmp_path / "b", steps=10), data)
    b.run()
    for (k, x), y in zip(a.D.state_dict().items(), b.D.state_dict().values()):
        assert torch.equal(x, y), k


def test_unconditional_generator_is_refused(folder, tmp_path):
    cfg = GanTrainConfig(out=str(tmp_path), size=16, nz=8, ngf=8, ndf=8, cond_dim=0, batch=8, epochs=1, progress=False)
    GanTrainer(cfg, load_image_folder(folder, size=16)).save()
    with pytest.raises(ValueError, match="--generator .*conditional"):
        CriticTrainer(_cfg(tmp_path / "generator", tmp_path / "critic"), load_image_folder(folder, size=16))


def test_a_vae_is_refused_as_the_generator(folder, tmp_path):
    from engine.training.vae_trainer import VaeTrainConfig, VaeTrainer

    cfg = VaeTrainConfig(out=str(tmp_path), size=16, nz=4, width=8, cond_dim=4, batch=8, epochs=1, progress=False)
    VaeTrainer(cfg, load_image_folder(folder, size=16)).save()
    with pytest.raises(ValueError, match="--generator .*needs a GAN generator, not 'vae'"):
        CriticTrainer(_cfg(tmp_path / "generator", tmp_path / "critic"), load_image_folder(folder, size=16))


def test_train_critic_cli(folder, generator_stem, tmp_path, capsys):
    from aigc.cli import main

    rc = main(["train", "critic", "--generator", str(generator_stem), "--data", str(folder),
               "--out", str(tmp_path / "critic"), "--steps", "5", "--batch", "8", "--ndf", "8", "--quiet"])
    assert rc == 0 and '"held_out_auc"' in capsys.readouterr().out
    assert (tmp_path / "critic.safetensors").exists()
    assert main(["train", "critic", "--generator", str(tmp_path / "missing"), "--data", str(folder),
                 "--out", str(tmp_path / "x")]) == 2
    assert "aigc train critic" in capsys.readouterr().err


def test_a_critic_file_builds_a_discriminator(generator_stem, tmp_path):
    g, config = load_model(generator_stem)
    d = Discriminator(type(g.cfg).from_dict({**config, "spectral_norm": True}))
    save_model(d, {**config, "spectral_norm": True, "part": "critic"}, tmp_path / "c")
    loaded, _ = load_model(tmp_path / "c")
    assert isinstance(loaded, Discriminator)


def test_fine_tune_starts_from_the_generator_and_the_critic(folder, generator_stem, tmp_path):
    data = load_image_folder(folder, size=16)
    CriticTrainer(_cfg(generator_stem, tmp_path / "critic", steps=3), data).run()
    base = dict(size=16, nz=8, ngf=8, ndf=8, cond_dim=8, batch=8, epochs=1, progress=False, loss="hinge")
    tr = GanTrainer(GanTrainConfig(out=str(tmp_path / "ft"), init_generator=str(generator_stem),
                                   init_discriminator=str(tmp_path / "critic"), **base), data)
    g, g_config = load_model(generator_stem)
    d, _ = load_model(tmp_path / "critic")
    for module, ref in ((tr.G, g), (tr.ema.model, g), (tr.D, d)):
        for (k, a), b in zip(module.state_dict().items(), ref.state_dict().values()):
            assert torch.equal(a, b), k
    assert tr.tokenizer.to_dict() == g_config["tokenizer"]
    # the fine-tune's version counts on from the generator's own steps, never backwards
    for suffix in (".safetensors", ".json"):
        shutil.copy(generator_stem.with_suffix(suffix), (tmp_path / "g40").with_suffix(suffix))
    base_steps = 40
    (tmp_path / "g40.json").write_text(json.dumps({**g_config, "trained_steps": base_steps}))
    tr = GanTrainer(GanTrainConfig(out=str(tmp_path / "ft40"), init_generator=str(tmp_path / "g40"), **base), data)
    tr.run()
    _, out_config = load_model(tmp_path / "ft40" / "generator")
    assert tr.step > 0 and out_config["trained_steps"] == base_steps + tr.step
    assert out_config["version"] == f"step-{base_steps + tr.step}" and out_config["fine_tuned_from_steps"] == base_steps
    # a discriminator of another shape is refused, naming the flag
    with pytest.raises(ValueError, match="--init-discriminator: does not fit"):
        GanTrainer(GanTrainConfig(out=str(tmp_path / "x"), init_generator=str(generator_stem),
                                  init_discriminator=str(tmp_path / "critic"), **{**base, "ndf": 16}), data)
    # so is a plain generator for a --cond-norm run, and the hint names that flag
    with pytest.raises(ValueError, match="--init-generator: does not fit .*--cond-norm"):
        GanTrainer(GanTrainConfig(out=str(tmp_path / "y"), init_generator=str(generator_stem), cond_norm=True,
                                  **base), data)


def test_fine_tune_cli_refuses_a_mismatched_discriminator(folder, generator_stem, tmp_path, capsys):
    from aigc.cli import main

    data = load_image_folder(folder, size=16)
    CriticTrainer(_cfg(generator_stem, tmp_path / "critic", steps=3), data).run()
    rc = main(["train", "gan", "--data", str(folder), "--out", str(tmp_path / "ft"), "--size", "16", "--nz", "8",
               "--ngf", "8", "--ndf", "8", "--cond-dim", "8", "--loss", "bce", "--quiet",
               "--init-generator", str(generator_stem), "--init-discriminator", str(tmp_path / "critic")])
    assert rc == 2 and "--init-discriminator" in capsys.readouterr().err


def test_a_data_set_without_held_out_images_is_refused(folder, generator_stem, tmp_path):
    data = load_image_folder(folder, size=16)
    assert not is_held_out("img_00.png")
    data.files = ["img_00.png"] * len(data)  # every image on the training side of the split
    with pytest.raises(ValueError, match="--data: the critic needs training and held-out images"):
        CriticTrainer(_cfg(generator_stem, tmp_path / "c"), data)


def test_init_discriminator_alone_is_refused(folder, generator_stem, tmp_path):
    with pytest.raises(ValueError, match="--init-discriminator needs --init-generator"):
        GanTrainer(GanTrainConfig(out=str(tmp_path), init_discriminator=str(generator_stem), size=16, nz=8, ngf=8,
                                  ndf=8, cond_dim=8, progress=False), load_image_folder(folder, size=16))

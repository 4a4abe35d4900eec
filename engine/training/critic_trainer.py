"""A critic for a finished generator: a discriminator trained against the frozen (EMA)
generator, for discriminator-driven sample selection at serving time (Azadi et al. 2019,
"Discriminator Rejection Sampling"; Turner et al. 2019, "Metropolis-Hastings GAN").

Why not reuse the training discriminator: it learned against a moving, non-EMA generator
on augmented images, and a GAN run ends with D and G in balance, not with D calibrated.
DRS's recipe is to keep training D on the final generator until it separates real from
fake; its logit then estimates log p_data(x)/p_g(x), which is what selection needs.

The critic has spectral norm and no BatchNorm, so a row's score does not depend on its
batch (serving scores candidates in fixed micro-batches). Real images come from the
judge's training split only: the held-out split measures whether the critic generalises
(its AUC on held-out real images against fresh fakes is in the report).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from engine.evaluation.judge import HELD_OUT_PERCENT, is_held_out
from engine.models.gan import Discriminator, GanConfig
from engine.models.prompt_encoder import make_prompt_encoder
from engine.models.state import save_model
from engine.models.weights import load_model
from engine.runtime import file_sha256
from engine.training.data import ImageSet
from engine.training.diffaugment import diff_augment
from engine.training.gan_trainer import step_generator
from engine.training.losses import d_loss


@dataclass
class CriticTrainConfig:
    generator: str  # stem of the frozen generator, e.g. plugins/emoji/gan
    out: str  # stem to write, e.g. plugins/emoji/critic
    steps: int = 2000
    batch: int = 64
    ndf: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    augment: str = "translation"  # colour and cutout would hide the very flaws it must see
    seed: int = 0
    progress: bool = True


def auc(pos: torch.Tensor, neg: torch.Tensor) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    diff = pos.double()[:, None] - neg.double()[None, :]
    return float((diff > 0).double().mean() + 0.5 * (diff == 0).double().mean())


class CriticTrainer:
    def __init__(self, cfg: CriticTrainConfig, data: ImageSet) -> None:
        self.cfg = cfg
        self.G, gen_config = load_model(cfg.generator)
        if gen_config.get("kind") != "gan":
            raise ValueError(f"--generator {cfg.generator}: a critic needs a GAN generator, not {gen_config.get('kind')!r}")
        self.G.requires_grad_(False)
        if self.G.embed is None:
            raise ValueError(f"--generator {cfg.generator}: a critic needs a conditional GAN generator")
        self.tokenizer = make_prompt_encoder(gen_config["tokenizer"])
        self.gen_config = gen_config
        self.model_cfg = GanConfig.from_dict({**gen_config, "ndf": cfg.ndf, "spectral_norm": True,
                                             # a row's score must not depend on its batch (serving pads chunks)
                                             "minibatch_std": 0})
        torch.manual_seed(cfg.seed)
        self.D = Discriminator(self.model_cfg)
        self.opt = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
        held = torch.tensor([is_held_out(f) for f in data.files]) if data.files else torch.zeros(len(data), dtype=torch.bool)
        self.train_idx = torch.nonzero(~held).flatten()
        self.held_idx = torch.nonzero(held).flatten()
        if not len(self.train_idx) or not len(self.held_idx):
            raise ValueError(f"--data: the critic needs training and held-out images (split by a hash of the "
                             f"file name, {HELD_OUT_PERCENT}% held out); got {len(self.train_idx)} and {len(self.held_idx)}")
        self.data = data
        self.history: list[dict[str, float]] = []

    def train_step(self, step: int) -> dict[str, float]:
        cfg = self.cfg
        g = step_generator(cfg.seed, step, 0)
        idx = self.train_idx[torch.randint(len(self.train_idx), (cfg.batch,), generator=g)]
        texts = self.data.draw_prompts(idx, g)
        real = self.data.as_float(idx)
        fake = self._fakes(len(texts), self.tokenizer.batch(texts), g)
        # one batch of real and fake: augmented alike, scored against the same prompts
        x = diff_augment(torch.cat([real, fake]), cfg.augment, step_generator(cfg.seed, step, 3))
        logits = self.D(x, self.tokenizer.batch(texts + texts))
        loss = d_loss(logits[:cfg.batch], logits[cfg.batch:], "bce")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.item(), "acc": float(((logits[:cfg.batch] > 0).float().mean()
                                                   + (logits[cfg.batch:] < 0).float().mean()) / 2)}

    @torch.no_grad()
    def _fakes(self, n: int, prompt: dict[str, torch.Tensor], g: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, self.gen_config["nz"], generator=g)
        return self.G(z, prompt)

    @torch.no_grad()
    def held_out_auc(self, n: int = 512) -> float:
        """AUC of the critic's logit, held-out real images against fresh fakes."""
        g = torch.Generator().manual_seed(self.cfg.seed + 1_000_003)
        idx = self.held_idx[:n]
        self.D.eval()
        real_scores, fake_scores = [], []
        for i in range(0, len(idx), 128):
            part = idx[i:i + 128]
            prompt = self.tokenizer.batch(self.data.draw_prompts(part, g))
            real_scores.append(self.D(self.data.as_float(part), prompt))
            fake_scores.append(self.D(self._fakes(len(part), prompt, g), prompt))
        self.D.train()
        return auc(torch.cat(real_scores), torch.cat(fake_scores))

    def run(self) -> dict[str, Any]:
        cfg = self.cfg
        t0 = time.perf_counter()
        bar = tqdm(range(cfg.steps), disable=not cfg.progress, desc="critic", unit="step", dynamic_ncols=True)
        last: dict[str, float] = {}
        for step in bar:
            last = self.train_step(step)
            if (step + 1) % 50 == 0:
                self.history.append({"step": step + 1, **last})
                bar.set_postfix(loss=f"{last['loss']:.3f}", acc=f"{last['acc']:.2f}",
                                img_s=f"{(step + 1) * cfg.batch / (time.perf_counter() - t0):.0f}")
        wall = time.perf_counter() - t0
        report = {"kind": "critic", "steps": cfg.steps, "wall_s": round(wall, 1),
                  "held_out_auc": round(self.held_out_auc(), 4), "final": last, "config": asdict(cfg),
                  "generator_version": self.gen_config.get("version")}
        self.save(report)
        return report

    def save(self, report: dict[str, Any]) -> Path:
        meta = {**self.model_cfg.to_dict(), "part": "critic", "generator_version": self.gen_config.get("version"),
                "generator_sha256": file_sha256(Path(self.cfg.generator).with_suffix(".safetensors")),
                "trained_steps": self.cfg.steps, "held_out_auc": report["held_out_auc"],
                "recipe": {k: v for k, v in asdict(self.cfg).items() if k not in ("progress",)}}
        path = save_model(self.D.eval(), meta, self.cfg.out, dtype=torch.float16)
        Path(self.cfg.out).with_suffix(".report.json").write_text(json.dumps(report, indent=1))
        return path

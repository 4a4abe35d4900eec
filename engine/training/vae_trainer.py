"""The VAE trainer, as pytorch/examples vae/main.py and the seed document (section 3.2.2):
encode to (mu, log sigma^2), sample z = mu + sigma * eps, decode, and minimise the negative
ELBO, reconstruction + beta * KL, with the KL weight warmed up linearly from 0."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from engine.models.prompt_encoder import make_prompt_encoder
from engine.models.vae import VAE, VaeConfig
from engine.models.state import save_model
from engine.training import checkpoint as ckpt
from engine.training.data import ImageSet
from engine.training.gan_trainer import new_prompt_encoder, pick_device, step_generator
from engine.training.grids import save_grid
from engine.training.losses import kl_weight, vae_loss
from engine.training.run_loop import end_step, run_training


@dataclass
class VaeTrainConfig:
    out: str
    size: int = 64
    channels: int = 4
    epochs: int = 25
    batch: int = 64
    nz: int = 64
    width: int = 32
    cond_dim: int = 64
    prompt_encoder: str = "hashed"
    beta: float = 1.0
    kl_warmup: int = 2000
    recon: str = "bce"
    lr: float = 1e-3
    seed: int = 0
    sample_every: int = 500
    checkpoint_every: int = 500
    minutes: float | None = None
    stop_at: int | None = None  # stop (and checkpoint) at this step; the schedule is unchanged
    device: str = "auto"
    amp: bool = True  # accepted for a uniform CLI; the VAE trains in fp32 (BCE needs it)
    progress: bool = True


class VaeTrainer:
    def __init__(self, cfg: VaeTrainConfig, data: ImageSet, resume: bool = False) -> None:
        self.cfg, self.data = cfg, data
        self.device = pick_device(cfg.device)
        self.out = Path(cfg.out)
        stem = self.out / "checkpoint"
        tokenizer = (new_prompt_encoder(cfg.prompt_encoder, data.captions + sorted(set(data.categories)))
                     if cfg.cond_dim > 0 else None)
        if resume and stem.with_suffix(".json").exists():
            tensors, meta = ckpt.load_checkpoint(stem)
            tokenizer = make_prompt_encoder(meta["model"]["tokenizer"]) if meta["model"]["tokenizer"] else None
        self.tokenizer = tokenizer
        self.model_cfg = VaeConfig(size=cfg.size, channels=cfg.channels, nz=cfg.nz, width=cfg.width,
                                   cond_dim=cfg.cond_dim if tokenizer else 0,
                                   tokenizer=tokenizer.to_dict() if tokenizer else None)
        torch.manual_seed(cfg.seed)
        self.model = VAE(self.model_cfg).to(self.device, memory_format=torch.channels_last)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.steps_per_epoch = max(1, len(data) // cfg.batch)
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.end_step = end_step(cfg.stop_at, self.total_steps)
        self.step = 0
        self.history: list[dict[str, float]] = []
        if resume and stem.with_suffix(".json").exists():
            ckpt.restore_module(self.model, "vae", tensors)
            ckpt.restore_optimizer(self.opt, "opt", tensors, meta["opt"])
            self.step = int(meta["step"])
            self.history = list(meta.get("history", []))

    def batch(self, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
        epoch, i = divmod(step, self.steps_per_epoch)
        perm = torch.randperm(len(self.data), generator=step_generator(self.cfg.seed, epoch, 0))
        idx = perm[i * self.cfg.batch:(i + 1) * self.cfg.batch]
        x = (self.data.as_float(idx, self.device) + 1) / 2  # [0, 1] for the Bernoulli likelihood
        x = x.contiguous(memory_format=torch.channels_last)
        if self.tokenizer is None:
            return x, None
        texts = self.data.draw_prompts(idx, step_generator(self.cfg.seed, step, 1))
        return x, {k: v.to(self.device) for k, v in self.tokenizer.batch(texts).items()}

    def train_step(self, step: int) -> dict[str, float]:
        x, prompt = self.batch(step)
        self.model.train()
        recon, mu, logvar = self.model(x, prompt, generator=step_generator(self.cfg.seed, step, 2))
        beta = kl_weight(step, self.cfg.beta, self.cfg.kl_warmup)
        loss, rec, kl = vae_loss(recon, x, mu, logvar, beta, self.cfg.recon)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.item(), "recon": rec.item(), "kl": kl.item(), "beta": beta}

    def run(self) -> dict[str, Any]:
        return run_training(self, "vae", lambda last: {"loss": f"{last['loss']:.1f}",
                                                        "recon": f"{last['recon']:.1f}",
                                                        "kl": f"{last['kl']:.1f}"})

    @torch.no_grad()
    def save_samples(self, n: int = 64) -> Path:
        self.model.eval()
        z = torch.randn(n, self.cfg.nz, generator=torch.Generator().manual_seed(self.cfg.seed)).to(self.device)
        cond = None
        if self.tokenizer is not None:
            cats = sorted(set(self.data.categories)) or [self.data.captions[0]]
            texts = [cats[i % len(cats)] for i in range(n)]
            cond = self.model.condition({k: v.to(self.device) for k, v in self.tokenizer.batch(texts).items()})
        return save_grid(self.model.decode(z, cond), self.out / "samples" / f"step_{self.step:07d}.png", nrow=8)

    def save(self) -> None:
        tensors = ckpt.module_tensors("vae", self.model)
        t_opt, groups = ckpt.optimizer_tensors("opt", self.opt)
        tensors.update(t_opt)
        meta = {"step": self.step, "model": self.model_cfg.to_dict(), "train": asdict(self.cfg),
                "opt": groups, "history": self.history}
        ckpt.save_checkpoint(self.out / "checkpoint", tensors, meta)
        self.model.eval()
        save_model(self.model, {**self.model_cfg.to_dict(), "version": f"step-{self.step}",
                                "trained_steps": self.step}, self.out / "generator")

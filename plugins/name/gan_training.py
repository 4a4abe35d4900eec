"""Training the name GAN: an MLE warm start of the generator (teacher forcing, as SeqGAN and
MaskGAN do: an untrained generator's characters give the discriminator nothing to learn from),
then alternating discriminator and generator steps with the losses of ``gan.py``. Batches and
noise depend only on (seed, step): a resumed run continues exactly."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm

from engine.sdk import derive_seed
from plugins.name import checkpoint
from plugins.name.data import STYLES, Example
from plugins.name.gan import (GANConfig, NameDiscriminator, NameGenerator, d_loss, g_loss, one_hot_names,
                              teacher_logits)
from plugins.name.training import StyleSampler
from plugins.name.vocab import PAD, Vocab, batch


@dataclass(frozen=True)
class GANTrainConfig:
    steps: int = 10000
    pretrain_steps: int = 2000
    batch_size: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    lr_mle: float = 2e-3
    tau: float = 0.75
    seed: int = 0
    checkpoint_every: int = 500


class GANPair(torch.nn.Module):
    """Both networks in one module (one checkpoint)."""

    def __init__(self, cfg: GANConfig) -> None:
        super().__init__()
        self.g, self.d = NameGenerator(cfg), NameDiscriminator(cfg)


def train_gan(train: list[Example], out: Path | str, cfg: GANTrainConfig, *, minutes: float | None = None,
              model_cfg: dict[str, Any] | None = None, progress: bool = True,
              stop: Callable[[int], bool] | None = None) -> dict[str, Any]:
    out = Path(out)
    vocab = Vocab.from_names(e.name for e in train)
    resume = out.with_suffix(".json").exists()
    if resume:
        meta = checkpoint.read_meta(out)
        vocab, mcfg = Vocab(tuple(meta["vocab"])), GANConfig(**meta["config"])
    else:
        mcfg = GANConfig(vocab_size=len(vocab), n_styles=len(STYLES), **(model_cfg or {}))
    torch.manual_seed(cfg.seed)
    pair = GANPair(mcfg)
    opts = {"mle": torch.optim.Adam(pair.g.parameters(), lr=cfg.lr_mle),
            "g": torch.optim.Adam(pair.g.parameters(), lr=cfg.lr_g, betas=(0.5, 0.999)),
            "d": torch.optim.Adam(pair.d.parameters(), lr=cfg.lr_d, betas=(0.5, 0.999))}
    meta = {"kind": "gan", "config": mcfg.to_dict(), "vocab": list(vocab.chars), "styles": list(STYLES),
            "train": cfg.__dict__, "step": 0, "history": []}
    if resume:
        meta = checkpoint.load_into(out, pair, opts)
        meta.pop("optimizers", None)
    sampler = StyleSampler(train)
    start, step = time.monotonic(), int(meta["step"])
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, desc="gan", unit="step")
    pair.train()
    L, V = mcfg.max_len + 1, mcfg.vocab_size
    while step < cfg.steps:
        if (minutes is not None and time.monotonic() - start > minutes * 60) or (stop is not None and stop(step)):
            break
        names, styles = sampler.batch(cfg.seed, step, cfg.batch_size)
        x, y = batch(vocab, names, mcfg.max_len)
        g = torch.Generator().manual_seed(derive_seed(cfg.seed, "gan-noise", step))
        z = torch.randn((len(names), mcfg.noise), generator=g)
        if step < cfg.pretrain_steps:
            logits = teacher_logits(pair.g, x, z, styles)
            loss = F.cross_entropy(logits.transpose(1, 2), y, ignore_index=PAD)
            opts["mle"].zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(pair.g.parameters(), 5.0)
            opts["mle"].step()
            last = {"mle": float(loss.detach())}
        else:
            u = torch.rand((len(names), L, V), generator=g)
            fake, _ = pair.g(z, styles, u, tau=cfg.tau)
            real = one_hot_names(y, V)
            ld = d_loss(pair.d(real, styles), pair.d(fake.detach(), styles))
            opts["d"].zero_grad(set_to_none=True)
            ld.backward()
            opts["d"].step()
            lg = g_loss(pair.d(fake, styles))
            opts["g"].zero_grad(set_to_none=True)
            lg.backward()
            torch.nn.utils.clip_grad_norm_(pair.g.parameters(), 5.0)
            opts["g"].step()
            last = {"d": float(ld.detach()), "g": float(lg.detach())}
        step += 1
        bar.update(1)
        bar.set_postfix(last)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            meta["history"].append({"step": step, **{k: round(v, 4) for k, v in last.items()}})
            meta["step"] = step
            checkpoint.save(out, pair, meta, opts)
    bar.close()
    meta["step"] = step
    checkpoint.save(out, pair, meta, opts)
    return meta


def export(src: Path | str, dst: Path | str) -> dict[str, Any]:
    """The servable generator of a GAN checkpoint (the discriminator and optimizers dropped)."""
    meta = checkpoint.read_meta(src)
    pair = GANPair(GANConfig(**meta["config"]))
    meta = checkpoint.load_into(src, pair)
    meta.pop("optimizers", None)
    checkpoint.save(dst, pair.g, {**meta, "kind": "gan-generator"})
    return meta

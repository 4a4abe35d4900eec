"""Fit a finished VAE's sampling prior to its own posterior (ex-post density estimation).

Why: the VAE is trained against N(0, I), but nothing forces its aggregate posterior to match
it; when it does not, N(0, I) draws decode to blurs (engine/models/vae.py, ``LatentPrior``).
Here the encoder and decoder are frozen and only a prior z | c ~ N(m(c), L(c) L(c)^T) (or a mixture
of K such Gaussians, ``--components``) is fitted,
by maximum likelihood, to posterior samples z ~ q(z | x, c) of the training images under
every text they were trained with (caption, category word, both: ``prompt_variants``). The
images the evaluation holds out are held out here too: their likelihood picks the epoch
(the state with the lowest held-out NLL is kept) and is reported beside N(0, I)'s.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from engine.evaluation.judge import is_held_out
from engine.models.state import save_model
from engine.models.vae import VAE, LatentPrior
from engine.models.weights import load_model
from engine.runtime import file_sha256
from engine.training.data import ImageSet, prompt_variants


@dataclass
class PriorFitConfig:
    vae: str  # stem of the trained VAE, e.g. plugins/emoji/vae
    out: str  # stem to write: the same VAE with the fitted prior
    hidden: int = 128
    components: int = 1  # mixture components per prompt (1: a single Gaussian)
    epochs: int = 40  # the held-out NLL bottoms out near epoch 10-20 and the best state is kept
    batch: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-2
    seed: int = 0
    progress: bool = True


@dataclass
class Posteriors:
    """One row per (image, training text): the text's embedding and q(z | x, text)."""
    cond: torch.Tensor | None
    mu: torch.Tensor
    logvar: torch.Tensor

    def __len__(self) -> int:
        return self.mu.shape[0]

    def draw(self, rows: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor | None, torch.Tensor]:
        eps = torch.randn(len(rows), self.mu.shape[1], generator=g)
        z = self.mu[rows] + torch.exp(0.5 * self.logvar[rows]) * eps
        return (None if self.cond is None else self.cond[rows]), z


@torch.no_grad()
def posteriors(vae: VAE, data: ImageSet, rows: list[int], batch: int = 256) -> Posteriors:
    """Encode ``rows`` of ``data`` under each of their training texts (frozen VAE)."""
    tok = vae.cfg.make_tokenizer()
    pairs = [(i, t) for i in rows for t in prompt_variants(
        data.captions[i], data.categories[i] if data.categories else None)]
    conds, mus, logvars = [], [], []
    for start in range(0, len(pairs), batch):
        chunk = pairs[start:start + batch]
        x = data.images[torch.tensor([i for i, _ in chunk])].float() / 255.0
        cond = vae.condition(tok.batch([t for _, t in chunk])) if tok is not None else None
        mu, logvar = vae.encode(x, cond)
        mus.append(mu)
        logvars.append(logvar)
        if cond is not None:
            conds.append(cond)
    return Posteriors(torch.cat(conds) if conds else None, torch.cat(mus), torch.cat(logvars))


def standard_normal_nll(z: torch.Tensor) -> float:
    """The training prior's NLL of the same latents, the figure a fitted prior must beat."""
    return float(-torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1).mean())


def fit_prior(cfg: PriorFitConfig, data: ImageSet, log: Any = print) -> dict[str, Any]:
    t0 = time.perf_counter()
    module, config = load_model(cfg.vae)
    if config.get("kind") != "vae":
        raise ValueError(f"{cfg.vae}.json: kind must be 'vae', got {config.get('kind')!r}")
    vae: VAE = module.float().requires_grad_(False)  # type: ignore[assignment]
    if tuple(data.images.shape[1:]) != (vae.cfg.channels, vae.cfg.size, vae.cfg.size):
        raise ValueError(f"--data: images are {tuple(data.images.shape[1:])}, the VAE makes "
                         f"{(vae.cfg.channels, vae.cfg.size, vae.cfg.size)}")
    held = [is_held_out(f) for f in data.files] if data.files else [False] * len(data)
    train_rows = [i for i, h in enumerate(held) if not h]
    val_rows = [i for i, h in enumerate(held) if h]
    if not train_rows or not val_rows:  # a folder without (or only) evaluation hold-outs: every tenth image
        if len(data) < 2:
            raise ValueError("--data: at least 2 images are needed (one is held out to choose the epoch)")
        val_rows = list(range(0, len(data), 10))
        train_rows = [i for i in range(len(data)) if i % 10]
    train, val = posteriors(vae, data, train_rows), posteriors(vae, data, val_rows)
    log(f"posteriors: {len(train)} training and {len(val)} held-out (image, text) pairs")

    if cfg.components > len(train):  # each component starts at a distinct training posterior
        raise ValueError(f"--components: at most {len(train)} for this folder (its training pairs), "
                         f"got {cfg.components}")
    torch.manual_seed(cfg.seed)
    prior = LatentPrior(vae.cfg.cond_dim, vae.cfg.nz, cfg.hidden, cfg.components)
    with torch.no_grad():  # one Gaussian starts at the posterior's mean, K at K distinct posterior means
        picks = torch.randperm(len(train), generator=torch.Generator().manual_seed(cfg.seed))[:cfg.components]
        starts = train.mu.mean(0, keepdim=True) if cfg.components == 1 else train.mu[picks]
        prior.mean.bias.copy_(starts.flatten())
    opt = torch.optim.AdamW(prior.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    g = torch.Generator().manual_seed(cfg.seed)
    val_cond, val_z = val.draw(torch.arange(len(val)), torch.Generator().manual_seed(cfg.seed + 1))
    best = (float("inf"), 0, copy.deepcopy(prior.state_dict()))
    history = []
    bar = tqdm(range(cfg.epochs), disable=not cfg.progress, desc="prior", unit="epoch")
    for epoch in bar:
        prior.train()
        for rows in torch.randperm(len(train), generator=g).split(cfg.batch):
            cond, z = train.draw(rows, g)
            loss = prior.nll(cond, z)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        prior.eval()
        with torch.no_grad():
            val_nll = float(prior.nll(val_cond, val_z))
        history.append(round(val_nll, 2))
        bar.set_postfix(val_nll=f"{val_nll:.1f}")
        if val_nll < best[0]:
            best = (val_nll, epoch + 1, copy.deepcopy(prior.state_dict()))
    prior.load_state_dict(best[2])

    vae.cfg = replace(vae.cfg, prior_hidden=cfg.hidden, prior_components=cfg.components)
    vae.prior = prior.eval()
    report = {"held_out_nll": round(best[0], 2), "held_out_nll_standard_normal": round(standard_normal_nll(val_z), 2),
              "epoch": best[1], "val_nll_per_epoch": history, "pairs": len(train), "held_out_pairs": len(val),
              "wall_s": round(time.perf_counter() - t0, 1)}
    # a truncation_scale was calibrated for the old sampling distribution: measure again (MODEL_CARD)
    out_config = {**{k: v for k, v in config.items() if k != "truncation_scale"}, "prior_hidden": cfg.hidden,
                  "prior_components": cfg.components,
                  "prior": {"recipe": {k: v for k, v in asdict(cfg).items() if k != "progress"},
                            "vae_sha256": file_sha256(Path(cfg.vae).with_suffix(".safetensors")),
                            **{k: v for k, v in report.items() if k != "val_nll_per_epoch"}}}
    save_model(vae, out_config, cfg.out, dtype=torch.float16)
    return report

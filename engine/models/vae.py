"""A convolutional VAE (Kingma & Welling 2013) with the DCGAN layer shapes, optionally
conditional on a prompt embedding (given to both encoder and decoder).

The encoder is public: variations, blends and morphs work in its latent space.

A VAE trained with a small KL weight (or briefly, or with a long KL warm-up) leaves its
aggregate posterior far from the N(0, I) prior it is sampled from: the shipped emoji VAE's
posterior means have a variance of 2-3.6 per active dimension under a category prompt, so N(0, I)
draws land in a shrunken middle the decoder renders as a blur. ``LatentPrior`` is the fix of
"ex-post density estimation" (Ghosh et al. 2020, "From variational to deterministic
autoencoders"): after training, a Gaussian per prompt, z | c ~ N(m(c), L(c) L(c)^T), is fitted
to the posterior samples of the training images under their training prompts, with the encoder
and decoder frozen. Sampling keeps a standard-normal eps (so truncation, variations and morphs
work as before) and maps it through ``prior_latent``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from engine.models.gan import dcgan_init, down_stack, up_stack
from engine.models.config_base import ModelConfig
from engine.models.prompt_encoder import prompt_embedding


@dataclass
class VaeConfig(ModelConfig):
    KIND = "vae"
    size: int = 64
    channels: int = 4
    nz: int = 128
    width: int = 32
    cond_dim: int = 0
    tokenizer: dict[str, Any] | None = None
    prior_hidden: int = 0  # > 0: a fitted LatentPrior of this width (0: sample the N(0, I) prior)


class LatentPrior(nn.Module):
    """z | c ~ N(mean(c), L(c) L(c)^T) with L lower-triangular: an MLP from the prompt
    embedding (a constant input when unconditional) to the mean and the Cholesky factor."""

    def __init__(self, cond_dim: int, nz: int, hidden: int) -> None:
        super().__init__()
        self.nz, self.in_dim = nz, max(cond_dim, 1)
        self.net = nn.Sequential(nn.Linear(self.in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.mean = nn.Linear(hidden, nz)
        self.log_diag = nn.Linear(hidden, nz)
        self.off_diag = nn.Linear(hidden, nz * (nz - 1) // 2)
        for head in (self.log_diag, self.off_diag):  # start at N(mean, I): the training prior's shape
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        rows, cols = torch.tril_indices(nz, nz, -1)
        self.register_buffer("tril_rows", rows, persistent=False)
        self.register_buffer("tril_cols", cols, persistent=False)

    def forward(self, cond: torch.Tensor | None, rows: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean (B, nz), scale_tril (B, nz, nz)) for each row of ``cond`` (or ``rows`` rows)."""
        h = self.net(cond if cond is not None else self.mean.weight.new_ones(rows, self.in_dim))
        diag = torch.exp(self.log_diag(h).clamp(-7.0, 3.0))  # sd between 1e-3 and 20: never singular
        tril = torch.diag_embed(diag)
        tril[:, self.tril_rows, self.tril_cols] = self.off_diag(h)
        return self.mean(h), tril

    def nll(self, cond: torch.Tensor | None, z: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of latents ``z`` under each row's Gaussian, in nats."""
        mean, tril = self(cond, z.shape[0])
        return -torch.distributions.MultivariateNormal(mean, scale_tril=tril).log_prob(z).mean()

    def sample(self, eps: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        mean, tril = self(cond, eps.shape[0])
        return mean + (tril @ eps.unsqueeze(-1)).squeeze(-1)


class VAE(nn.Module):
    """Images in [0, 1]; the decoder returns probabilities (sigmoid), the natural pair of
    the Bernoulli reconstruction term."""

    def __init__(self, cfg: VaeConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = (prompt_embedding(cfg.tokenizer, cfg.cond_dim)
                      if cfg.conditional else None)
        self.enc, ch = down_stack(cfg.channels, cfg.width, cfg.n_up)
        self.to_stats = nn.Linear(ch * 16 + cfg.cond_dim, 2 * cfg.nz)
        self.dec = up_stack(cfg.nz + cfg.cond_dim, cfg.channels, cfg.width, cfg.n_up, nn.Sigmoid())
        dcgan_init(self.enc)
        dcgan_init(self.dec)
        self.prior = LatentPrior(cfg.cond_dim, cfg.nz, cfg.prior_hidden) if cfg.prior_hidden > 0 else None

    def prior_latent(self, eps: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The latent to decode for a standard-normal draw ``eps``: through the fitted prior when
        there is one, else ``eps`` itself (the N(0, I) prior of training)."""
        return eps if self.prior is None else self.prior.sample(eps, cond)

    def condition(self, prompt: dict[str, torch.Tensor] | None) -> torch.Tensor | None:
        return self.embed(prompt) if self.embed is not None else None

    def encode(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x in [0, 1] -> (mu, logvar)."""
        h = self.enc(x).flatten(1)
        if cond is not None:
            h = torch.cat([h, cond], dim=1)
        mu, logvar = self.to_stats(h).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is not None:
            z = torch.cat([z, cond], dim=1)
        return self.dec(z[:, :, None, None])

    def forward(self, x: torch.Tensor, prompt: dict[str, torch.Tensor] | None = None,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (reconstruction, mu, logvar); z = mu + sigma * eps (reparameterisation)."""
        cond = self.condition(prompt)
        mu, logvar = self.encode(x, cond)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps
        return self.decode(z, cond), mu, logvar

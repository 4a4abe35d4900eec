"""A convolutional VAE (Kingma & Welling 2013) with the DCGAN layer shapes, optionally
conditional on a prompt embedding (given to both encoder and decoder).

The encoder is public: variations, blends and morphs work in its latent space.
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

"""The class-conditional SpecGAN: a DCGAN-like 2-D generator and a projection discriminator over
128x128 log-magnitude spectrograms (plugins/sfx/spectro.py).

Sized for CPU training (about 27 M multiply-adds per generated spectrogram). The generator uses
GroupNorm, which normalises each sample on its own, so an output never depends on its batch
(BatchNorm's batch statistics would). The discriminator uses spectral normalisation and a
projection term for the class (Miyato & Koyama 2018) and is trained with the hinge loss.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


@dataclass(frozen=True)
class Config:
    classes: int
    nz: int = 64
    embed: int = 32
    g_channels: tuple[int, ...] = (128, 96, 64, 32, 16)  # at 4, 8, 16, 32, 64 px
    d_channels: tuple[int, ...] = (16, 32, 64, 128, 256)  # at 64, 32, 16, 8, 4 px
    mbstd: int = 0  # discriminator's minibatch-stddev group size (0 = off; a config without it loads as off)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "Config":
        return cls(classes=int(d["classes"]), nz=int(d["nz"]), embed=int(d["embed"]),
                   g_channels=tuple(d["g_channels"]), d_channels=tuple(d["d_channels"]),
                   mbstd=int(d.get("mbstd", 0)))


class Generator(nn.Module):
    """(z (B, nz), class (B,)) -> (B, 1, 128, 128) in [-1, 1]."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        c = cfg.g_channels
        self.embed = nn.Embedding(cfg.classes, cfg.embed)
        self.fc = nn.Linear(cfg.nz + cfg.embed, c[0] * 16)
        blocks = []
        for cin, cout in zip(c[:-1], c[1:]):
            blocks += [nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.GroupNorm(min(8, cout // 4), cout),
                       nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*blocks)
        self.out = nn.ConvTranspose2d(c[-1], 1, 4, 2, 1)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.fc(torch.cat([z, self.embed(y)], 1)).view(z.shape[0], self.cfg.g_channels[0], 4, 4)
        return torch.tanh(self.out(self.body(nn.functional.leaky_relu(h, 0.2))))


def minibatch_std(h: torch.Tensor, group: int) -> torch.Tensor:
    """(B, F) -> (B, 1): each row's group's standard deviation, averaged over the features
    (Karras et al. 2018). Groups are runs of consecutive rows, of the largest size <= ``group``
    that divides B (a batch of 1, or of a prime size above ``group``, gets zeros)."""
    b = h.shape[0]
    g = max(d for d in range(1, min(group, b) + 1) if b % d == 0)
    std = (h.view(b // g, g, -1).var(1, unbiased=False) + 1e-8).sqrt().mean(1)
    return std.repeat_interleave(g).unsqueeze(1)


class Discriminator(nn.Module):
    """(spectrogram (B, 1, 128, 128), class (B,)) -> (B,) logits.

    With ``cfg.mbstd`` the pooled features gain one more, the minibatch standard deviation of
    their group of rows: a batch of fakes too alike to each other is then visible to D, which
    is the pressure against a collapsed generator that a per-sample D cannot exert. A row's
    logit then depends on its batch (training only; D is never served)."""

    def __init__(self, cfg: Config):
        super().__init__()
        c = (1,) + cfg.d_channels
        layers = []
        for cin, cout in zip(c[:-1], c[1:]):
            layers += [spectral_norm(nn.Conv2d(cin, cout, 4, 2, 1)), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers)
        self.mbstd = cfg.mbstd
        self.features_dim = c[-1] + (1 if cfg.mbstd else 0)
        self.linear = spectral_norm(nn.Linear(self.features_dim, 1))
        self.embed = spectral_norm(nn.Embedding(cfg.classes, self.features_dim))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.body(x).sum(dim=(2, 3))
        if self.mbstd:
            h = torch.cat([h, minibatch_std(h, self.mbstd)], 1)
        return self.linear(h).squeeze(1) + (self.embed(y) * h).sum(1)

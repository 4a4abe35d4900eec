"""A character-level GAN for names, as the seed describes it done right: the generator ends in a
softmax over the characters at every step; the discriminator ends in a logit (no sigmoid), and
both losses are binary cross-entropy *with logits* (the seed pairs a sigmoid output with
``from_logits=True``, which squashes twice: its loss can never go below log(1 + e^-1) ≈ 0.31 on a
perfect answer and its gradients vanish).

Discrete characters are not differentiable, so the generator samples each character with the
straight-through Gumbel-softmax (Jang et al. 2017; Kusner & Hernández-Lobato 2016 for GANs on
sequences): the forward pass feeds a one-hot character to the next step and to the
discriminator, the backward pass uses the relaxed softmax's gradient. Conditioned on style
in both networks (the discriminator by projection, Miyato & Koyama 2018)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from plugins.name.vocab import BOS, EOS, PAD, UNK


@dataclass(frozen=True)
class GANConfig:
    vocab_size: int
    n_styles: int
    noise: int = 32
    emb: int = 64
    hidden: int = 256
    style_emb: int = 16
    max_len: int = 24
    d_channels: int = 128

    def to_dict(self) -> dict:
        return asdict(self)


def forbidden(vocab_size: int) -> torch.Tensor:
    """Ids a name never contains: PAD, BOS, UNK."""
    mask = torch.zeros(vocab_size, dtype=torch.bool)
    mask[[PAD, BOS, UNK]] = True
    return mask


class NameGenerator(nn.Module):
    def __init__(self, cfg: GANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Linear(cfg.vocab_size, cfg.emb, bias=False)  # takes one-hot (or relaxed) characters
        self.style = nn.Embedding(cfg.n_styles, cfg.style_emb)
        self.to_h0 = nn.Linear(cfg.noise + cfg.style_emb, cfg.hidden)
        self.cell = nn.GRUCell(cfg.emb + cfg.noise + cfg.style_emb, cfg.hidden)
        self.out = nn.Linear(cfg.hidden, cfg.vocab_size)
        self.register_buffer("forbidden", forbidden(cfg.vocab_size), persistent=False)

    def forward(self, z: torch.Tensor, style: torch.Tensor, uniforms: torch.Tensor, tau: float = 1.0,
                prefix: list[list[int]] | None = None, temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """(chars (B, L, V): one-hot forward, relaxed backward, zero after EOS; logits (B, L, V)).
        ``uniforms`` (B, L, V) drive the Gumbel noise, so each row depends only on its inputs."""
        B, L, V = z.shape[0], self.cfg.max_len + 1, self.cfg.vocab_size
        cond = torch.cat([z, self.style(style)], -1)
        h = torch.tanh(self.to_h0(cond))
        prev = F.one_hot(torch.full((B,), BOS, dtype=torch.long), V).to(z.dtype)
        alive = torch.ones(B, 1, dtype=z.dtype)
        chars, logits_all = [], []
        for t in range(L):
            h = self.cell(torch.cat([self.embed(prev), cond], -1), h)
            logits = self.out(h).masked_fill(self.forbidden, float("-inf"))
            if t == L - 1:  # the last position can only end the name
                logits = torch.full_like(logits, float("-inf"))
                logits[:, EOS] = 0.0
            g = -torch.log(-torch.log(uniforms[:, t].clamp(1e-12, 1 - 1e-7)))
            soft = F.softmax((logits / temperature + g) / tau, -1)
            hard = F.one_hot(soft.argmax(-1), V).to(soft.dtype)
            y = hard - soft.detach() + soft  # straight-through
            if prefix is not None:
                for r, p in enumerate(prefix):
                    if t < len(p):
                        y = y.clone()
                        y[r] = F.one_hot(torch.tensor(p[t]), V).to(y.dtype)
            chars.append(y * alive)
            logits_all.append(logits)
            alive = alive * (1 - y[:, EOS:EOS + 1])  # zero after (not at) the EOS
            prev = y
        return torch.stack(chars, 1), torch.stack(logits_all, 1)


def teacher_logits(gen: NameGenerator, inputs: torch.Tensor, z: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """The generator's logits with the real previous characters fed in (MLE warm start)."""
    V = gen.cfg.vocab_size
    cond = torch.cat([z, gen.style(style)], -1)
    h = torch.tanh(gen.to_h0(cond))
    out = []
    for t in range(inputs.shape[1]):
        h = gen.cell(torch.cat([gen.embed(F.one_hot(inputs[:, t], V).float()), cond], -1), h)
        out.append(gen.out(h))
    return torch.stack(out, 1)


class NameDiscriminator(nn.Module):
    """Characters (B, L, V) → a logit per name: a 1-D conv net over character embeddings with a
    projection of the style embedding. No sigmoid: the loss takes logits."""

    def __init__(self, cfg: GANConfig) -> None:
        super().__init__()
        c = cfg.d_channels
        self.embed = nn.Linear(cfg.vocab_size, cfg.emb, bias=False)
        self.convs = nn.Sequential(
            nn.Conv1d(cfg.emb, c, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv1d(c, c, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv1d(c, c, 5, padding=2), nn.LeakyReLU(0.2))
        self.head = nn.Linear(c, 1)
        self.style = nn.Embedding(cfg.n_styles, c)

    def forward(self, chars: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        h = self.convs(self.embed(chars).transpose(1, 2)).amax(-1)  # (B, c): max over positions
        return self.head(h)[:, 0] + (self.style(style) * h).sum(-1)


def one_hot_names(targets: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Real names as the discriminator sees them: one-hot characters and EOS, zeros after."""
    oh = F.one_hot(targets, vocab_size).float()
    return oh * (targets != PAD)[..., None].float()


def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The seed's discriminator loss, on logits: BCE(real, 1) + BCE(fake, 0)."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The seed's (non-saturating) generator loss, on logits: BCE(fake, 1)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def decode(chars: torch.Tensor) -> list[list[int]]:
    """The ids before EOS of each row of one-hot characters."""
    out = []
    for row in chars.argmax(-1).tolist():
        out.append(row[: row.index(EOS)] if EOS in row else row)
    return out

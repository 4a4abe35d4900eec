"""The losses, written as the seed document states them.

GAN (BCE): L_D = -E[log D(x)] - E[log(1 - D(G(z)))],  L_G = -E[log D(G(z))]  (non-saturating).
D returns logits, so log D = logsigmoid(l) and log(1 - D) = logsigmoid(-l): the same
formula, without the sigmoid-then-log underflow (and without applying a sigmoid twice, the
seed's Keras slip of a sigmoid output fed to from_logits=True).
Hinge (option, with spectral norm): L_D = E[relu(1 - D(x))] + E[relu(1 + D(G(z)))], L_G = -E[D(G(z))].

VAE: the document writes the ELBO E[log p(x|z)] - KL(q(z|x) || p(z)) and says to minimise
it; it must be maximised, i.e. we minimise its negative: recon + beta * KL.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str = "bce") -> torch.Tensor:
    if kind == "bce":
        real = -F.logsigmoid(real_logits).mean()
    elif kind == "hinge":
        real = F.relu(1.0 - real_logits).mean()
    else:
        raise ValueError(f"unknown GAN loss {kind!r} (bce or hinge)")
    return real + d_fake_term(fake_logits, kind)


def d_fake_term(logits: torch.Tensor, kind: str = "bce", weights: torch.Tensor | None = None) -> torch.Tensor:
    """L_D's fake half alone (-E[log(1 - D)] or E[relu(1 + D)]): G's fakes in d_loss, and other
    inputs D must call fake (GAN-CLS's real image under a wrong prompt). ``weights`` (0 or 1
    per row) leaves rows out; all rows left out gives 0."""
    if kind == "bce":
        per = -F.logsigmoid(-logits)
    elif kind == "hinge":
        per = F.relu(1.0 + logits)
    else:
        raise ValueError(f"unknown GAN loss {kind!r} (bce or hinge)")
    if weights is None:
        return per.mean()
    return (per * weights).sum() / weights.sum().clamp(min=1.0)


def g_loss(fake_logits: torch.Tensor, kind: str = "bce") -> torch.Tensor:
    if kind == "bce":
        return -F.logsigmoid(fake_logits).mean()
    if kind == "hinge":
        return -fake_logits.mean()
    raise ValueError(f"unknown GAN loss {kind!r} (bce or hinge)")


def g_loss_top_k(fake_logits: torch.Tensor, k: int, kind: str = "bce") -> torch.Tensor:
    """L_G over only the k fakes D rates highest (top-k training, Sinha et al. 2020); the
    rest send G no gradient. k = the batch is the plain L_G, same bits."""
    n = fake_logits.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"top-k: k must be between 1 and the batch ({n}), got {k}")
    return g_loss(fake_logits if k == n else fake_logits.topk(k).values, kind)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) summed over latent dims, averaged over the batch."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()


def reconstruction(recon: torch.Tensor, x: torch.Tensor, kind: str = "bce") -> torch.Tensor:
    """-log p(x|z) summed over pixels, averaged over the batch (Bernoulli or Gaussian)."""
    if kind == "bce":
        per = F.binary_cross_entropy(recon, x, reduction="none")
    elif kind == "mse":
        per = 0.5 * (recon - x).pow(2)
    else:
        raise ValueError(f"unknown reconstruction {kind!r} (bce or mse)")
    return per.flatten(1).sum(dim=1).mean()


def vae_loss(recon: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             beta: float = 1.0, kind: str = "bce") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(negative ELBO with weight beta on KL, reconstruction term, KL term)."""
    rec = reconstruction(recon, x, kind)
    kl = kl_divergence(mu, logvar)
    return rec + beta * kl, rec, kl


def kl_weight(step: int, beta: float, warmup_steps: int) -> float:
    """Linear KL warm-up from 0 to beta (Bowman et al. 2016), against posterior collapse."""
    if warmup_steps <= 0:
        return beta
    return beta * min(1.0, step / warmup_steps)

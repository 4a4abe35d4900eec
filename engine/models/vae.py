"""A convolutional VAE (Kingma & Welling 2013) with the DCGAN layer shapes, optionally
conditional on a prompt embedding (given to both encoder and decoder).

The encoder is public: variations, blends and morphs work in its latent space.

A VAE trained with a small KL weight (or briefly, or with a long KL warm-up) leaves its
aggregate posterior far from the N(0, I) prior it is sampled from: the shipped emoji VAE's
posterior means have a variance of 2-3.6 per active dimension under a category prompt, so N(0, I)
draws land in a shrunken middle the decoder renders as a blur. ``LatentPrior`` is the fix of
"ex-post density estimation" (Ghosh et al. 2020, "From variational to deterministic
autoencoders"): after training, a Gaussian per prompt, z | c ~ N(m(c), L(c) L(c)^T) (or a
mixture of them), is fitted to the posterior samples of the training images under their
training prompts, with the encoder and decoder frozen. Sampling keeps a standard-normal eps (so
truncation, variations and morphs work as before) and maps it through ``prior_latent``.
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
    prior_components: int = 1  # the fitted prior's mixture components


class LatentPrior(nn.Module):
    """z | c ~ a mixture of K Gaussians N(mean_k(c), L_k(c) L_k(c)^T) with weights w_k(c) (L_k
    lower-triangular): an MLP from the prompt embedding (a constant input when unconditional) to
    the weights, means and Cholesky factors. K = 1 is a single Gaussian. Why a mixture: a broad
    prompt such as `animal` covers many separate clusters of the posterior; one Gaussian spans
    the gaps between them, which decode to blurs."""

    def __init__(self, cond_dim: int, nz: int, hidden: int, components: int = 1) -> None:
        super().__init__()
        if components < 1:
            raise ValueError(f"prior_components must be at least 1, got {components}")
        self.nz, self.in_dim, self.k = nz, max(cond_dim, 1), components
        self.net = nn.Sequential(nn.Linear(self.in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.mean = nn.Linear(hidden, components * nz)
        self.log_diag = nn.Linear(hidden, components * nz)
        self.off_diag = nn.Linear(hidden, components * nz * (nz - 1) // 2)
        # K = 1 has no weights head, so single-Gaussian priors keep their tensors
        self.logits = nn.Linear(hidden, components) if components > 1 else None
        for head in (self.log_diag, self.off_diag, self.logits):  # start at N(mean, I) each, equal weights
            if head is not None:
                nn.init.zeros_(head.weight)
                nn.init.zeros_(head.bias)
        rows, cols = torch.tril_indices(nz, nz, -1)
        self.register_buffer("tril_rows", rows, persistent=False)
        self.register_buffer("tril_cols", cols, persistent=False)

    def components(self, cond: torch.Tensor | None, rows: int = 1
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log-weights (B, K), means (B, K, nz), scale_trils (B, K, nz, nz)) for each row of
        ``cond`` (or ``rows`` rows)."""
        h = self.net(cond if cond is not None else self.mean.weight.new_ones(rows, self.in_dim))
        b, k, nz = h.shape[0], self.k, self.nz
        diag = torch.exp(self.log_diag(h).view(b, k, nz).clamp(-7.0, 3.0))  # sd in [1e-3, 20]: never singular
        tril = torch.diag_embed(diag)
        tril[:, :, self.tril_rows, self.tril_cols] = self.off_diag(h).view(b, k, -1)
        log_w = (torch.log_softmax(self.logits(h), dim=1) if self.logits is not None
                 else h.new_zeros(b, 1))
        return log_w, self.mean(h).view(b, k, nz), tril

    def forward(self, cond: torch.Tensor | None, rows: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean (B, nz), scale_tril (B, nz, nz)) of a single-Gaussian prior."""
        if self.k != 1:
            raise ValueError("a mixture prior has no single mean: use components()")
        _, mean, tril = self.components(cond, rows)
        return mean[:, 0], tril[:, 0]

    def nll(self, cond: torch.Tensor | None, z: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of latents ``z`` under each row's prior, in nats."""
        log_w, mean, tril = self.components(cond, z.shape[0])
        log_p = torch.distributions.MultivariateNormal(mean, scale_tril=tril).log_prob(z.unsqueeze(1))
        return -torch.logsumexp(log_w + log_p, dim=1).mean()

    def sample(self, eps: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """The latent for a standard-normal draw ``eps``, deterministically (serving keeps eps,
        so truncation, variations and morphs work as for N(0, I))."""
        log_w, mean, tril = self.components(cond, eps.shape[0])
        if self.k == 1:  # no split: a single Gaussian's outputs stay bit for bit what they were
            return mean[:, 0] + (tril[:, 0] @ eps.unsqueeze(-1)).squeeze(-1)
        pick, eps = split_component(eps, log_w.exp())
        rows = torch.arange(eps.shape[0], device=eps.device)
        return mean[rows, pick] + (tril[rows, pick] @ eps.unsqueeze(-1)).squeeze(-1)


def split_component(eps: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick a mixture component for each row of a standard-normal ``eps`` and return it with the
    draw to use inside that component, both from ``eps`` alone.

    s = eps's component along (1, ..., 1)/sqrt(nz) is N(0, 1), so t = erf(|s|/sqrt 2) is uniform
    on [0, 1). Components are laid along [0, 1) heaviest first and t picks one; where t falls
    inside its component's interval is uniform again, and becomes a new |s| (the sign kept), so
    the draw used inside the component is again N(0, I) and independent of the pick. Truncated
    draws (small |s|) therefore favour the heavier components: lower variety, more typical
    samples. Along a morph the component changes where t crosses a boundary."""
    nz = eps.shape[1]
    direction = eps.new_full((nz,), nz ** -0.5)
    s = eps @ direction
    t = torch.erf(s.abs() / 2 ** 0.5)
    w, order = weights.sort(dim=1, descending=True)
    upper = w.cumsum(1)
    upper[:, -1] = 1.0  # rounding: the last interval ends at 1
    slot = torch.searchsorted(upper, t.unsqueeze(1)).squeeze(1).clamp(max=w.shape[1] - 1)
    rows = torch.arange(eps.shape[0], device=eps.device)
    lower = upper[rows, slot] - w[rows, slot]
    u = ((t - lower) / w[rows, slot].clamp_min(1e-12)).clamp(0.0, 1.0 - 1e-6)
    s_new = torch.sign(s) * 2 ** 0.5 * torch.erfinv(u)
    return order[rows, slot], eps + (s_new - s).unsqueeze(1) * direction


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
        self.prior = (LatentPrior(cfg.cond_dim, cfg.nz, cfg.prior_hidden, cfg.prior_components)
                      if cfg.prior_hidden > 0 else None)

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

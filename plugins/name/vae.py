"""A character-level sentence VAE (Bowman et al. 2016, "Generating Sentences from a Continuous
Space"), conditioned on style: a GRU encoder gives q(z | name, style); a GRU decoder reads the
previous character (dropped to <unk> with the word-dropout rate while training), z and the
style at every step. Training anneals the KL weight from 0 to 1 (the paper's remedy for
posterior collapse, with word dropout)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from plugins.name.vocab import EOS, PAD, UNK


@dataclass(frozen=True)
class VAEConfig:
    vocab_size: int
    n_styles: int
    emb: int = 64
    hidden: int = 256
    latent: int = 32
    style_emb: int = 16
    max_len: int = 24
    dropout: float = 0.0  # on the decoder GRU's outputs while training (drawn from the loss's generator)

    def to_dict(self) -> dict:
        return asdict(self)


class NameVAE(nn.Module):
    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.emb, padding_idx=PAD)
        self.style = nn.Embedding(cfg.n_styles, cfg.style_emb)
        self.encoder = nn.GRU(cfg.emb + cfg.style_emb, cfg.hidden, batch_first=True, bidirectional=True)
        self.to_mu = nn.Linear(2 * cfg.hidden, cfg.latent)
        self.to_logvar = nn.Linear(2 * cfg.hidden, cfg.latent)
        self.to_h0 = nn.Linear(cfg.latent + cfg.style_emb, cfg.hidden)
        self.decoder = nn.GRU(cfg.emb + cfg.latent + cfg.style_emb, cfg.hidden, batch_first=True)
        self.out = nn.Linear(cfg.hidden, cfg.vocab_size)

    # -- encoder -------------------------------------------------------------------------
    def encode(self, targets: torch.Tensor, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | name, style) from the target ids (chars then EOS then PAD): (mu, logvar)."""
        lengths = (targets != PAD).sum(1).clamp(min=1)
        s = self.style(style)[:, None, :].expand(-1, targets.shape[1], -1)
        packed = nn.utils.rnn.pack_padded_sequence(torch.cat([self.embed(targets), s], -1), lengths.cpu(),
                                                   batch_first=True, enforce_sorted=False)
        _, h = self.encoder(packed)
        h = torch.cat([h[0], h[1]], -1)
        return self.to_mu(h), self.to_logvar(h)

    # -- decoder -------------------------------------------------------------------------
    def initial(self, z: torch.Tensor, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the decoder's first hidden state, the per-step condition [z, style])."""
        cond = torch.cat([z, self.style(style)], -1)
        return torch.tanh(self.to_h0(cond))[None], cond

    def step(self, ids: torch.Tensor, h: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One decoder step: ids (B,) → (logits (B, V), new hidden)."""
        x = torch.cat([self.embed(ids), cond], -1)[:, None, :]
        o, h = self.decoder(x, h)
        return self.out(o[:, 0]), h

    def decode_logits(self, inputs: torch.Tensor, z: torch.Tensor, style: torch.Tensor, *,
                      dropout: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
        h, cond = self.initial(z, style)
        x = torch.cat([self.embed(inputs), cond[:, None, :].expand(-1, inputs.shape[1], -1)], -1)
        o, _ = self.decoder(x, h)
        if dropout > 0:  # the mask comes from ``generator``, so a resumed run draws the same masks
            keep = torch.rand(o.shape, generator=generator) >= dropout
            o = o * keep / (1.0 - dropout)
        return self.out(o)

    # -- training ------------------------------------------------------------------------
    def loss(self, inputs: torch.Tensor, targets: torch.Tensor, style: torch.Tensor, *, kl_weight: float,
             word_dropout: float = 0.0, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Sums per name, averaged over the batch: ``rec`` (cross-entropy of the chars and EOS),
        ``kl`` (KL(q || N(0, I))), ``loss`` = rec + kl_weight·kl, ``chars`` (targets per name)."""
        mu, logvar = self.encode(targets, style)
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
        z = mu + eps * torch.exp(0.5 * logvar)
        if word_dropout > 0:
            drop = torch.rand(inputs.shape, generator=generator) < word_dropout
            drop[:, 0] = False  # keep BOS
            inputs = inputs.masked_fill(drop & (inputs != PAD), UNK)
        logits = self.decode_logits(inputs, z, style, dropout=self.cfg.dropout if self.training else 0.0,
                                    generator=generator)
        rec = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=PAD, reduction="none").sum(1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)
        chars = (targets != PAD).sum(1).float()
        return {"rec": rec.mean(), "kl": kl.mean(), "loss": (rec + kl_weight * kl).mean(), "chars": chars.mean(),
                "rec_each": rec, "kl_each": kl, "chars_each": chars}


def kl_weight(step: int, anneal_steps: int) -> float:
    """Linear KL annealing from 0 to 1 over ``anneal_steps`` (Bowman et al. used a sigmoid;
    linear is the common, simpler schedule)."""
    return 1.0 if anneal_steps <= 0 else min(1.0, step / anneal_steps)


@torch.no_grad()
def sample(model: NameVAE, z: torch.Tensor, style: torch.Tensor, uniforms: torch.Tensor, *,
           temperature: float = 1.0, prefix: list[list[int]] | None = None,
           allowed: torch.Tensor | None = None) -> list[list[int]]:
    """Decode each row of ``z`` (B, latent) with Gumbel-max sampling driven by ``uniforms``
    (B, max_len, V) in (0, 1): each row depends only on its own z, style and uniforms.
    ``prefix`` ids are forced first (starts_with); ``allowed`` (V,) bool masks characters out.
    Returns the ids before EOS."""
    B, max_len = z.shape[0], model.cfg.max_len
    h, cond = model.initial(z, style)
    ids = torch.full((B,), 1, dtype=torch.long)  # BOS
    out: list[list[int]] = [[] for _ in range(B)]
    done = torch.zeros(B, dtype=torch.bool)
    for t in range(max_len + 1):
        logits, h = model.step(ids, h, cond)
        logits[:, PAD] = float("-inf")
        logits[:, 1] = float("-inf")  # BOS
        logits[:, UNK] = float("-inf")
        if allowed is not None:
            logits[:, ~allowed] = float("-inf")
        if t == max_len:
            nxt = torch.full((B,), EOS, dtype=torch.long)
        else:
            gumbel = -torch.log(-torch.log(uniforms[:, t].clamp(1e-12, 1 - 1e-7)))
            nxt = (logits / max(temperature, 1e-4) + gumbel).argmax(-1)
        for r in range(B):
            if prefix and t < len(prefix[r]):
                nxt[r] = prefix[r][t]
        for r in range(B):
            if not done[r]:
                if int(nxt[r]) == EOS:
                    done[r] = True
                else:
                    out[r].append(int(nxt[r]))
        if bool(done.all()):
            break
        ids = nxt
    return out

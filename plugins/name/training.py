"""Training the name VAE: style-balanced batches that depend only on (seed, step), so a run
stopped and resumed from its checkpoint continues exactly as one that never stopped."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm import tqdm

from engine.sdk import derive_seed
from plugins.name import checkpoint
from plugins.name.data import STYLES, Example
from plugins.name.vae import NameVAE, VAEConfig, kl_weight
from plugins.name.vocab import Vocab, batch


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 20000
    batch_size: int = 64
    lr: float = 2e-3
    kl_anneal_steps: int = 4000
    word_dropout: float = 0.3
    seed: int = 0
    checkpoint_every: int = 500
    # step schedule: ((from_step, lr), ...) sorted by step; the lr is a function of the step
    # alone, so a resumed run follows it exactly
    lr_steps: tuple = ()

    def lr_at(self, step: int) -> float:
        lr = self.lr
        for at, value in self.lr_steps:
            if step >= at:
                lr = value
        return lr


class StyleSampler:
    """Per step: a style drawn uniformly (small styles are not drowned), then a name of it."""

    def __init__(self, examples: list[Example]) -> None:
        self.by_style = [[e.name for e in examples if e.style == s] for s in STYLES]
        self.present = [i for i, names in enumerate(self.by_style) if names]

    def batch(self, seed: int, step: int, size: int) -> tuple[list[str], torch.Tensor]:
        g = torch.Generator().manual_seed(derive_seed(seed, "batch", step))
        styles = [self.present[int(i)] for i in torch.randint(len(self.present), (size,), generator=g)]
        names = [self.by_style[s][int(torch.randint(len(self.by_style[s]), (1,), generator=g))] for s in styles]
        return names, torch.tensor(styles, dtype=torch.long)


def evaluate_vae(model: NameVAE, vocab: Vocab, examples: list[Example], batch_size: int = 256) -> dict[str, float]:
    """Per-character NLL bound (nats, the negative ELBO over chars + EOS) with posterior means
    of the noise drawn from a fixed seed; and the KL per name."""
    model.eval()
    rec = kl = chars = 0.0
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for i in range(0, len(examples), batch_size):
            chunk = examples[i:i + batch_size]
            x, y = batch(vocab, [e.name for e in chunk], model.cfg.max_len)
            st = torch.tensor([STYLES.index(e.style) for e in chunk])
            out = model.loss(x, y, st, kl_weight=1.0, generator=g)
            rec += float(out["rec_each"].sum())
            kl += float(out["kl_each"].sum())
            chars += float(out["chars_each"].sum())
    return {"nll_per_char": (rec + kl) / chars, "rec_per_char": rec / chars, "kl_per_name": kl / len(examples)}


def train_vae(train: list[Example], valid: list[Example], out: Path | str, cfg: TrainConfig, *,
              minutes: float | None = None, model_cfg: dict[str, Any] | None = None,
              progress: bool = True, stop: Callable[[int], bool] | None = None,
              init: Path | str | None = None) -> dict[str, Any]:
    """Train (or resume ``out``'s checkpoint) until ``cfg.steps`` or ``minutes`` pass. Writes
    ``out`` (the resumable checkpoint, also what the generator serves). Returns the meta.

    ``init`` (a new run only): start from that model's weights, vocabulary and step (e.g. the
    served ``plugins/name/vae``, which has no optimizer state: Adam starts afresh), with
    ``model_cfg`` overriding its config where the weights allow it (``dropout``)."""
    out = Path(out)
    vocab = Vocab.from_names(e.name for e in train)
    resume = out.with_suffix(".json").exists()
    if resume:
        meta = checkpoint.read_meta(out)
        vocab = Vocab(tuple(meta["vocab"]))
        mcfg = VAEConfig(**meta["config"])
    elif init is not None:
        src = checkpoint.read_meta(init)
        if src.get("kind") != "vae":
            raise ValueError(f"{init}.json: kind must be 'vae', got {src.get('kind')!r}")
        vocab = Vocab(tuple(src["vocab"]))
        mcfg = VAEConfig(**{**src["config"], **(model_cfg or {})})
    else:
        mcfg = VAEConfig(vocab_size=len(vocab), n_styles=len(STYLES), **(model_cfg or {}))
    torch.manual_seed(cfg.seed)  # initial weights
    model = NameVAE(mcfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    meta = {"kind": "vae", "config": mcfg.to_dict(), "vocab": list(vocab.chars), "styles": list(STYLES),
            "train": cfg.__dict__, "step": 0, "history": []}
    if resume:
        meta = checkpoint.load_into(out, model, {"adam": opt})
        meta.pop("optimizers", None)
    elif init is not None:
        src = checkpoint.load_into(init, model)
        meta["step"] = int(src["step"])
        meta["history"] = list(src.get("history", []))
        meta["init"] = {"from": str(init), "step": int(src["step"]), "train": src.get("train")}
    sampler = StyleSampler(train)
    start, step = time.monotonic(), int(meta["step"])
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, desc="vae", unit="step")
    model.train()
    last = {}
    while step < cfg.steps:
        if minutes is not None and time.monotonic() - start > minutes * 60:
            break
        if stop is not None and stop(step):
            break
        names, styles = sampler.batch(cfg.seed, step, cfg.batch_size)
        x, y = batch(vocab, names, mcfg.max_len)
        g = torch.Generator().manual_seed(derive_seed(cfg.seed, "noise", step))
        res = model.loss(x, y, styles, kl_weight=kl_weight(step, cfg.kl_anneal_steps),
                         word_dropout=cfg.word_dropout, generator=g)
        for group in opt.param_groups:
            group["lr"] = cfg.lr_at(step)
        opt.zero_grad(set_to_none=True)
        res["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        step += 1
        bar.update(1)
        last = {"rec": float(res["rec"].detach()), "kl": float(res["kl"].detach())}
        bar.set_postfix(last)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            model.eval()
            if valid:
                figures = evaluate_vae(model, vocab, valid[:2000])
                meta["history"].append({"step": step, **{k: round(v, 4) for k, v in figures.items()}})
            model.train()
            meta["step"] = step
            checkpoint.save(out, model, meta, {"adam": opt})
    bar.close()
    meta["step"] = step
    checkpoint.save(out, model, meta, {"adam": opt})
    if not math.isfinite(last.get("rec", 0.0)):
        raise RuntimeError("training diverged (non-finite loss)")
    return meta


def export(src: Path | str, dst: Path | str) -> dict[str, Any]:
    """The servable model of a checkpoint: weights without the optimizer's state."""
    meta = checkpoint.read_meta(src)
    if meta.get("kind") != "vae":
        raise ValueError(f"{src}.json: kind must be 'vae', got {meta.get('kind')!r}")
    model = NameVAE(VAEConfig(**meta["config"]))
    meta = checkpoint.load_into(src, model)
    meta.pop("optimizers", None)
    checkpoint.save(dst, model, meta)
    return meta


def log_importance_weights(model: NameVAE, inputs: torch.Tensor, targets: torch.Tensor, style: torch.Tensor,
                           eps: torch.Tensor) -> torch.Tensor:
    """log p(x, z_k) - log q(z_k | x) for z_k = mu + eps_k * sigma: ``eps`` is (k, B, latent),
    the result (k, B). The k samples go through the decoder as one batch of k*B rows."""
    import torch.nn.functional as F

    from plugins.name.vocab import PAD

    k, B = eps.shape[0], eps.shape[1]
    mu, logvar = model.encode(targets, style)
    z = mu[None] + eps * torch.exp(0.5 * logvar)[None]
    logits = model.decode_logits(inputs.repeat(k, 1), z.reshape(k * B, -1), style.repeat(k))
    log_px = -F.cross_entropy(logits.transpose(1, 2), targets.repeat(k, 1), ignore_index=PAD,
                              reduction="none").sum(1).reshape(k, B)
    log_pz = (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum(-1)
    log_qz = (-0.5 * eps.pow(2) - 0.5 * math.log(2 * math.pi) - 0.5 * logvar[None]).sum(-1)
    return log_px + log_pz - log_qz


def importance_weighted_nll(model: NameVAE, vocab: Vocab, examples: list[Example], k: int = 256,
                            batch_size: int = 64, rows: int = 4096, seed: int = 1234) -> float:
    """Per-character NLL bound from k importance samples (Burda et al. 2016, IWAE):
    -log p(x) <= -log (1/k) sum_k p(x, z_k) / q(z_k | x), z_k ~ q(z | x). For k = 1 it is the
    (single-sample) negative ELBO; it tightens as k grows and stays an upper bound on the true
    NLL in expectation. The samples are decoded ``rows`` at a time (k/chunks x batch)."""
    from plugins.name.vocab import PAD

    model.eval()
    g = torch.Generator().manual_seed(seed)
    total = chars = 0.0
    per_chunk = max(1, rows // batch_size)
    # names of like length together, each batch cut after its longest name (the decoder is causal
    # and PAD targets count for nothing, so this changes only the speed)
    examples = sorted(examples, key=lambda e: (len(e.name), e.style, e.name))
    with torch.no_grad():
        for i in range(0, len(examples), batch_size):
            chunk = examples[i:i + batch_size]
            x, y = batch(vocab, [e.name for e in chunk], model.cfg.max_len)
            width = int((y != PAD).sum(1).max())
            x, y = x[:, :width], y[:, :width]
            st = torch.tensor([STYLES.index(e.style) for e in chunk])
            eps = torch.randn((k, len(chunk), model.cfg.latent), generator=g)
            lw = torch.cat([log_importance_weights(model, x, y, st, eps[j:j + per_chunk])
                            for j in range(0, k, per_chunk)])
            total -= float((torch.logsumexp(lw, 0) - math.log(k)).sum())
            chars += float((y != PAD).sum())
    return total / chars

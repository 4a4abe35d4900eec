"""The judge: a small CNN trained on the data set's categories, whose penultimate features
are the space FD and precision/recall are measured in.

Two heads share the features: the category head (what conditioning accuracy reads) with a
class-balanced loss (skin-tone variants make "person" nearly half the set), and an
auxiliary identity head that tells the individual training images apart. The identity head
is what makes the features sensitive to detail: a category head alone can ignore blur.

A judge trained on real images only puts garbage anywhere: measured, uniform noise and
blank images fell inside the real k-NN balls (precision 1.0). So the category head has
one more class, "not an emoji", trained on synthetic failures: smooth colour blobs,
patch-shuffled real images and noise. Blur is deliberately not among them, so the blur
references stay an independent check of the judge's sensitivity.
"""
from __future__ import annotations

import json
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.state import load_state, save_model

HELD_OUT_PERCENT = 15


def is_held_out(key: str) -> bool:
    """A fixed split by file name hash, stable across runs and machines."""
    return zlib.crc32(key.encode()) % 100 < HELD_OUT_PERCENT


@dataclass
class JudgeConfig:
    classes: list[str]
    identities: int
    channels: int = 4
    width: int = 16
    features: int = 128

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "judge", **asdict(self)}


def _block(cin: int, cout: int, convs: int = 2) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
    return nn.Sequential(*layers)


class Judge(nn.Module):
    """Input: (B, C, 64, 64) in [0, 1]. 64 -> 32 -> 16 -> 8 -> 4, then features."""

    def __init__(self, cfg: JudgeConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.reject = len(cfg.classes)  # index of the "not an emoji" class
        self.body = nn.Sequential(_block(cfg.channels, w, convs=1), nn.MaxPool2d(2), _block(w, 2 * w), nn.MaxPool2d(2),
                                  _block(2 * w, 4 * w), nn.MaxPool2d(2), _block(4 * w, 8 * w), nn.MaxPool2d(2))
        self.embed = nn.Linear(8 * w * 16, cfg.features)
        self.category = nn.Linear(cfg.features, len(cfg.classes) + 1)
        self.identity = nn.Linear(cfg.features, cfg.identities)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.embed(self.body(x).flatten(1)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return self.category(f), self.identity(f)


def _shift(x: torch.Tensor, g: torch.Generator, pixels: int = 3) -> torch.Tensor:
    """Random translation by up to ``pixels``, per batch (cheap, and enough to generalise)."""
    dx, dy = (int(v) for v in torch.randint(-pixels, pixels + 1, (2,), generator=g))
    return torch.roll(x, shifts=(dx, dy), dims=(2, 3))


def negatives(real: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    """n synthetic failures in [0, 1]: colour blobs, patch-shuffled reals, noise."""
    c, size = real.shape[1], real.shape[2]
    k = n // 3
    blobs = F.interpolate(torch.rand(k, c, 6, 6, generator=g), size=(size, size), mode="bicubic",
                          align_corners=False).clamp(0, 1)
    src = real[torch.randint(real.shape[0], (k,), generator=g)]
    p = size // 8  # 8x8 grid of patches, shuffled
    tiles = src.unfold(2, p, p).unfold(3, p, p).reshape(k, c, 64, p, p)
    tiles = tiles[:, :, torch.randperm(64, generator=g)]
    shuffled = tiles.reshape(k, c, 8, 8, p, p).permute(0, 1, 2, 4, 3, 5).reshape(k, c, size, size)
    noise = torch.rand(n - 2 * k, c, size, size, generator=g)
    return torch.cat([blobs, shuffled, noise])


def train_judge(images: torch.Tensor, labels: torch.Tensor, classes: list[str], epochs: int = 10,
                batch: int = 64, seed: int = 0, lr: float = 2e-3,
                log: Any = print) -> Judge:
    """images: (N, C, 64, 64) uint8 (training split only); labels: (N,) category ids."""
    torch.manual_seed(seed)
    n = images.shape[0]
    judge = Judge(JudgeConfig(classes=classes, identities=n, channels=images.shape[1]))
    counts = torch.bincount(labels, minlength=len(classes)).clamp(min=1).float()
    class_weight = counts.sum() / (len(classes) * counts)  # balanced: each class counts equally
    class_weight = torch.cat([class_weight, torch.ones(1)])  # the "not an emoji" class
    opt = torch.optim.AdamW(judge.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * max(1, n // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    ids = torch.arange(n)
    judge.train()
    t0, step = time.perf_counter(), 0
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=g)
        for i in range(n // batch):
            idx = perm[i * batch:(i + 1) * batch]
            x = _shift(images[idx].float() / 255.0, g)
            neg = negatives(x, max(3, batch // 4), g)
            cat_logits, id_logits = judge(torch.cat([x, neg]))
            target = torch.cat([labels[idx], torch.full((neg.shape[0],), len(classes))])
            loss = (F.cross_entropy(cat_logits, target, weight=class_weight)
                    + F.cross_entropy(id_logits[:len(idx)], ids[idx]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
        log(f"judge epoch {epoch + 1}/{epochs}: loss {loss.item():.3f} ({time.perf_counter() - t0:.0f}s)")
    return judge.eval()


@torch.no_grad()
def judge_outputs(judge: Judge, images: torch.Tensor, batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """(features float64, predicted category) for uint8 or [0, 1] float images."""
    feats, preds = [], []
    for i in range(0, images.shape[0], batch):
        x = images[i:i + batch]
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        f = judge.features(x)
        feats.append(f.double())
        preds.append(judge.category(f).argmax(dim=1))
    return torch.cat(feats), torch.cat(preds)


def balanced_accuracy(pred: torch.Tensor, target: torch.Tensor, k: int) -> float:
    accs = [float((pred[target == c] == c).float().mean()) for c in range(k) if (target == c).any()]
    return sum(accs) / len(accs)


def save_judge(judge: Judge, stem: str | Path, extra: dict[str, Any]) -> None:
    save_model(judge, {**judge.cfg.to_dict(), **extra}, stem, dtype=torch.float16)


def load_judge(stem: str | Path) -> tuple[Judge, dict[str, Any]]:
    stem = Path(stem)
    meta = json.loads(stem.with_suffix(".json").read_text())
    cfg = JudgeConfig(classes=meta["classes"], identities=meta["identities"], channels=meta["channels"],
                      width=meta["width"], features=meta["features"])
    judge = Judge(cfg)
    judge.load_state_dict(load_state(stem.with_suffix(".safetensors")))
    return judge.eval(), meta

"""The judge: a style classifier on hashed character 1-3-grams, trained locally on the train
split. Its penultimate layer (64 features) is the space of the Fréchet distance; its softmax
decides validity (is a name recognisably of the style asked for)."""
from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from engine.sdk import derive_seed
from plugins.name.data import STYLES, Example


@dataclass(frozen=True)
class ClassifierConfig:
    buckets: int = 1 << 13
    dim: int = 64
    n_styles: int = len(STYLES)

    def to_dict(self) -> dict:
        return asdict(self)


def grams(name: str) -> list[str]:
    s = f"^{name}$"
    return [s[i:i + n] for n in (1, 2, 3) for i in range(len(s) - n + 1)]


@lru_cache(maxsize=1 << 17)
def bucket_ids(name: str, buckets: int) -> tuple[int, ...]:
    """The hashed n-gram ids of a name (cached: training sees each name many times)."""
    return tuple(int.from_bytes(hashlib.blake2b(g.encode(), digest_size=4).digest(), "little") % buckets
                 for g in grams(name))


class StyleClassifier(nn.Module):
    def __init__(self, cfg: ClassifierConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.bag = nn.EmbeddingBag(cfg.buckets, cfg.dim, mode="mean")
        self.hidden = nn.Linear(cfg.dim, cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.n_styles)

    def inputs(self, names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, offsets = [], []
        for n in names:
            offsets.append(len(ids))
            ids.extend(bucket_ids(n, self.cfg.buckets))
        return torch.tensor(ids, dtype=torch.long), torch.tensor(offsets, dtype=torch.long)

    def features(self, names: list[str]) -> torch.Tensor:
        ids, offsets = self.inputs(names)
        return F.relu(self.hidden(F.relu(self.bag(ids, offsets))))

    def forward(self, names: list[str]) -> torch.Tensor:
        return self.head(self.features(names))

    @torch.no_grad()
    def probs(self, names: list[str]) -> torch.Tensor:
        self.eval()
        return torch.cat([self(names[i:i + 1024]).softmax(-1) for i in range(0, len(names), 1024)]) \
            if names else torch.zeros(0, self.cfg.n_styles)

    @torch.no_grad()
    def feats(self, names: list[str]) -> torch.Tensor:
        self.eval()
        return torch.cat([self.features(names[i:i + 1024]) for i in range(0, len(names), 1024)])


def train_classifier(train: list[Example], *, steps: int = 3000, batch_size: int = 128, seed: int = 0,
                     minutes: float | None = None) -> StyleClassifier:
    """Style-balanced batches (each style equally likely), Adam; deterministic for a seed."""
    torch.manual_seed(seed)
    model = StyleClassifier(ClassifierConfig())
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    by_style = [[e.name for e in train if e.style == s] for s in STYLES]
    start = time.monotonic()
    model.train()
    for step in range(steps):
        if minutes is not None and time.monotonic() - start > minutes * 60:
            break
        g = torch.Generator().manual_seed(derive_seed(seed, "clf", step))
        ys = torch.randint(len(STYLES), (batch_size,), generator=g)
        names = [by_style[int(y)][int(torch.randint(len(by_style[int(y)]), (1,), generator=g))] for y in ys]
        loss = F.cross_entropy(model(names), ys)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()

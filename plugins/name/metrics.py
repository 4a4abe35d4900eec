"""Figures on sets of names: novelty, diversity within a batch, Fréchet distance."""
from __future__ import annotations

from itertools import combinations
from typing import Iterable, Sequence

import numpy as np
import torch


def novelty(names: Sequence[str], train: Iterable[str]) -> float:
    """Share of names not in the training set (case-folded)."""
    seen = {t.casefold() for t in train}
    return sum(n.casefold() not in seen for n in names) / max(len(names), 1)


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def diversity(batch: Sequence[str]) -> float:
    """Mean pairwise edit distance over the longer name's length (0: all the same, 1: nothing
    shared position for position)."""
    pairs = list(combinations(batch, 2))
    if not pairs:
        return 0.0
    return float(np.mean([edit_distance(a, b) / max(len(a), len(b), 1) for a, b in pairs]))


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """FD between Gaussians fitted to feature sets a and b (Heusel et al. 2017), with the
    trace of the square root from the symmetric form S_a^(1/2) S_b S_a^(1/2)."""
    x, y = a.double().numpy(), b.double().numpy()
    s_x, s_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    w, v = np.linalg.eigh(s_x)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    tr = np.sqrt(np.clip(np.linalg.eigvalsh(root @ s_y @ root), 0, None)).sum()
    return float(((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(s_x) + np.trace(s_y) - 2 * tr)

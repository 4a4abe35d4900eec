"""Figures on sets of names: novelty, diversity within a batch, Fréchet distance."""
from __future__ import annotations

from itertools import combinations
from typing import Iterable, Sequence

import numpy as np

from engine.sdk import frechet_distance  # the engine's FD, one implementation for every evaluation


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

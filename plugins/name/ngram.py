"""The baseline: a character n-gram model per style with Witten-Bell interpolation (every order
down to a uniform distribution over the vocabulary plus EOS, so no held-out character gets zero
probability)."""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Iterable

BOS, EOS = "\x02", "\x03"


class CharNGram:
    def __init__(self, order: int, names: Iterable[str], vocab_size: int) -> None:
        if order < 1:
            raise ValueError(f"order must be at least 1, got {order}")
        self.order, self.vocab_size = order, vocab_size + 1  # + EOS
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        for n in names:
            seq = BOS * (order - 1) + n + EOS
            for i in range(order - 1, len(seq)):
                for k in range(order):  # every context length 0..order-1
                    self.counts[seq[i - k:i]][seq[i]] += 1
        self.totals = {ctx: sum(c.values()) for ctx, c in self.counts.items()}

    def prob(self, ctx: str, ch: str) -> float:
        p = 1.0 / self.vocab_size
        for k in range(0, self.order):
            c = ctx[len(ctx) - k:] if k else ""
            counts = self.counts.get(c)
            if not counts:
                continue
            total, types = self.totals[c], len(counts)
            lam = total / (total + types)
            p = lam * counts.get(ch, 0) / total + (1 - lam) * p
        return p

    def nll(self, name: str) -> tuple[float, int]:
        """(total nats, characters scored incl. EOS)."""
        seq = BOS * (self.order - 1) + name + EOS
        total = 0.0
        for i in range(self.order - 1, len(seq)):
            total -= math.log(self.prob(seq[i - self.order + 1:i] if self.order > 1 else "", seq[i]))
        return total, len(name) + 1


def per_char_nll(models: dict[str, CharNGram], examples: Iterable[tuple[str, str]]) -> float:
    nats = chars = 0.0
    for style, name in examples:
        n, c = models[style].nll(name)
        nats, chars = nats + n, chars + c
    return nats / max(chars, 1)

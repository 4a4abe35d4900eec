"""Characters ↔ ids for the name models (the vocabulary is saved in each model's JSON)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import torch

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")


@dataclass(frozen=True)
class Vocab:
    chars: tuple[str, ...]  # ids 4.. in order

    @classmethod
    def from_names(cls, names: Iterable[str]) -> "Vocab":
        return cls(tuple(sorted({c for n in names for c in n})))

    def __len__(self) -> int:
        return len(SPECIALS) + len(self.chars)

    @property
    def index(self) -> dict[str, int]:
        return {c: i + len(SPECIALS) for i, c in enumerate(self.chars)}

    def encode(self, name: str) -> list[int]:
        idx = self.index
        return [idx.get(c, UNK) for c in name]

    def decode(self, ids: Iterable[int]) -> str:
        out = []
        for i in ids:
            if i == EOS:
                break
            if i >= len(SPECIALS):
                out.append(self.chars[i - len(SPECIALS)])
        return "".join(out)

    def knows(self, text: str) -> bool:
        idx = self.index
        return all(c in idx for c in text)


def batch(vocab: Vocab, names: Sequence[str], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets), both (B, max_len + 1): inputs start with BOS, targets end with EOS;
    PAD after the end (targets' PAD is ignored by the loss)."""
    x = torch.full((len(names), max_len + 1), PAD, dtype=torch.long)
    y = torch.full((len(names), max_len + 1), PAD, dtype=torch.long)
    for r, n in enumerate(names):
        ids = vocab.encode(n)[:max_len]
        x[r, 0] = BOS
        x[r, 1:len(ids) + 1] = torch.tensor(ids, dtype=torch.long)
        y[r, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        y[r, len(ids)] = EOS
    return x, y

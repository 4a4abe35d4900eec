"""An offline prompt encoder: a vocabulary learned from the captions plus hashed character
n-grams (fastText-style), so unknown or misspelt words still land near known ones.

The tokenizer is pure Python and JSON-serialisable; the embedding table is an
``nn.EmbeddingBag`` trained together with the model that owns it.
"""
from __future__ import annotations

import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

import torch
from torch import nn

_WORD = re.compile(r"[a-z0-9]+")
EMPTY_ID = 0  # the id of an empty prompt: gives the model an "unconditional" vector


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _ngrams(word: str, n: int) -> list[str]:
    w = f"<{word}>"
    return [w[i:i + n] for i in range(max(1, len(w) - n + 1))]


@dataclass
class PromptTokenizer:
    """Text -> (ids, weights) for ``nn.EmbeddingBag(mode="sum")``.

    A known word counts half its own id and half its n-grams (so the n-gram buckets get
    trained); an unknown word is its n-grams only; the prompt is the mean over words.
    """

    vocab: list[str] = field(default_factory=list)
    buckets: int = 4096
    ngram: int = 3

    def __post_init__(self) -> None:
        self._index = {w: i + 1 for i, w in enumerate(self.vocab)}

    @property
    def num_embeddings(self) -> int:
        return 1 + len(self.vocab) + self.buckets

    @classmethod
    def from_captions(cls, captions: Iterable[str], buckets: int = 4096, ngram: int = 3,
                      min_count: int = 1) -> "PromptTokenizer":
        counts = Counter(w for c in captions for w in words(c))
        vocab = sorted(w for w, n in counts.items() if n >= min_count)
        return cls(vocab=vocab, buckets=buckets, ngram=ngram)

    def _bucket(self, gram: str) -> int:
        # crc32, not hash(): stable across processes and Python versions
        return 1 + len(self.vocab) + zlib.crc32(gram.encode()) % self.buckets

    def encode(self, text: str) -> tuple[list[int], list[float]]:
        ws = words(text)
        if not ws:
            return [EMPTY_ID], [1.0]
        ids: list[int] = []
        weights: list[float] = []
        for w in ws:
            grams = [self._bucket(g) for g in _ngrams(w, self.ngram)]
            own = self._index.get(w)
            gram_share = 0.5 if own is not None else 1.0
            if own is not None:
                ids.append(own)
                weights.append(0.5 / len(ws))
            ids.extend(grams)
            weights.extend([gram_share / (len(grams) * len(ws))] * len(grams))
        return ids, weights

    def batch(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Flat ids/offsets/weights for a batch of prompts."""
        ids: list[int] = []
        weights: list[float] = []
        offsets: list[int] = []
        for t in texts:
            i, w = self.encode(t)
            offsets.append(len(ids))
            ids.extend(i)
            weights.extend(w)
        return {"ids": torch.tensor(ids, dtype=torch.long),
                "offsets": torch.tensor(offsets, dtype=torch.long),
                "weights": torch.tensor(weights, dtype=torch.float32)}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "hashed", "vocab": self.vocab, "buckets": self.buckets, "ngram": self.ngram}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PromptTokenizer":
        return cls(vocab=list(d["vocab"]), buckets=int(d["buckets"]), ngram=int(d["ngram"]))


class PromptEmbedding(nn.Module):
    """The learned table: a prompt batch (from :meth:`PromptTokenizer.batch`) -> (B, dim)."""

    def __init__(self, num_embeddings: int, dim: int) -> None:
        super().__init__()
        self.table = nn.EmbeddingBag(num_embeddings, dim, mode="sum")
        nn.init.normal_(self.table.weight, 0.0, 1.0)

    def forward(self, prompt: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.table(prompt["ids"], prompt["offsets"], per_sample_weights=prompt["weights"])


class FeatureProjection(nn.Module):
    """For fixed sentence vectors (the MiniLM encoder): a learned linear map to ``dim``."""

    def __init__(self, features: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(features, dim)

    def forward(self, prompt: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.proj(prompt["features"])


def make_prompt_encoder(spec: dict[str, Any]) -> Any:
    """The text side of a model config's ``tokenizer`` entry: hashed n-grams or MiniLM."""
    if spec.get("kind") == "minilm":
        from engine.models.minilm import MiniLMPromptEncoder

        return MiniLMPromptEncoder()
    return PromptTokenizer.from_dict(spec)


def prompt_embedding(spec: dict[str, Any], dim: int) -> nn.Module:
    """The learned side: an embedding table, or a projection of fixed sentence vectors."""
    if spec.get("kind") == "minilm":
        from engine.models.minilm import MiniLMPromptEncoder

        return FeatureProjection(MiniLMPromptEncoder.dim, dim)
    return PromptEmbedding(PromptTokenizer.from_dict(spec).num_embeddings, dim)

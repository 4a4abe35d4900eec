"""The emoji GAN's public latent API, for other plugins (plugins/animate walks its latent space).

Why a plugin-to-plugin API and not a copy: an animation's endpoints must be *exactly* the stills
``/emoji`` makes for the same prompt, seed and options (the latent the critic picks included), and
that choice lives here, next to the generator; another plugin re-implementing it would drift as
soon as the GAN or its sampling changes. So this module is the one import other plugins may make
into plugins/emoji (tests/import_layers.py holds that), and it keeps working for any GAN that
``sdk.load_model`` loads: sizes, latent width and conditioning are read from the model's config.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from engine import sdk
from plugins.emoji import emoji_names  # the prompt autocomplete, shared with commands that draw emoji
from plugins.emoji.generator import DEFAULT_QUALITY, HERE, EmojiGenerator, to_image

__all__ = ["DEFAULT_QUALITY", "JUDGE", "Still", "LatentImageModel", "emoji_names", "to_image"]
JUDGE = HERE / "judge"  # the locally trained judge (aigc eval --plugin emoji) whose features evaluations use


@dataclass(frozen=True)
class Still:
    """Output ``index`` of ``/emoji prompt seed variety quality`` (model GAN)."""

    prompt: str
    seed: int
    index: int = 0
    variety: float = 0.7
    quality: str = DEFAULT_QUALITY


class LatentImageModel:
    """The GAN as a latent image model: latents of stills, prompt conditions, batched decode.
    Every call is deterministic and row-independent (decoding runs in the generator's fixed
    micro-batches), so a row decodes to the same pixels alone or among any others."""

    def __init__(self, weights_dir: Path = HERE) -> None:
        self._gen = EmojiGenerator(weights_dir)

    def load(self, device: str) -> None:
        self._gen.load(device)

    @property
    def config(self) -> dict[str, Any]:
        return self._gen.models["gan"][1]

    @property
    def nz(self) -> int:
        return int(self.config["nz"])

    @property
    def conditional(self) -> bool:
        return self._gen.tokenizers["gan"] is not None

    def model_info(self) -> dict[str, str]:
        return self._gen.model_info()

    def latents(self, stills: list[Still]) -> torch.Tensor:
        """(n, nz): the latent each still is decoded from, chosen as /emoji chooses it."""
        items = [sdk.Item(command="emoji", options={"prompt": s.prompt, "variety": s.variety, "quality": s.quality,
                                                    "model": "gan"}, seed=s.seed, index=s.index) for s in stills]
        cands = [self._gen._candidates(it, "gan", self.nz, s.variety, None) for it, s in zip(items, stills)]
        conds = [self._gen._cond("gan", s.prompt) for s in stills]
        best = self._gen._best("gan", items, cands, conds, [s.prompt for s in stills])
        return torch.cat([b["z"].cpu() for b in best])

    def stills(self, stills: list[Still]) -> list[Image.Image]:
        """The images /emoji itself makes for these stills (its generator, not this API's path):
        what an animation's endpoints are checked against."""
        items = [sdk.Item(command="emoji", options={"prompt": s.prompt, "variety": s.variety, "quality": s.quality,
                                                    "model": "gan"}, seed=s.seed, index=s.index) for s in stills]
        with torch.no_grad():
            return [out.data for out in self._gen.generate(items)]

    def conditions(self, prompts: list[str]) -> torch.Tensor | None:
        """(n, cond_dim) prompt conditions (what a morph interpolates), None for an unconditional GAN."""
        if not self.conditional:
            return None
        return torch.cat([self._gen._cond("gan", p) for p in prompts]).cpu()  # type: ignore[misc]

    def decode(self, z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """(n, C, H, W) images in [0, 1] for latent rows ``z`` with conditions ``cond``."""
        dev = self._gen.device
        return self._gen._decode("gan", z.to(dev), None if cond is None else cond.to(dev)).float().cpu()

    @staticmethod
    def image(row: torch.Tensor) -> Image.Image:
        """One decoded row (C, H, W) as PIL RGBA, rounded as /emoji rounds it."""
        return to_image(row[None])

"""The /sfx generator: the class-conditional SpecGAN (model.py) served per item, phase by
Griffin-Lim (spectro.py).

Determinism: an item's latent comes from sdk.normal seeded by (seed, index) (variations: the
source's latent turned by VARIATION_ANGLE towards the item's own noise), the network always runs
on micro-batches of exactly CHUNK rows (zero-padded: CPU kernels are chosen by shape, so a fixed
shape keeps a row's result independent of its batch), and each spectrogram is decoded on its
own from a fixed starting phase. So output i is the same alone or in any batch, sample for
sample (tests/plugins/sfx/test_generator.py).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from engine import sdk
from plugins.sfx.model import Config, Generator
from plugins.sfx.spectro import to_audio

HERE = Path(__file__).resolve().parent
CHUNK = 8
VARIATION_ANGLE = 0.6  # radians between a source latent and its variations' latents
GRIFFIN_LIM_ITERS = 48


def latent(nz: int, seed: int, index: int, variety: float, scale: float = 1.0) -> torch.Tensor:
    """(1, nz): N(0, I), truncated for variety < 1 by resampling entries beyond
    (0.5 + 1.5 * variety) * scale (the truncation trick) from a generator seeded by (seed, index).
    ``scale`` is the served model's calibration for the kind (gan.json ``truncation_scale``,
    1 = none): variety 1 is never truncated, whatever the scale."""
    z = sdk.normal((1, nz), seed, index, "z")
    if variety >= 1.0:
        return z
    threshold = (0.5 + 1.5 * max(0.0, float(variety))) * float(scale)
    g = torch.Generator().manual_seed(sdk.derive_seed(seed, index, "truncate"))
    for _ in range(32):
        outside = z.abs() > threshold
        if not bool(outside.any()):
            break
        z = torch.where(outside, torch.randn(z.shape, generator=g), z)
    return z.clamp(-threshold, threshold)


class SfxGenerator(sdk.Generator):
    name = "sfx"
    max_batch_size = 16
    preferred_batch_sizes = (8, 16)

    def __init__(self, weights: Path = HERE / "gan") -> None:
        self.weights = Path(weights)
        self.model: Generator | None = None
        self.classes: tuple[str, ...] = ()
        self.config: dict[str, Any] = {}
        self._sha = ""

    def load(self, device: str) -> None:
        self.config = json.loads(self.weights.with_suffix(".json").read_text())
        self.classes = tuple(self.config["classes"])
        model = Generator(Config.from_json(self.config["config"]))
        model.load_state_dict(sdk.load_safetensors(str(self.weights.with_suffix(".safetensors"))))
        self.model = model.eval().requires_grad_(False)  # CPU: the decode is CPU-bound anyway
        self._sha = sdk.file_sha256(self.weights.with_suffix(".safetensors"))

    def model_info(self) -> dict[str, str]:
        return {"name": "sfx-specgan", "version": str(self.config.get("step", 0)), "sha256": self._sha}

    def warmup(self) -> None:
        self.generate([sdk.Item(command="sfx", options={"kind": self.classes[0]}, seed=0, index=0)])

    def truncation_scale(self, kind: str) -> float:
        """The model's truncation calibration for ``kind`` (gan.json: ``truncation_scale``, a
        factor on the threshold for every kind, and ``truncation_scale_per_class`` overriding it
        per kind; both absent = 1, the plain mapping). A generator whose outputs are less varied
        than real data at a given threshold gets a wider one, so that a user's ``variety`` means
        about the same spread relative to real sounds from one served model to the next."""
        per = self.config.get("truncation_scale_per_class") or {}
        return float(per.get(kind, self.config.get("truncation_scale", 1.0)))

    def _latent(self, item: sdk.Item, nz: int) -> torch.Tensor:
        variety = float(item.options.get("variety", 0.7))
        scale = self.truncation_scale(str(item.options["kind"]))
        if item.action == "variations" and item.source is not None:
            src = latent(nz, item.source[0], item.source[1], variety, scale)
            return math.cos(VARIATION_ANGLE) * src + math.sin(VARIATION_ANGLE) * item.noise((1, nz), "variation")
        return latent(nz, item.seed, item.index, variety, scale)

    def spectrograms(self, items: list[sdk.Item]) -> torch.Tensor:
        """(B, 1, 128, 128) in [-1, 1], one per item."""
        assert self.model is not None, "load() first"
        nz = self.model.cfg.nz
        z = torch.cat([self._latent(it, nz) for it in items])
        y = torch.tensor([self.classes.index(str(it.options["kind"])) for it in items])
        out = []
        for start in range(0, len(items), CHUNK):
            zc, yc = z[start:start + CHUNK], y[start:start + CHUNK]
            pad = CHUNK - len(zc)
            if pad:
                zc = torch.cat([zc, zc.new_zeros(pad, nz)])
                yc = torch.cat([yc, yc.new_zeros(pad)])
            out.append(self.model(zc, yc)[:CHUNK - pad])
        return torch.cat(out)

    def generate(self, items: list[sdk.Item]) -> list[sdk.Output]:
        with torch.no_grad():
            audio = to_audio(self.spectrograms(items), GRIFFIN_LIM_ITERS)
        return [sdk.Output(data=a.numpy(), meta={"kind": str(it.options["kind"]), "rate": 16000,
                                                            "format": str(it.options.get("format", "ogg"))})
                for a, it in zip(audio, items)]

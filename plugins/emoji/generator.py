"""The emoji generator: a conditional DCGAN (and a conditional VAE) served per item.

Determinism: latents come from sdk.normal seeded by (seed, index), never from global RNG
state, and each item's condition is computed on its own. The network always runs on
micro-batches of exactly CHUNK rows (zero-padded): CPU convolution kernels are chosen by
shape, and a batch of 3 can round differently from a batch of 1 (seen with the trained
weights: 1-ulp differences that flipped uint8 pixels). With one fixed shape, a row's result
depends neither on its position nor on its neighbours, so alone == inside any batch.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from engine import sdk

HERE = Path(__file__).resolve().parent
MORPH_STEPS = 4  # morph output i is the point t = 1 - i/4 between the two prompts
VARIATION_ANGLE = 0.5  # radians between the source latent and a variation's latent
CHUNK = 8  # the one batch shape the networks ever see


def truncated_latent(nz: int, seed: int, index: int, variety: float) -> torch.Tensor:
    """The latent of output (seed, index): N(0, I), truncated for variety < 1 by resampling
    entries beyond a threshold (BigGAN's truncation trick) with a seeded generator."""
    z = sdk.normal((1, nz), seed, index, "z")
    if variety >= 1.0:
        return z
    threshold = 0.1 + 1.9 * max(0.0, float(variety))
    g = torch.Generator().manual_seed(sdk.derive_seed(seed, index, "truncate"))
    for _ in range(32):
        outside = z.abs() > threshold
        if not bool(outside.any()):
            break
        z = torch.where(outside, torch.randn(z.shape, generator=g), z)
    return z.clamp(-threshold, threshold)


def to_image(x: torch.Tensor) -> Image.Image:
    """(1, C, H, W) in [0, 1] -> PIL RGBA; rounding happens once, here."""
    a = (x[0].clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    if a.shape[2] == 3:
        a = np.concatenate([a, np.full(a.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return Image.fromarray(np.ascontiguousarray(a), "RGBA")


class EmojiGenerator(sdk.Generator):
    name = "emoji"
    max_batch_size = 32
    preferred_batch_sizes = (8, 16, 24, 32)

    def __init__(self, weights_dir: Path = HERE) -> None:
        self.weights_dir = Path(weights_dir)
        self.models: dict[str, tuple[torch.nn.Module, dict[str, Any]]] = {}
        self.tokenizers: dict[str, Any] = {}
        self.device = "cpu"

    def available(self) -> list[str]:
        return [k for k in ("gan", "vae") if (self.weights_dir / f"{k}.safetensors").exists()]

    def load(self, device: str) -> None:
        self.device = device
        for kind in self.available():
            module, config = sdk.load_model(self.weights_dir / kind, device)
            self.models[kind] = (module, config)
            self.tokenizers[kind] = sdk.prompt_encoder(config["tokenizer"]) if config.get("tokenizer") else None
        if "gan" not in self.models:
            raise FileNotFoundError(f"no GAN weights in {self.weights_dir} (gan.safetensors + gan.json)")

    def model_info(self) -> dict[str, str]:
        path = self.weights_dir / "gan.safetensors"
        version = self.models["gan"][1].get("version", "0") if "gan" in self.models else "0"
        return {"name": "emoji-dcgan", "version": str(version), "sha256": sdk.file_sha256(path)}

    # -- one item ---------------------------------------------------------------------
    def _cond(self, kind: str, prompt: str) -> torch.Tensor | None:
        module, _ = self.models[kind]
        tok = self.tokenizers[kind]
        if tok is None:
            return None
        batch = {k: v.to(self.device) for k, v in tok.batch([prompt]).items()}
        return module.embed(batch)

    def _latent(self, item: sdk.Item, nz: int, variety: float) -> torch.Tensor:
        if item.action == "variations" and item.source is not None:
            src = truncated_latent(nz, item.source[0], item.source[1], variety)
            noise = item.noise((1, nz), "variation")
            return math.cos(VARIATION_ANGLE) * src + math.sin(VARIATION_ANGLE) * noise
        if item.action == "morph" and item.source is not None:
            return truncated_latent(nz, item.source[0], item.source[1], variety)
        return truncated_latent(nz, item.seed, item.index, variety)

    def _prepare(self, item: sdk.Item) -> tuple[str, torch.Tensor, torch.Tensor | None, dict[str, Any]]:
        """Latent, condition and meta of one item; each depends on the item alone."""
        kind = str(item.options.get("model", "gan"))
        if kind not in self.models:
            kind = "gan"
        _, config = self.models[kind]
        prompt = str(item.options.get("prompt", ""))
        variety = float(item.options.get("variety", 0.7))
        z = self._latent(item, int(config["nz"]), variety).to(self.device)
        cond = self._cond(kind, prompt)
        meta: dict[str, Any] = {"model": kind, "prompt": prompt}
        if item.action == "morph" and cond is not None:
            t = 1.0 - (item.index % MORPH_STEPS) / MORPH_STEPS
            target = str(item.action_options.get("to", prompt))
            cond = torch.lerp(cond, self._cond(kind, target), t)
            meta.update(to=target, t=t)
        return kind, z, cond, meta

    def _decode(self, kind: str, z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        module, _ = self.models[kind]
        if kind == "vae":
            return module.decode(z, cond)
        return (module(z, cond=cond) + 1.0) / 2.0

    def _decode_fixed(self, kind: str, z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """Decode any number of rows in zero-padded micro-batches of exactly CHUNK rows."""
        out = []
        for start in range(0, z.shape[0], CHUNK):
            zc = z[start:start + CHUNK]
            n = zc.shape[0]
            pad = CHUNK - n
            if pad:
                zc = torch.cat([zc, zc.new_zeros(pad, zc.shape[1])])
            cc = cond[start:start + CHUNK] if cond is not None else None
            if cc is not None and pad:
                cc = torch.cat([cc, cc.new_zeros(pad, cc.shape[1])])
            out.append(self._decode(kind, zc, cc)[:n])
        return torch.cat(out)

    def generate(self, items: list[sdk.Item]) -> list[sdk.Output]:
        """Items grouped by model kind, decoded in fixed-shape micro-batches (see above);
        tests/plugins/test_emoji_plugin.py and tests/engine/test_determinism.py check
        alone == in batch, pixel for pixel."""
        with torch.inference_mode():
            prepared = [self._prepare(item) for item in items]
            outputs: list[sdk.Output | None] = [None] * len(items)
            for kind in sorted({p[0] for p in prepared}):
                idx = [i for i, p in enumerate(prepared) if p[0] == kind]
                z = torch.cat([prepared[i][1] for i in idx])
                conds = [prepared[i][2] for i in idx]
                cond = None if conds[0] is None else torch.cat(conds)  # type: ignore[arg-type]
                x = self._decode_fixed(kind, z, cond).float().cpu()
                for row, i in enumerate(idx):
                    outputs[i] = sdk.Output(data=to_image(x[row:row + 1]), meta=prepared[i][3])
            return outputs  # type: ignore[return-value]

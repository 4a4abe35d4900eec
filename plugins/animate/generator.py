"""The animation generator: walks the emoji GAN's latent space (morph, loop) or moves one of its
stills (bounce, spin, pulse), all frames of a batch through the generator in one batched decode.

Determinism: every latent comes from the item's (seed, options) and the GAN decodes rows
independently (fixed micro-batches, plugins/emoji/latents.py), so an animation's frames are
the same alone or batched with other animations, and its endpoints are /emoji's stills.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

from engine import sdk
# A declared plugin-to-plugin dependency (pyproject: the animate plugin needs the emoji plugin's
# weights and its latent API); see plugins/emoji/latents.py for why this is not an SDK protocol.
from plugins.emoji.latents import DEFAULT_QUALITY, LatentImageModel, Still
from plugins.animate.motion import loop_path, morph_path, reaction_frames

SIZE = 128  # Discord's emoji size, and what the clip is shown at
LATENT_MOTIONS = ("loop", "morph")


@dataclass
class Clip:
    """An animation: ``frames`` (PIL RGBA, SIZE px) at ``fps``, to be encoded as ``format``;
    ``raw`` are the decoded frames at the model's own size (the endpoints the still path made)."""

    frames: list[Image.Image]
    fps: int
    format: str
    raw: list[Image.Image] = field(default_factory=list)


def motion_of(options: dict[str, Any]) -> str:
    """The motion asked for; without one, a morph when there is a target prompt, else a loop."""
    motion = options.get("motion")
    return str(motion) if motion else ("morph" if options.get("to") else "loop")


def endpoints(item: sdk.Item) -> tuple[Still, Still]:
    """The stills an animation starts from and (for a morph) ends at. The end defaults to the
    same seed and output with the ``to`` prompt; a morph to the very same still moves to the
    next seed instead (a morph between two draws of one prompt)."""
    o = item.options
    variety, quality = float(o.get("variety", 0.7)), str(o.get("quality", DEFAULT_QUALITY))
    start = Still(str(o["prompt"]), item.seed, int(o.get("from_output", 0)), variety, quality)
    to_seed = o.get("to_seed")
    end = Still(str(o.get("to") or o["prompt"]), int(to_seed) if to_seed is not None else item.seed,
                int(o.get("to_output", start.index)), variety, quality)
    if end == start and to_seed is None:
        end = Still(end.prompt, (item.seed + 1) % (sdk.SEED_MAX + 1), end.index, variety, quality)
    return start, end


class AnimateGenerator(sdk.Generator):
    name = "animate"
    max_batch_size = 4  # animations; each is up to 48 frames through the GAN

    def __init__(self, model: LatentImageModel | None = None) -> None:
        self.model = model or LatentImageModel()

    def load(self, device: str) -> None:
        self.model.load(device)

    def model_info(self) -> dict[str, str]:
        return {**self.model.model_info(), "name": "emoji-dcgan-animate"}

    def warmup(self) -> None:
        self.generate([sdk.Item(command="animate", options={"prompt": "red heart", "frames": 8, "fps": 8},
                                seed=0, index=0)])

    def _plans(self, items: list[sdk.Item]) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """Per item, the latent and condition rows of its frames (one row for a reaction)."""
        stills = [s for it in items for s in endpoints(it)]
        z = self.model.latents(stills)
        conds = self.model.conditions([s.prompt for s in stills])
        plans = []
        for k, it in enumerate(items):
            z0, z1 = z[2 * k:2 * k + 1], z[2 * k + 1:2 * k + 2]
            c0 = None if conds is None else conds[2 * k:2 * k + 1]
            c1 = None if conds is None else conds[2 * k + 1:2 * k + 2]
            frames, motion = int(it.options.get("frames", 24)), motion_of(it.options)
            if motion == "morph":
                plans.append(morph_path(z0, z1, c0, c1, frames))
            elif motion == "loop":
                plane = sdk.normal((2, self.model.nz), it.seed, it.index, "loop-plane")
                zs = loop_path(z0, plane, frames)
                plans.append((zs, None if c0 is None else c0.expand(frames, -1)))
            else:
                plans.append((z0, c0))
        return plans

    def generate(self, items: list[sdk.Item]) -> list[sdk.Output]:
        with torch.no_grad():
            plans = self._plans(items)
            z = torch.cat([p[0] for p in plans])
            cond = None if plans[0][1] is None else torch.cat([p[1] for p in plans])  # type: ignore[misc]
            rows = self.model.decode(z, cond)  # every frame of the batch in one call
        outputs, at = [], 0
        for it, (zs, _) in zip(items, plans):
            raw = [self.model.image(r) for r in rows[at:at + len(zs)]]
            at += len(zs)
            motion, frames = motion_of(it.options), int(it.options.get("frames", 24))
            big = _upscale(raw[0]) if motion not in LATENT_MOTIONS else None
            shown = (reaction_frames(big, motion, frames, SIZE) if big is not None
                     else [_upscale(im) for im in raw])
            start, end = endpoints(it)
            meta: dict[str, Any] = {"motion": motion, "frames": len(shown), "fps": int(it.options.get("fps", 12)),
                                    "prompt": start.prompt, "model": "gan"}
            if motion == "morph":
                meta.update(to=end.prompt, to_seed=end.seed, to_output=end.index)
            outputs.append(sdk.Output(data=Clip(shown, int(it.options.get("fps", 12)),
                                                str(it.options.get("format", "webp")), raw), meta=meta))
        return outputs


def _upscale(image: Image.Image) -> Image.Image:
    """Model size -> SIZE, resampled premultiplied (no dark fringes where alpha falls off)."""
    return image.convert("RGBa").resize((SIZE, SIZE), Image.Resampling.LANCZOS).convert("RGBA")

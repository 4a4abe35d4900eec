"""A plugin written the way a third party would write a new animation and a new audio
modality: it imports nothing of ours but ``engine.sdk`` and encodes with the SDK's
label-aware writers."""
from __future__ import annotations

import math

import numpy as np

from engine import sdk


class Loops(sdk.Generator):
    name = "loops"
    max_batch_size = 4

    def generate(self, items: list[sdk.Item]) -> list[sdk.Output]:
        out = []
        for item in items:
            base = (item.noise((3,)).numpy() * 60 + 128).clip(0, 255).astype(np.int64)
            frames = [np.full((32, 32, 3), (base + 20 * f) % 256, dtype=np.uint8) for f in range(3)]
            out.append(sdk.Output(data=frames))
        return out


class Chirps(sdk.Generator):
    name = "chirps"
    max_batch_size = 4
    rate = 8000

    def generate(self, items: list[sdk.Item]) -> list[sdk.Output]:
        out = []
        for item in items:
            pitch = 200 + float(item.noise((1,))[0]) * 20
            t = np.arange(self.rate // 10) / self.rate
            out.append(sdk.Output(data=0.5 * np.sin(2 * math.pi * pitch * t * (1 + t))))
        return out


def _gif(output: sdk.Output, ctx: sdk.EncodeContext) -> bytes:
    return sdk.encode_gif(output.data, ctx.meta, duration_ms=80, visible_mark=ctx.visible_mark)


def _wav(output: sdk.Output, ctx: sdk.EncodeContext) -> bytes:
    return sdk.encode_wav(output.data, Chirps.rate, ctx.meta)


plugin = sdk.Plugin(
    name="media", version="1.0.0", generators=[Loops(), Chirps()],
    modalities=[
        sdk.Modality("loop", "image/gif", "gif", sdk.Presentation.animation, _gif, "A short looping GIF"),
        sdk.Modality("chirp", "audio/wav", "wav", sdk.Presentation.audio, _wav, "A short chirp"),
    ],
    commands=[
        sdk.Command(name="loop", description="A looping animation", modality="loop", generator="loops",
                    actions=[]),
        sdk.Command(name="chirp", description="A chirp", modality="chirp", generator="chirps", actions=[]),
    ],
)

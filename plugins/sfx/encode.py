"""The /sfx file: Ogg Opus with the AI-generated labels in its comment header (sdk.encode_ogg),
preceded by an audible cue unless the guild turned marks off.

GB 45438-2025 asks audio to carry an explicit label a listener can hear: a voice prompt or an
audio rhythm cue at the start, the end or a suitable point in the middle. Our cue is the audio
counterpart of the images' visible "AI" mark and follows the same switch (``ctx.visible_mark``:
AIGC_VISIBLE_MARK and the guild's setting, on by default): two short 1760 Hz pips at -20 dBFS,
then 120 ms of silence before the sound. The metadata labels are there either way.
"""
from __future__ import annotations

import numpy as np

from engine import sdk

RATE = 16000
CODEC = "opus"  # Discord plays Ogg Opus inline; Opus keeps 1 s of 16 kHz audio small


def audible_cue(rate: int = RATE) -> np.ndarray:
    """Two 60 ms pips 40 ms apart (with 5 ms fades, so they do not click), then 120 ms of silence."""
    n = int(0.06 * rate)
    t = np.arange(n) / rate
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.005)
    pip = (0.1 * np.sin(2 * np.pi * 1760 * t) * fade).astype(np.float32)
    gap, tail = np.zeros(int(0.04 * rate), np.float32), np.zeros(int(0.12 * rate), np.float32)
    return np.concatenate([pip, gap, pip, tail])


def with_cue(samples: np.ndarray, cue: bool) -> np.ndarray:
    return np.concatenate([audible_cue(), samples.astype(np.float32)]) if cue else samples.astype(np.float32)


def encode_ogg(out: sdk.Output, ctx: sdk.EncodeContext) -> bytes:
    return sdk.encode_ogg(with_cue(out.data, ctx.visible_mark), RATE, ctx.meta, codec=CODEC)


def encode_wav(out: sdk.Output, ctx: sdk.EncodeContext) -> bytes:
    return sdk.encode_wav(with_cue(out.data, ctx.visible_mark), RATE, ctx.meta)


# `/sfx format:` value -> (mime, extension); the modality's file type per job (sdk.Modality.formats)
FORMATS = {"ogg": ("audio/ogg", "ogg"), "wav": ("audio/wav", "wav")}


def encode_sound(out: sdk.Output, ctx: sdk.EncodeContext) -> bytes:
    """The job's chosen format (the generator carries ``format`` in the output's meta): Ogg Opus,
    which Discord plays inline, or 16-bit WAV for editors and game engines."""
    return encode_wav(out, ctx) if out.meta.get("format") == "wav" else encode_ogg(out, ctx)

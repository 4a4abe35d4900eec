"""Encoding a clip as the file a job asked for (WebP, GIF or MP4), labelled and sized for Discord.

Discord animates GIF and WebP inline; MP4 plays as a video. Every file fits an attachment
(10 MiB without Nitro), and every GIF also fits a server emoji (256 KiB at 128 x 128), so
"Save as animated emoji" never has to re-encode: a clip over a limit drops every other frame
(each shown twice as long, the same motion and duration) until it fits, deterministically.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from PIL import Image

from engine import sdk
from plugins.animate.generator import Clip

ATTACHMENT_LIMIT = 10 * 1024 * 1024  # Discord's upload limit without Nitro
EMOJI_LIMIT = 256 * 1024  # Discord's server emoji limit (GIF, 128 x 128)
FORMATS = {"webp": ("image/webp", "webp"), "gif": ("image/gif", "gif"), "mp4": ("video/mp4", "mp4")}


def _writer(clip: Clip, ctx: sdk.EncodeContext) -> Callable[[list, int], bytes]:
    mark = ctx.visible_mark
    if clip.format == "gif":
        return lambda frames, ms: sdk.encode_gif([_hard_alpha(f) for f in frames], ctx.meta, duration_ms=ms,
                                                 visible_mark=mark, disposal=2)
    if clip.format == "mp4":
        return lambda frames, ms: sdk.encode_mp4(frames, ctx.meta, fps=max(1, round(1000 / ms)), visible_mark=mark)
    return lambda frames, ms: sdk.encode_webp(frames, ctx.meta, duration_ms=ms, visible_mark=mark,
                                              lossless=False, quality=90)


def _hard_alpha(frame: Image.Image) -> Image.Image:
    """GIF has one transparent colour, not alpha: edge pixels become fully opaque or fully clear
    at half alpha, with their own colour (left to the quantizer they came out as dark fringes)."""
    rgba = np.array(frame.convert("RGBA"))
    opaque = rgba[..., 3] >= 128
    rgba[..., 3] = np.where(opaque, 255, 0)
    rgba[~opaque, :3] = 0
    return Image.fromarray(rgba, "RGBA")


def limit_of(fmt: str) -> int:
    return EMOJI_LIMIT if fmt == "gif" else ATTACHMENT_LIMIT


def encode_clip(output: sdk.Output, ctx: sdk.EncodeContext) -> bytes:
    """The clip's file in its format, within its limit (see the module docstring)."""
    clip: Clip = output.data
    write = _writer(clip, ctx)
    frames, ms = list(clip.frames), round(1000 / clip.fps)
    data = write(frames, ms)
    while len(data) > limit_of(clip.format) and len(frames) > 2:
        frames, ms = frames[::2], ms * 2
        data = write(frames, ms)
    if len(data) > limit_of(clip.format):
        raise ValueError(f"the {clip.format} clip is {len(data)} bytes even at 2 frames, over {limit_of(clip.format)}")
    return data

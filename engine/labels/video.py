"""Video writer: H.264 MP4 with the visible mark on every frame, a top-level XMP ``uuid`` box
(the ISO BMFF place Adobe's XMP spec names, read by exiftool) and the ``AIGC`` object in the
container comment (``moov/udta``, what ffprobe shows as ``format.tags.comment``).

Encoded with PyAV's bundled FFmpeg and its OpenH264 encoder (BSD-2-Clause; the wheel also
carries GPL libx264, which we do not use so the product stays MIT-compatible). Bytes are
deterministic (bitexact muxer and codec, one encoder thread): a file re-made from its job's
description must hash the same as the recorded one.
"""
from __future__ import annotations

import io
import struct
from typing import Any, Sequence

import numpy as np
from PIL import Image

from engine.labels.images import _frames
from engine.labels.metadata import AIGC_KEY, LabelError, _json, aigc_object, build_xmp

XMP_UUID = bytes.fromhex("be7acfcb97a942e89c71999491e3afac")  # Adobe XMP spec part 3, ISO BMFF
MAX_MP4_FRAMES = 1_000  # a generator asks for tens; this bounds encoder memory and time
H264_CODEC = "libopenh264"


def _rgb(image: Image.Image, background: tuple[int, int, int]) -> np.ndarray:
    """RGB frame with transparency composited on ``background``, padded to even sides (4:2:0)."""
    rgba = image.convert("RGBA")
    w, h = rgba.size
    canvas = Image.new("RGBA", (w + (w & 1), h + (h & 1)), background + (255,))
    canvas.alpha_composite(rgba)
    return np.asarray(canvas.convert("RGB"))


def encode_mp4(frames: Sequence[Any], meta: dict[str, str], *, fps: int = 12, visible_mark: bool = True,
               background: tuple[int, int, int] = (49, 51, 56), bitrate: int = 600_000) -> bytes:
    """MP4 (H.264, yuv420p) of ``frames`` at ``fps``, labelled; see the module docstring."""
    import av

    if not 1 <= fps <= 60:
        raise LabelError(f"fps must be between 1 and 60, got {fps}")
    if len(frames) > MAX_MP4_FRAMES:
        raise LabelError(f"an MP4 may have at most {MAX_MP4_FRAMES} frames, got {len(frames)}")
    images = _frames(frames, visible_mark, None)
    rows = [_rgb(im, background) for im in images]
    h, w = rows[0].shape[:2]
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4", options={"fflags": "+bitexact"}) as container:
        container.metadata["comment"] = f"{meta.get('label', 'AI-generated')} {AIGC_KEY}={_json(aigc_object(meta))}"
        stream = container.add_stream(H264_CODEC, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"b": str(bitrate), "threads": "1", "flags": "+bitexact"}
        for row in rows:
            for packet in stream.encode(av.VideoFrame.from_ndarray(row, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    xmp = build_xmp(meta).encode("utf-8")
    box = struct.pack(">I4s", 8 + 16 + len(xmp), b"uuid") + XMP_UUID + xmp
    return buf.getvalue() + box  # after moov: no chunk offset moves

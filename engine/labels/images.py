"""Image writers: PNG (mark + iTXt XMP and AIGC), GIF (mark on every frame or the first n,
XMP application extension, comment) and WebP (mark, ``XMP `` chunk; still or animated)."""
from __future__ import annotations

import io
from typing import Any, Sequence

import numpy as np
from PIL import Image, PngImagePlugin

from engine.labels.mark import draw_ai_mark
from engine.labels.metadata import (AIGC_KEY, XMP_PNG_KEY, LabelError, _json, _provenance, aigc_object,
                                    build_xmp)

def _as_image(data: Any) -> Image.Image:
    if isinstance(data, Image.Image):
        return data
    arr = np.asarray(data)
    if arr.dtype != np.uint8:
        raise LabelError(f"image data must be uint8, got {arr.dtype}")
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise LabelError(f"image data must be HxW, HxWx1, HxWx3 or HxWx4, got shape {arr.shape}")
    return Image.fromarray(arr[..., 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr)


def _prepare(image: Image.Image, mark: bool) -> Image.Image:
    if mark:
        return draw_ai_mark(image)
    if image.mode not in ("RGB", "RGBA", "L", "LA"):
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    return image


def encode_png(image: Image.Image, meta: dict[str, str], *, visible_mark: bool = True,
               compress_level: int = 1) -> bytes:
    """PNG with the visible mark (unless turned off for the guild) and XMP + AIGC labels."""
    info = PngImagePlugin.PngInfo()
    info.add_itxt(XMP_PNG_KEY, build_xmp(meta))
    # The GB 45438 fields plus the engine's provenance meta in one object: standard readers
    # find their seven fields, and engine clients read job/seed/options from the same key.
    info.add_itxt(AIGC_KEY, _json({**_provenance(meta), **aigc_object(meta)}))
    buf = io.BytesIO()
    _prepare(_as_image(image), visible_mark).save(buf, format="PNG", pnginfo=info,
                                                  compress_level=compress_level)
    return buf.getvalue()


def _frames(frames: Sequence[Any], visible_mark: bool, mark_frames: int | None) -> list[Image.Image]:
    if not frames:
        raise LabelError("an animation needs at least one frame")
    if mark_frames is not None and mark_frames < 1:
        raise LabelError(f"mark_frames must be at least 1 (or None for all), got {mark_frames}")
    images = [_as_image(f) for f in frames]
    sizes = {im.size for im in images}
    if len(sizes) != 1:
        raise LabelError(f"all frames must have the same size, got {sorted(sizes)}")
    limit = len(images) if mark_frames is None else mark_frames
    return [_prepare(im, visible_mark and i < limit) for i, im in enumerate(images)]


GIF_XMP_APP = b"\x21\xff\x0bXMP DataXMP"
GIF_XMP_TRAILER = b"\x01" + bytes(range(255, -1, -1)) + b"\x00"  # the 258-byte magic trailer


def _gif_insert_xmp(gif: bytes, xmp: str) -> bytes:
    packet = xmp.encode("utf-8")
    if b"\x00" in packet:
        raise LabelError("XMP for GIF must not contain NUL bytes")
    packed = gif[10]
    gct = 3 * 2 ** ((packed & 7) + 1) if packed & 0x80 else 0
    at = 13 + gct
    return gif[:at] + GIF_XMP_APP + packet + GIF_XMP_TRAILER + gif[at:]


def encode_gif(frames: Sequence[Any], meta: dict[str, str], *, duration_ms: int = 100, loop: int = 0,
               visible_mark: bool = True, mark_frames: int | None = None, disposal: int | None = None) -> bytes:
    """Animated (or single-frame) GIF, marked on every frame or the first ``mark_frames``.
    ``disposal`` 2 clears each frame before the next (moving transparent content leaves no trail)."""
    images = _frames(frames, visible_mark, mark_frames)
    buf = io.BytesIO()
    extra: dict[str, Any] = {} if disposal is None else {"disposal": disposal}
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms,
                   loop=loop, comment=f"{meta.get('label', 'AI-generated')} {AIGC_KEY}={_json(aigc_object(meta))}",
                   **extra)
    return _gif_insert_xmp(buf.getvalue(), build_xmp(meta))


def encode_webp(frames: Any, meta: dict[str, str], *, duration_ms: int = 100, loop: int = 0,
                visible_mark: bool = True, mark_frames: int | None = None, lossless: bool = True,
                quality: int = 90) -> bytes:
    """WebP (one image, or a list of frames for an animation) with an XMP chunk."""
    many = isinstance(frames, (list, tuple))
    images = _frames(frames if many else [frames], visible_mark, mark_frames)
    buf = io.BytesIO()
    options: dict[str, Any] = {"format": "WEBP", "xmp": build_xmp(meta).encode("utf-8"),
                               "lossless": lossless, "quality": quality}
    if many:
        options.update(save_all=True, append_images=images[1:], duration=duration_ms, loop=loop)
    images[0].save(buf, **options)
    return buf.getvalue()

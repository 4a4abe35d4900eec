"""AI-content labels applied when artifacts are encoded (explicit mark + embedded metadata).

Minimal first version: PNG with an iTXt chunk of provenance metadata. Extended by the
labelling work (XMP/AIGC metadata object, GIF/WebP/WAV/OGG, visible mark).
"""
from __future__ import annotations

import io
import json

from PIL import Image, PngImagePlugin

AIGC_KEY = "AIGC"


def encode_png(image: Image.Image, meta: dict[str, str], *, visible_mark: bool = True,
               compress_level: int = 1) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_itxt(AIGC_KEY, json.dumps(meta, sort_keys=True, ensure_ascii=False))
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info, compress_level=compress_level)
    return buf.getvalue()

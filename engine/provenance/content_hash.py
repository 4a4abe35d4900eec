"""A hash of what a file shows or plays, independent of its metadata.

Hosts strip or rewrite metadata without touching pixels (PNG text chunks dropped, XMP
removed), which changes the file's sha256. ``content_sha256`` hashes the decoded first frame
(mode RGBA, with its size) of an image, or the PCM ``data`` chunk of a WAV, so the ledger can
still recognise such a file. A re-compressed (lossy) copy has different pixels and is not
recognised: that would need a perceptual hash, which can also match look-alikes.
"""
from __future__ import annotations

import hashlib
import io
import struct
import warnings

__all__ = ["content_sha256"]

MAX_PIXELS = 64 * 1024 * 1024  # refuse decompression bombs outright


def _image_hash(data: bytes) -> str | None:
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                if im.width * im.height > MAX_PIXELS:
                    return None
                im.seek(0)
                rgba = im.convert("RGBA")
                h = hashlib.sha256(b"rgba:%d:%d:" % rgba.size)
                h.update(rgba.tobytes())
                return h.hexdigest()
    except Exception:  # noqa: BLE001 - any undecodable upload simply has no content hash
        return None


def _wav_hash(data: bytes) -> str | None:
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        if cid == b"data":
            return hashlib.sha256(b"pcm:" + data[pos + 8:pos + 8 + size]).hexdigest()
        pos += 8 + size + (size & 1)
    return None


def content_sha256(data: bytes) -> str | None:
    """The content hash of an image (PNG, GIF, WebP...) or WAV file; None for anything else."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return _wav_hash(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n" or data[:6] in (b"GIF87a", b"GIF89a") or \
            (data[:4] == b"RIFF" and data[8:12] == b"WEBP") or data[:3] == b"\xff\xd8\xff":
        return _image_hash(data)
    return None

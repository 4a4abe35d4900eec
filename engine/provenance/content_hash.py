"""A hash of what a file shows or plays, independent of its metadata.

Hosts strip or rewrite metadata without touching pixels (PNG text chunks dropped, XMP
removed), which changes the file's sha256. ``content_sha256`` hashes the decoded first frame
(mode RGBA, with its size) of an image, or the PCM ``data`` chunk of a WAV, so the ledger can
still recognise such a file. A re-compressed (lossy) copy has different pixels and is not
recognised: that would need a perceptual hash, which can also match look-alikes.

Uploads are hostile (``/v1/verify``), so the work is bounded: an image over
``MAX_HASH_PIXELS`` is not decoded (``content_hash`` says why), Pillow is handed only the
chunks that make the pixels (a PNG's text chunks and a GIF's comments never reach it), and
the RGBA bytes are hashed in strips of about ``STRIP_BYTES`` rather than converted whole.
"""
from __future__ import annotations

import hashlib
import io
import warnings

from engine.containers import WalkLimit, gif_first_frame, png_chunks, riff_chunks

__all__ = ["MAX_HASH_PIXELS", "content_hash", "content_sha256"]

# Our largest output is a 64x64 emoji; 2048x2048 leaves a plugin 1024 times that area (and
# covers the usual 1024/2048-square generators). Decoded, that is at most 16 MiB of RGBA.
MAX_HASH_PIXELS = 2048 * 2048
STRIP_BYTES = 1 << 20
PNG_PIXEL_CHUNKS = (b"IHDR", b"PLTE", b"tRNS", b"IDAT")  # all Pillow reads for the pixels
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


class Skipped(ValueError):
    """A supported file whose content hash is not computed; the message says why."""


def _too_big(width: int, height: int) -> None:
    if width * height > MAX_HASH_PIXELS:
        raise Skipped(f"image is {width}x{height} ({width * height:,} pixels), over the "
                      f"{MAX_HASH_PIXELS:,}-pixel limit of the content hash")


def _png_pixels_only(data: bytes) -> bytes:
    """The PNG with only the chunks that make its (first) image, copied verbatim."""
    kept = []
    for ctype, body, start in png_chunks(data):
        if ctype == b"IHDR" and len(body) >= 8:
            _too_big(int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big"))
        if ctype in PNG_PIXEL_CHUNKS:
            kept.append(memoryview(data)[start:start + 12 + len(body)])
    return PNG_SIGNATURE + b"".join(kept) + PNG_IEND


def _image_hash(data: bytes, fmt: str) -> str:
    from PIL import Image

    if fmt == "PNG":
        data = _png_pixels_only(data)
    elif fmt == "GIF":
        data = gif_first_frame(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            _too_big(im.width, im.height)
            im.seek(0)
            im.load()
            w, h = im.size
            h_ = hashlib.sha256(b"rgba:%d:%d:" % (w, h))
            rows = max(1, STRIP_BYTES // (4 * max(w, 1)))
            for y in range(0, h, rows):  # the same bytes as convert("RGBA").tobytes(), in strips
                h_.update(im.crop((0, y, w, min(h, y + rows))).convert("RGBA").tobytes())
            return h_.hexdigest()


def _wav_hash(data: bytes) -> str | None:
    for cid, body in riff_chunks(data):
        if cid == b"data":
            h = hashlib.sha256(b"pcm:")
            h.update(body)
            return h.hexdigest()
    return None


def _image_format(data: bytes) -> str | None:
    if data[:8] == PNG_SIGNATURE:
        return "PNG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    return None


def content_hash(data: bytes) -> tuple[str | None, str | None]:
    """(hash, None) for an image (PNG, GIF, WebP, JPEG) or WAV file; (None, why) when such a
    file was not hashed (too large, too many chunks, undecodable); (None, None) for other
    formats."""
    try:
        if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
            digest = _wav_hash(data)
            return digest, None if digest else "no data chunk"
        fmt = _image_format(data)
        return (_image_hash(data, fmt), None) if fmt else (None, None)
    except (Skipped, WalkLimit) as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - any undecodable upload simply has no content hash
        return None, f"cannot be decoded ({type(exc).__name__})"


def content_sha256(data: bytes) -> str | None:
    """The content hash of an image (PNG, GIF, WebP, JPEG) or WAV file; None for anything else
    or when it cannot be computed (see ``content_hash`` for why)."""
    return content_hash(data)[0]

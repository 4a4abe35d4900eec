"""Bounded walks over the containers that label read-back and the content hash parse.

The files come from anyone (``POST /v1/verify``), so every walk stops after a fixed amount
of work (``WalkLimit`` says where), a length read from the file is never trusted beyond the
bytes that are there, and chunk bodies are memoryviews: a 30 MiB chunk is not copied to be
skipped. The limits sit far above what any encoder writes and what our outputs need.
"""
from __future__ import annotations

import struct
from typing import Iterator

__all__ = ["MAX_CHUNKS", "WalkLimit", "gif_first_frame", "mp4_boxes", "png_chunks", "riff_chunks"]

# PNG/RIFF chunks (or GIF sub-blocks) walked per file. libpng writes 8 KiB IDATs: 4,096 in a
# 32 MiB upload; an animated WebP has one chunk per frame. 65,536 takes ~30 ms in Python.
MAX_CHUNKS = 65_536

Buffer = bytes | memoryview


class WalkLimit(ValueError):
    """A container walk stopped at one of this module's limits; the message names it."""


def png_chunks(data: Buffer) -> Iterator[tuple[bytes, memoryview, int]]:
    """(type, body, offset of the chunk) of each chunk after the signature, up to IEND
    (included) or the end of the data; a truncated last body is cut short. WalkLimit after
    MAX_CHUNKS chunks."""
    view = memoryview(data)
    pos = 8
    for _ in range(MAX_CHUNKS):
        if pos + 8 > len(view):
            return
        length, ctype = struct.unpack_from(">I4s", view, pos)
        yield ctype, view[pos + 8:pos + 8 + length], pos
        if ctype == b"IEND":
            return
        pos += 12 + length
    if pos + 8 <= len(view):
        raise WalkLimit(f"png: more than {MAX_CHUNKS} chunks; the rest was not read")


def riff_chunks(data: Buffer, start: int = 12) -> Iterator[tuple[bytes, memoryview]]:
    """(id, body) of each RIFF chunk from ``start``. WalkLimit after MAX_CHUNKS chunks."""
    view = memoryview(data)
    pos = start
    for _ in range(MAX_CHUNKS):
        if pos + 8 > len(view):
            return
        size = struct.unpack_from("<I", view, pos + 4)[0]
        yield bytes(view[pos:pos + 4]), view[pos + 8:pos + 8 + size]
        pos += 8 + size + (size & 1)
    if pos + 8 <= len(view):
        raise WalkLimit(f"riff: more than {MAX_CHUNKS} chunks; the rest was not read")


def gif_first_frame(data: Buffer) -> bytes:
    """The GIF up to and including its first frame, with every extension before that frame
    dropped but graphic control (the frame's transparency): comments and application data
    do not change pixels, and Pillow would hold them all in memory. ValueError when the
    blocks before the first frame are malformed; WalkLimit after MAX_CHUNKS sub-blocks."""
    view = memoryview(data)
    if len(view) < 13:
        raise ValueError("gif: truncated header")
    packed = view[10]
    pos = 13 + (3 * 2 ** ((packed & 7) + 1) if packed & 0x80 else 0)
    kept = [view[:pos]]
    walked = 0
    while pos < len(view):
        block = view[pos]
        if block == 0x2C:  # image descriptor: the first frame starts here
            return b"".join(kept) + bytes(view[pos:])
        if block != 0x21 or pos + 2 > len(view):
            break
        start, pos = pos, pos + 2
        while pos < len(view) and view[pos]:  # sub-blocks up to the zero-length terminator
            walked += 1
            if walked > MAX_CHUNKS:
                raise WalkLimit(f"gif: more than {MAX_CHUNKS} extension blocks before the first frame")
            pos += 1 + view[pos]
        pos += 1
        if view[start + 1] == 0xF9:
            kept.append(view[start:pos])
    raise ValueError("gif: no frame")


def mp4_boxes(data: Buffer, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, memoryview]]:
    """(type, body) of each ISO BMFF box (MP4, MOV) between ``start`` and ``end``, one level:
    a caller descends by walking a body. 64-bit sizes and size 0 ("to the end") are read; a
    size past the end cuts the body short; ValueError for a size under the header's own;
    WalkLimit after MAX_CHUNKS boxes. A caller that descends must bound how often it does (a
    file can hold any number of containers), e.g. only into the first box of each type."""
    view = memoryview(data)
    stop = len(view) if end is None else min(end, len(view))
    pos = start
    for _ in range(MAX_CHUNKS):
        if pos + 8 > stop:
            return
        size, btype = struct.unpack_from(">I4s", view, pos)
        header = 8
        if size == 1:
            if pos + 16 > stop:
                return
            size, header = struct.unpack_from(">Q", view, pos + 8)[0], 16
        elif size == 0:
            size = stop - pos
        if size < header:
            raise ValueError(f"mp4: box {btype!r} at {pos} has size {size}, under its header")
        yield bytes(btype), view[pos + header:min(pos + size, stop)]
        pos += size
    if pos + 8 <= stop:
        raise WalkLimit(f"mp4: more than {MAX_CHUNKS} boxes at one level; the rest was not read")

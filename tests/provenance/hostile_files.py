"""Hostile uploads for /v1/verify (issue 18): each is quick to build and (but one) stays
under the route's 32 MiB body limit. ``python -m tests.provenance.hostile_files [NAME...]``
measures each in a fresh process: peak RSS growth, seconds, size of the answer."""
from __future__ import annotations

import functools
import io
import struct
import zlib

from PIL import Image

from engine import labels
from engine.labels import ogg

MIB = 1 << 20
NESTED = "[" * 100_000


def png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def itxt(key: str, text: bytes, compressed: bool = False) -> bytes:
    body = key.encode("latin-1") + b"\x00" + (b"\x01\x00" if compressed else b"\x00\x00") + b"\x00\x00"
    return png_chunk(b"iTXt", body + (zlib.compress(text, 9) if compressed else text))


def small_png(size: tuple[int, int] = (8, 8)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(buf, format="PNG")
    return buf.getvalue()


def png_with(*chunks: bytes, base: bytes | None = None) -> bytes:
    """``base`` (a small PNG) with ``chunks`` inserted after IHDR."""
    base = base or small_png()
    return base[:33] + b"".join(chunks) + base[33:]


def riff(kind: bytes, *chunks: bytes) -> bytes:
    body = kind + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def riff_chunk(cid: bytes, body: bytes) -> bytes:
    return cid + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) & 1 else b"")


def ogg_page(lacing: bytes, body: bytes, seq: int, flags: int = 0) -> bytes:
    # CRC left 0: read-back does not check it, and the pure-Python CRC would take seconds here.
    return struct.pack("<4sBBqIIIB", b"OggS", 0, flags, 0, 7, seq, 0, len(lacing)) + lacing + body


def opus_head() -> bytes:
    return ogg_page(b"\x13", b"OpusHead" + bytes(11), 0, flags=2)


def opus_tags(comments: list[bytes], count: int | None = None) -> bytes:
    return (b"OpusTags" + struct.pack("<I", 3) + b"ven" + struct.pack("<I", len(comments) if count is None else count)
            + b"".join(struct.pack("<I", len(c)) + c for c in comments))


def ogg_packet_pages(packet: bytes, first_seq: int) -> bytes:
    return b"".join(ogg_page(p.lacing, p.body, p.seq, p.flags) for p in ogg._paginate([packet], 7, first_seq))


# ---- the files --------------------------------------------------------------------------------

def png_nested_json() -> bytes:
    return png_with(itxt("AIGC", NESTED.encode()))


def png_xmp_nested_json() -> bytes:
    xmp = labels.build_xmp({"job": "j"})
    at = xmp.index("TC260:AIGC=") + len("TC260:AIGC=") + 1
    return png_with(itxt("XML:com.adobe.xmp", (xmp[:at] + NESTED + xmp[at:]).encode()))


def wav_nested_json() -> bytes:
    return riff(b"WAVE", riff_chunk(b"AIGC", NESTED.encode()), riff_chunk(b"data", bytes(4)))


def ogg_nested_json() -> bytes:
    return opus_head() + ogg_packet_pages(opus_tags([b"AIGC=" + NESTED.encode()]), 1)


@functools.lru_cache(maxsize=1)
def png_8192() -> bytes:
    """A transparent 8192x8192 RGBA image: 1.1 MiB (260 KB at level 9, 3x slower to build),
    256 MiB decoded."""
    z = zlib.compressobj(1)
    rows = bytes((1 + 4 * 8192) * 512)  # each row: a filter byte, then the pixels
    idat = b"".join(z.compress(rows) for _ in range(16)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", 8192, 8192, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def ogg_endless_packet() -> bytes:
    """One packet that never ends: pages of 255 full segments (64 KiB each), 30 MiB."""
    return opus_head() + ogg_page(b"\xff" * 255, bytes(255 * 255), 1) * 480


def ogg_empty_pages() -> bytes:
    """A million pages that carry nothing (27 bytes each): the comment header never comes."""
    return opus_head() + ogg_page(b"", b"", 1) * 1_000_000


def ogg_many_comments() -> bytes:
    """A 4 MiB comment header of a million empty comments."""
    return opus_head() + ogg_packet_pages(opus_tags([b""] * 1_000_000), 1)


def png_tiny_chunks() -> bytes:
    """32 MiB of empty ancillary chunks (12 bytes each) before the image."""
    return png_with(png_chunk(b"zzZz", b"") * (31 * MIB // 12))


def png_big_itxt() -> bytes:
    """A valid 30 MiB AIGC object."""
    return png_with(itxt("AIGC", b'{"Label":"1","x":"' + b"a" * (30 * MIB) + b'"}'))


def png_zlib_bombs() -> bytes:
    """15,000 compressed XMP iTXt chunks, each inflating to 2 MiB: 30 GiB in all."""
    chunks = [itxt("XML:com.adobe.xmp", bytes(2 * MIB), compressed=True)] * 15_000
    return png_with(*chunks)


def wav_tiny_chunks() -> bytes:
    return riff(b"WAVE", riff_chunk(b"junk", b"") * (31 * MIB // 8), riff_chunk(b"data", bytes(4)))


def wav_big_info() -> bytes:
    info = b"INFO" + riff_chunk(b"ICMT", b"a" * (30 * MIB))
    return riff(b"WAVE", riff_chunk(b"LIST", info), riff_chunk(b"data", bytes(4)))


def gif_comment_subblocks() -> bytes:
    """A GIF whose first frame is preceded by a comment of 15 million 1-byte sub-blocks."""
    head = b"GIF89a" + struct.pack("<HHBBB", 8, 8, 0, 0, 0)
    comment = b"\x21\xfe" + b"\x01a" * (15 * MIB) + b"\x00"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 8, 8, 0) + b"\x02\x02\x44\x01\x00"
    return head + comment + frame + b"\x3b"


def xmp_deep_xml() -> bytes:
    inner = "<a>" * 110_000 + "</a>" * 110_000
    xmp = '<x:xmpmeta xmlns:x="adobe:ns:meta/">' + inner + "</x:xmpmeta>"
    return png_with(itxt("XML:com.adobe.xmp", xmp.encode()))


def mp4_box(btype: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), btype) + body


MP4_FTYP = mp4_box(b"ftyp", b"isom\x00\x00\x02\x00")


def mp4_tiny_boxes() -> bytes:
    """32 MiB of empty top-level boxes (8 bytes each): 4 million."""
    return MP4_FTYP + mp4_box(b"free", b"") * (32 * MIB // 8 - 4)


def mp4_big_xmp() -> bytes:
    """A 30 MiB XMP uuid box."""
    return MP4_FTYP + mp4_box(b"uuid", labels.XMP_UUID + b"<x:xmpmeta>" + b"a" * (30 * MIB) + b"</x:xmpmeta>")


def mp4_big_comment() -> bytes:
    """moov/udta/meta/ilst/©cmt/data of 30 MiB."""
    data = mp4_box(b"data", bytes(8) + b"AI-generated AIGC=" + b"a" * (30 * MIB))
    ilst = mp4_box(b"ilst", mp4_box(b"\xa9cmt", data))
    return MP4_FTYP + mp4_box(b"moov", mp4_box(b"udta", mp4_box(b"meta", bytes(4) + ilst)))


def mp4_many_containers() -> bytes:
    """A moov holding 1.5 million udta boxes, each with a meta: only the first is descended into."""
    return MP4_FTYP + mp4_box(b"moov", mp4_box(b"udta", mp4_box(b"meta", bytes(4))) * (3 * MIB // 2))


HOSTILE = {f.__name__: f for f in (
    png_nested_json, png_xmp_nested_json, wav_nested_json, ogg_nested_json, png_8192, ogg_endless_packet,
    ogg_empty_pages, ogg_many_comments, png_tiny_chunks, png_big_itxt, png_zlib_bombs, wav_tiny_chunks,
    wav_big_info, gif_comment_subblocks, xmp_deep_xml, mp4_tiny_boxes, mp4_big_xmp, mp4_big_comment,
    mp4_many_containers)}


def measure(path: str) -> dict:
    """Verify the file at ``path`` against an empty ledger in this (fresh) process: how much
    the peak RSS grew (ru_maxrss counts Pillow's and zlib's C buffers, which tracemalloc does
    not), seconds, and the size of the answer. Only the file's bytes precede the baseline."""
    import os
    import resource
    import tempfile
    import time

    from engine.provenance import ProvenanceLedger, verify

    with open(path, "rb") as f:
        data = f.read()
    with tempfile.TemporaryDirectory() as tmp, ProvenanceLedger(os.path.join(tmp, "l.sqlite3")) as ledger:
        verify(small_png(), ledger)  # warm imports (Pillow plugins, pydantic) before the baseline
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        try:
            report = verify(data, ledger)
            outcome = len(report.model_dump_json())
        except BaseException as exc:  # noqa: BLE001 - reported, this is a probe
            outcome = f"{type(exc).__name__}: {str(exc)[:80]}"
        seconds = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"bytes": len(data), "peak_growth_mib": round((peak - before) / 1024, 1),
            "seconds": round(seconds, 2), "answer": outcome}


def measure_in_subprocess(name: str, directory: str, timeout: float = 120) -> dict:
    import json
    import os
    import subprocess
    import sys

    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(HOSTILE[name]())
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", "import json, sys; from tests.provenance.hostile_files import "
                          "measure; print(json.dumps(measure(sys.argv[1])))", path],
                         capture_output=True, text=True, timeout=timeout, check=True, cwd=root,
                         env={**os.environ, "PYTHONPATH": root})
    return {"name": name, **json.loads(out.stdout.strip().splitlines()[-1])}


if __name__ == "__main__":  # python -m tests.provenance.hostile_files [NAME...]
    import json
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for name in sys.argv[1:] or HOSTILE:
            print(json.dumps(measure_in_subprocess(name, tmp)), flush=True)

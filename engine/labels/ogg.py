"""Ogg pages and Vorbis/Opus comment headers, bounded: the page codec (CRC, lacing), the
header packets of a stream, re-pagination and the comment list. Used by ``label_ogg`` to
rewrite a comment header and by read-back to find one in a file from anyone. (Not mutagen,
which is GPL-2.0-or-later while this project is MIT: see engine/labels/audio.py. C2PA cannot be
embedded in Ogg, so an Ogg output keeps these comments and the ledger as its provenance.)"""
from __future__ import annotations

import struct
from typing import Iterable, Iterator

from engine.labels.metadata import LabelError

def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return table


_OGG_CRC = _crc_table()


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC[((crc >> 24) & 0xFF) ^ b]
    return crc


class _Page:
    __slots__ = ("flags", "granule", "serial", "seq", "lacing", "body")

    def __init__(self, flags: int, granule: int, serial: int, seq: int, lacing: bytes, body: bytes):
        self.flags, self.granule, self.serial, self.seq = flags, granule, serial, seq
        self.lacing, self.body = lacing, body

    def to_bytes(self) -> bytes:
        head = struct.pack("<4sBBqIIIB", b"OggS", 0, self.flags, self.granule, self.serial, self.seq,
                           0, len(self.lacing)) + self.lacing
        crc = _ogg_crc(head + self.body)
        return head[:22] + struct.pack("<I", crc) + head[26:] + self.body


# Read-back walks at most this many pages for the header packets, and no header packet may
# exceed MAX_OGG_PACKET (a comment header can carry cover art; ours are a few KiB).
MAX_OGG_PAGES = 4_096
MAX_OGG_PACKET = 4 << 20


def _iter_ogg_pages(data: bytes) -> Iterator[_Page]:
    pos = 0
    while pos < len(data):
        if data[pos:pos + 4] != b"OggS" or len(data) < pos + 27:
            raise LabelError(f"not an Ogg page at byte {pos}")
        _, _, flags, granule, serial, seq, _crc, nseg = struct.unpack_from("<4sBBqIIIB", data, pos)
        lacing = data[pos + 27:pos + 27 + nseg]
        size = sum(lacing)
        body = data[pos + 27 + nseg:pos + 27 + nseg + size]
        if len(lacing) != nseg or len(body) != size:
            raise LabelError(f"truncated Ogg page at byte {pos}")
        yield _Page(flags, granule, serial, seq, lacing, body)
        pos += 27 + nseg + size


def _ogg_pages(data: bytes) -> list[_Page]:
    return list(_iter_ogg_pages(data))


def _ogg_header_packets(pages: Iterable[_Page], count: int, *,
                        whole_pages: bool = True) -> tuple[list[bytes], int]:
    """The first ``count`` packets and the index of the page that ends the last of them
    (``whole_pages``: that page must hold nothing else). Linear in the bytes walked, and
    bounded: MAX_OGG_PAGES pages, MAX_OGG_PACKET bytes per packet."""
    packets: list[bytes] = []
    current = bytearray()  # grows in place: a packet spanning many pages is not re-copied
    for index, page in enumerate(pages):
        if index == MAX_OGG_PAGES:
            raise LabelError(f"no {count} Ogg header packets in the first {MAX_OGG_PAGES} pages")
        offset = 0
        for n, lace in enumerate(page.lacing):
            current += page.body[offset:offset + lace]
            offset += lace
            if len(current) > MAX_OGG_PACKET:
                raise LabelError(f"an Ogg header packet is over {MAX_OGG_PACKET} bytes")
            if lace < 255:
                packets.append(bytes(current))
                current = bytearray()
                if len(packets) == count:
                    if whole_pages and n != len(page.lacing) - 1:
                        raise LabelError("audio data shares a page with the Ogg headers")
                    return packets, index
    raise LabelError(f"the Ogg stream has fewer than {count} header packets")


def _paginate(packets: list[bytes], serial: int, first_seq: int) -> list[_Page]:
    """Lay packets into pages of at most 255 lacing values (header pages: granule 0 where a
    packet ends, -1 where none does; flag 0x01 on a page that continues a packet)."""
    pages: list[_Page] = []
    lacing, body, continued = bytearray(), bytearray(), False

    def flush() -> None:
        nonlocal lacing, body, continued
        granule = 0 if any(v < 255 for v in lacing) else -1
        pages.append(_Page(0x01 if continued else 0, granule, serial, first_seq + len(pages),
                           bytes(lacing), bytes(body)))
        continued = lacing[-1] == 255
        lacing, body = bytearray(), bytearray()

    for packet in packets:
        laces = [255] * (len(packet) // 255) + [len(packet) % 255]
        pos = 0
        for lace in laces:
            if len(lacing) == 255:
                flush()
            lacing.append(lace)
            body += packet[pos:pos + lace]
            pos += lace
    if lacing:
        flush()
    return pages


def _vorbis_comments(packet: bytes, prefix: bytes,
                     max_comments: int | None = None) -> tuple[bytes, list[str], bytes, int]:
    """(vendor, comments, what follows them, how many comments the header declares); reads
    at most ``max_comments`` of them."""
    pos = len(prefix)
    try:
        (vlen,) = struct.unpack_from("<I", packet, pos)
        vendor = packet[pos + 4:pos + 4 + vlen]
        pos += 4 + vlen
        (count,) = struct.unpack_from("<I", packet, pos)
        pos += 4
        comments = []
        for _ in range(count if max_comments is None else min(count, max_comments)):
            (clen,) = struct.unpack_from("<I", packet, pos)
            comments.append(packet[pos + 4:pos + 4 + clen].decode("utf-8", "replace"))
            pos += 4 + clen
    except struct.error:
        raise LabelError("malformed Vorbis comment header") from None
    return vendor, comments, packet[pos:], count


def _ogg_codec(first_packet: bytes) -> tuple[bytes, int]:
    if first_packet.startswith(b"\x01vorbis"):
        return b"\x03vorbis", 3
    if first_packet.startswith(b"OpusHead"):
        return b"OpusTags", 2
    raise LabelError("only Ogg Vorbis and Ogg Opus streams can be labelled")

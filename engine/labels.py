"""AI-content labels applied when artifacts are encoded: a visible mark plus embedded metadata.

Follows China's labelling measures for AI-generated content (GB 45438-2025: an explicit label
people can see or hear, an implicit label in file metadata carrying the ``AIGC`` object) and
the EU AI Act Art. 50(2) duty to mark outputs machine-readably (IPTC DigitalSourceType
``trainedAlgorithmicMedia`` in XMP, the vocabulary C2PA and most platforms read).

What each encoder writes:

======  =======================================================================================
PNG     visible "AI" mark; iTXt ``XML:com.adobe.xmp`` (XMP, uncompressed as the XMP spec asks)
        and iTXt ``AIGC`` (JSON: the GB 45438 fields plus the provenance meta)
GIF     mark on every frame by default (``mark_frames=n``: the first n); XMP application
        extension ("XMP DataXMP" with the 258-byte magic trailer); comment extension
WebP    mark (all frames); ``XMP `` chunk (still or animated, lossless by default)
WAV     PCM 16-bit; ``LIST``/``INFO`` (ICMT comment, ISFT software, INAM title), an ``AIGC``
        chunk (JSON) and a ``_PMX`` chunk (XMP, as Adobe and exiftool read it)
OGG     Vorbis or Opus comment header: ``AIGC``, ``AIGCBOT_PROVENANCE``, ``COMMENT``,
        ``DIGITALSOURCETYPE``. ``encode_ogg`` encodes with ``soundfile`` (libsndfile's bundled
        libvorbis/libopus), then ``label_ogg`` rewrites the comment header of any single-stream
        Ogg Vorbis/Opus bytes (re-paginating and re-checksumming the pages)
text    a final line ``[AI-generated]`` (``[人工智能生成]`` for zh-CN)
======  =======================================================================================

The XMP packet holds ``Iptc4xmpExt:DigitalSourceType``, ``TC260:AIGC`` (the GB 45438 JSON
object: Label, ContentProducer, ProduceID, ReservedCode1, ContentPropagator, PropagateID,
ReservedCode2), ``xmp:CreatorTool``, ``dc:description`` and ``aigcbot:Provenance`` (the
engine's provenance ``meta`` as JSON: job, command, model, seed...). ``read_labels(data)``
parses all of these back without third-party readers; tests cross-check with Pillow and
exiftool.

The visible mark is drawn from polygons rather than a font, so it looks the same on every
machine (determinism: output bytes depend only on the job) and needs no font package.
"""
from __future__ import annotations

import io
import json
import math
import re
import struct
import xml.etree.ElementTree as ET
from typing import Any, Iterable, Iterator, Sequence
from xml.sax.saxutils import escape, quoteattr

import numpy as np
from PIL import Image, ImageDraw, PngImagePlugin

__all__ = [
    "AIGC_KEY", "DIGITAL_SOURCE_TYPE", "LabelError", "aigc_object", "build_xmp", "parse_xmp",
    "mark_box", "draw_ai_mark", "encode_png", "encode_gif", "encode_webp", "encode_wav",
    "encode_ogg", "label_ogg", "label_text", "read_labels", "TEXT_LABELS",
]

AIGC_KEY = "AIGC"
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "TC260": "http://www.tc260.org.cn/ns/AIGC/1.0/",  # GB 45438-2025 XMP namespace
    "aigcbot": "urn:aigc-bot:ns:provenance:1.0",
}
XMP_PNG_KEY = "XML:com.adobe.xmp"
TEXT_LABELS = {"en-US": "[AI-generated]", "zh-CN": "[人工智能生成]"}
AIGC_FIELDS = ("Label", "ContentProducer", "ProduceID", "ReservedCode1", "ContentPropagator",
               "PropagateID", "ReservedCode2")
MAX_XMP_BYTES = 1 << 20  # read-back refuses larger packets (the files come from users)


class LabelError(ValueError):
    """Input that cannot be encoded or labelled, with the reason."""


# ---- metadata ---------------------------------------------------------------------------------

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(value: Any) -> str:
    return _XML_INVALID.sub("", str(value))


def aigc_object(meta: dict[str, str]) -> dict[str, str]:
    """The GB 45438 implicit-label object for an artifact with provenance ``meta``.

    ``Label`` "1" means AI-generated. ``ContentProducer`` is the service (``meta["producer"]``),
    ``ProduceID`` the artifact's id (job:index). Propagator fields are for whoever redistributes
    the file (the bot fills them when it posts: ``content_propagator``/``propagate_id``).
    Any field but ``Label`` given in ``meta`` under its own name wins (Label stays "1": an
    artifact of ours is AI-generated, whatever a caller passes).
    """
    job, index = meta.get("job", ""), meta.get("index", "")
    obj = {
        "Label": "1",
        "ContentProducer": meta.get("producer", "AIGC Bot"),
        "ProduceID": f"{job}:{index}" if job else meta.get("produce_id", ""),
        "ReservedCode1": meta.get("model_sha256", "")[:64],
        "ContentPropagator": meta.get("content_propagator", ""),
        "PropagateID": meta.get("propagate_id", ""),
        "ReservedCode2": "",
    }
    obj.update({k: str(meta[k]) for k in AIGC_FIELDS if k in meta and k != "Label"})
    return {k: _clean(v) for k, v in obj.items()}


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _provenance(meta: dict[str, str]) -> dict[str, str]:
    return {str(k): _clean(v) for k, v in meta.items()}


def build_xmp(meta: dict[str, str]) -> str:
    """An XMP packet carrying the AI-generated labels and the provenance ``meta``."""
    provenance = _provenance(meta)
    ns_decl = " ".join(f"xmlns:{p}={quoteattr(u)}" for p, u in NS.items() if p not in ("x", "rdf"))
    label = _clean(meta.get("label", "AI-generated"))
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        f'<x:xmpmeta xmlns:x="{NS["x"]}">\n'
        f' <rdf:RDF xmlns:rdf="{NS["rdf"]}">\n'
        f'  <rdf:Description rdf:about="" {ns_decl}\n'
        f'   Iptc4xmpExt:DigitalSourceType="{DIGITAL_SOURCE_TYPE}"\n'
        f'   TC260:AIGC={quoteattr(_json(aigc_object(meta)))}\n'
        f'   xmp:CreatorTool={quoteattr(_clean(meta.get("producer", "AIGC Bot")))}\n'
        f'   aigcbot:Provenance={quoteattr(_json(provenance))}>\n'
        f'   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">{escape(label)}'
        '</rdf:li></rdf:Alt></dc:description>\n'
        '  </rdf:Description>\n'
        ' </rdf:RDF>\n'
        '</x:xmpmeta>\n'
        '<?xpacket end="w"?>'
    )


def parse_xmp(xmp: bytes | str | memoryview, notes: list[str] | None = None) -> dict[str, Any]:
    """The labels in an XMP packet: ``aigc``, ``digital_source_type``, ``provenance``,
    ``description``. Unknown or malformed content gives an empty result, never an exception;
    what was refused is added to ``notes``."""
    notes = [] if notes is None else notes
    if len(xmp) > MAX_XMP_BYTES:  # before any copy: a RIFF chunk can hold 30 MiB
        _note(notes, f"xmp: over {MAX_XMP_BYTES} bytes, not read")
        return {}
    raw = xmp.encode("utf-8", "replace") if isinstance(xmp, str) else bytes(xmp)
    if len(raw) > MAX_XMP_BYTES or b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        _note(notes, "xmp: over the size limit, or declares entities; not read")
        return {}
    start, end = raw.find(b"<x:xmpmeta"), raw.rfind(b"</x:xmpmeta>")
    if start < 0 or end < 0:
        start, end = raw.find(b"<rdf:RDF"), raw.rfind(b"</rdf:RDF>")
        if start < 0 or end < 0:
            return {}
        end += len(b"</rdf:RDF>")
    else:
        end += len(b"</x:xmpmeta>")
    try:
        root = ET.fromstring(raw[start:end])
    except ET.ParseError:
        _note(notes, "xmp: not well-formed XML")
        return {}
    out: dict[str, Any] = {}
    for desc in root.iter(f"{{{NS['rdf']}}}Description"):
        attrs = dict(desc.attrib)
        for child in desc:  # properties written as elements instead of attributes
            if child.text and child.text.strip() and len(child) == 0:
                attrs.setdefault(child.tag, child.text.strip())
        dst = attrs.get(f"{{{NS['Iptc4xmpExt']}}}DigitalSourceType")
        if dst:
            out["digital_source_type"] = dst
        for key, name in (("aigc", "TC260"), ("provenance", "aigcbot")):
            tag = f"{{{NS[name]}}}{'AIGC' if name == 'TC260' else 'Provenance'}"
            if tag in attrs and (value := _load_json_object(attrs[tag], f"xmp:{name}", notes)) is not None:
                out[key] = value
        for li in desc.iterfind(f"{{{NS['dc']}}}description/{{{NS['rdf']}}}Alt/{{{NS['rdf']}}}li"):
            if li.text:
                out["description"] = li.text
    return out


# ---- visible mark -----------------------------------------------------------------------------

MIN_MARK_PX = 7  # below this the letters stop being legible, whatever the 5% rule says


def _glyph_metrics(text_h: int) -> tuple[int, int, int, int]:
    """(stroke, width of the A, gap before the I, plate padding) for a text height."""
    stroke = max(1, round(text_h * 0.15))
    a_w = max(3, round(text_h * 0.9)) | 1  # odd width keeps the A symmetric
    return stroke, a_w, max(1, round(text_h * 0.2)), max(1, round(text_h * 0.25))


def mark_box(size: tuple[int, int]) -> tuple[int, int, int, int, int]:
    """(x0, y0, x1, y1, text_height) of the mark plate in the bottom-right corner.

    Text height is ≥ 6% of the short side (GB 45438 asks ≥ 5%), at least 7 px, at most a
    third of the short side so tiny images keep most of their content. Below 15 px no
    letters fit: those images get the plate alone (their metadata still carries the label).
    """
    w, h = size
    short = min(w, h)
    text_h = max(math.ceil(short * 0.06), MIN_MARK_PX)
    text_h = max(1, min(text_h, short // 3 if short >= 9 else short))
    stroke, a_w, gap, pad = _glyph_metrics(text_h)
    margin = max(0, min(short // 32, 8))
    plate_w = pad + a_w + gap + stroke + pad
    plate_h = pad + text_h + pad
    x1, y1 = w - margin, h - margin
    return x1 - plate_w, y1 - plate_h, x1, y1, text_h


def _letters_mask(size: tuple[int, int], x0: int, y0: int, text_h: int) -> Image.Image:
    """An L mask with "AI" in the text box of the plate at (x0, y0), clipped to its rows."""
    stroke, a_w, gap, pad = _glyph_metrics(text_h)
    tx, ty, bottom = x0 + pad, y0 + pad, y0 + pad + text_h - 1
    mid, half = tx + a_w / 2 - 0.5, stroke / 2
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    # "A": two slanted legs, an apex and a crossbar, as polygons so the result is
    # font-independent; thin polygons rasterise as dots, so the legs are also drawn as lines.
    apex_l, apex_r = mid - half + 0.5, mid + half - 0.5
    draw.polygon([(tx, bottom), (tx + stroke - 1, bottom), (apex_r, ty), (apex_l, ty)], fill=255)
    draw.polygon([(tx + a_w - 1, bottom), (tx + a_w - stroke, bottom), (apex_l, ty), (apex_r, ty)], fill=255)
    leg = (stroke - 1) / 2
    draw.line([(tx + leg, bottom), (mid, ty)], fill=255, width=stroke)
    draw.line([(tx + a_w - 1 - leg, bottom), (mid, ty)], fill=255, width=stroke)
    bar_y = ty + round(text_h * 0.58)
    inset = round(a_w * 0.2)
    if bar_y <= bottom:
        draw.rectangle((tx + inset, bar_y, tx + a_w - 1 - inset, min(bottom, bar_y + stroke - 1)), fill=255)
    draw.rectangle((math.floor(mid - half + 0.5), ty, math.ceil(mid + half - 0.5), ty + stroke - 1), fill=255)
    # "I": a bar.
    ix = tx + a_w + gap
    draw.rectangle((ix, ty, ix + stroke - 1, bottom), fill=255)
    # Line caps overshoot: keep the letters exactly text_h tall.
    if ty > 0:
        draw.rectangle((0, 0, size[0], ty - 1), fill=0)
    if bottom + 1 < size[1]:
        draw.rectangle((0, bottom + 1, size[0], size[1]), fill=0)
    return mask


def draw_ai_mark(image: Image.Image) -> Image.Image:
    """A copy of ``image`` with a white "AI" on a dark translucent plate in the bottom-right
    corner: white on dark reads on light backgrounds and on dark ones (where the plate
    vanishes and the white letters remain)."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    base = image.convert("RGBA")
    x0, y0, x1, y1, text_h = mark_box(base.size)
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    ImageDraw.Draw(overlay).rectangle((x0, y0, x1 - 1, y1 - 1), fill=(0, 0, 0, 170))
    if text_h >= 5:  # smaller images (under 15 px) get the plate only: no letters fit
        overlay.paste((255, 255, 255, 255), (0, 0), _letters_mask(base.size, x0, y0, text_h))
    marked = Image.alpha_composite(base, overlay)
    return marked if has_alpha else marked.convert("RGB")


# ---- images -----------------------------------------------------------------------------------

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
               visible_mark: bool = True, mark_frames: int | None = None) -> bytes:
    """Animated (or single-frame) GIF, marked on every frame or the first ``mark_frames``."""
    images = _frames(frames, visible_mark, mark_frames)
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms,
                   loop=loop, comment=f"{meta.get('label', 'AI-generated')} {AIGC_KEY}={_json(aigc_object(meta))}")
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


# ---- audio ------------------------------------------------------------------------------------

def _pcm16(samples: Any) -> tuple[np.ndarray, int]:
    arr = np.asarray(samples)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] < 1 or arr.shape[1] > 8:
        raise LabelError(f"samples must be (n,) or (n, channels≤8), got shape {np.asarray(samples).shape}")
    if arr.dtype == np.int16:
        return arr, arr.shape[1]
    if not np.issubdtype(arr.dtype, np.floating):
        raise LabelError(f"samples must be float in [-1, 1] or int16, got {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise LabelError("samples contain NaN or infinity")
    return (np.clip(arr, -1.0, 1.0) * 32767.0).round().astype("<i2"), arr.shape[1]


def _riff_chunk(cid: bytes, payload: bytes) -> bytes:
    return cid + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) % 2 else b"")


def _info_text(value: str) -> bytes:
    return _clean(value).encode("utf-8") + b"\x00"


def encode_wav(samples: Any, rate: int, meta: dict[str, str]) -> bytes:
    """PCM 16-bit WAV with LIST/INFO, an ``AIGC`` chunk and XMP (``_PMX``)."""
    if not isinstance(rate, int) or not 1 <= rate <= 768_000:
        raise LabelError(f"rate must be an integer sample rate in 1..768000 Hz, got {rate!r}")
    pcm, channels = _pcm16(samples)
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * 2, channels * 2, 16)
    label = meta.get("label", "AI-generated")
    info = b"INFO" + b"".join([
        _riff_chunk(b"ICMT", _info_text(f"{label}. {AIGC_KEY}={_json(aigc_object(meta))}")),
        _riff_chunk(b"ISFT", _info_text(meta.get("producer", "AIGC Bot"))),
        _riff_chunk(b"INAM", _info_text(f"{label}: {meta.get('command', 'audio')}")),
    ])
    body = (b"WAVE" + _riff_chunk(b"fmt ", fmt) + _riff_chunk(b"LIST", info)
            + _riff_chunk(AIGC_KEY.encode(), _json(aigc_object(meta)).encode("utf-8"))
            + _riff_chunk(b"_PMX", build_xmp(meta).encode("utf-8"))
            + _riff_chunk(b"data", pcm.tobytes()))
    return b"RIFF" + struct.pack("<I", len(body)) + body


# Ogg ------------------------------------------------------------------------------------------

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


OGG_KEYS = ("AIGC", "AIGCBOT_PROVENANCE", "DIGITALSOURCETYPE")


def _our_comments(meta: dict[str, str]) -> list[str]:
    return [f"AIGC={_json(aigc_object(meta))}",
            f"AIGCBOT_PROVENANCE={_json(_provenance(meta))}",
            f"DIGITALSOURCETYPE={DIGITAL_SOURCE_TYPE}",
            f"COMMENT={_clean(meta.get('label', 'AI-generated'))}"]


def label_ogg(data: bytes, meta: dict[str, str]) -> bytes:
    """Ogg Vorbis/Opus bytes with our comments in the comment header (replacing earlier ones)."""
    pages = _ogg_pages(data)
    if not pages:
        raise LabelError("empty Ogg data")
    serial = pages[0].serial
    first = _ogg_header_packets(pages, 1)[0][0]
    prefix, count = _ogg_codec(first)
    header_pages = [p for p in pages if p.serial == serial]
    if len(header_pages) != len(pages):
        raise LabelError("multiplexed Ogg streams (several serial numbers) are not supported")
    packets, last = _ogg_header_packets(pages, count)
    vendor, comments, tail, _ = _vorbis_comments(packets[1], prefix)
    ours_label = _clean(meta.get("label", "AI-generated"))
    kept = [c for c in comments if c.split("=", 1)[0].upper() not in OGG_KEYS
            and c != f"COMMENT={ours_label}"]
    entries = [c.encode("utf-8") for c in kept + _our_comments(meta)]
    packets[1] = (prefix + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", len(entries))
                  + b"".join(struct.pack("<I", len(e)) + e for e in entries) + tail)
    head = _paginate(packets[:1], serial, 0)
    head[0].flags = 0x02  # beginning of stream
    rest_headers = _paginate(packets[1:], serial, 1)
    new_pages = head + rest_headers
    delta = len(new_pages) - (last + 1)
    for page in pages[last + 1:]:
        page.seq += delta
        new_pages.append(page)
    return b"".join(p.to_bytes() for p in new_pages)


def encode_ogg(samples: Any, rate: int, meta: dict[str, str], *, codec: str = "vorbis") -> bytes:
    """Ogg Vorbis (or Opus) from float samples, labelled. Uses ``soundfile``."""
    import soundfile  # libsndfile with libvorbis/libopus, bundled in its wheels

    if codec not in ("vorbis", "opus"):
        raise LabelError(f"codec must be 'vorbis' or 'opus', got {codec!r}")
    if codec == "opus" and rate not in (8000, 12000, 16000, 24000, 48000):
        raise LabelError(f"Opus needs a rate of 8000, 12000, 16000, 24000 or 48000 Hz, got {rate}")
    pcm, _ = _pcm16(samples)
    buf = io.BytesIO()
    soundfile.write(buf, pcm.astype(np.float32) / 32767.0, rate, format="OGG", subtype=codec.upper())
    return label_ogg(buf.getvalue(), meta)


# ---- text -------------------------------------------------------------------------------------

def label_text(text: str, *, locale: str = "en-US") -> str:
    """``text`` followed by an AI-generated line (once, however often it is called)."""
    label = TEXT_LABELS.get(locale, TEXT_LABELS["en-US"])
    stripped = text.rstrip()
    if any(stripped.endswith(lbl) for lbl in TEXT_LABELS.values()):
        return stripped
    return f"{stripped}\n\n{label}"


# ---- read-back --------------------------------------------------------------------------------
# The files come from anyone (/v1/verify). Containers are walked by engine.containers (bounded),
# and what is parsed and returned is bounded too: a label text (an AIGC object, a comment, an
# INFO value) over MAX_LABEL_BYTES is not parsed, compressed text inflates to at most
# MAX_INFLATED_BYTES per file, and the whole answer is kept under MAX_LABELS_JSON. Each refusal
# is named in ``malformed``. The label sizes leave room for a 70,000-character PropagateID
# (GB 45438 sets no length) written twice, as an Ogg header carries it.
MAX_LABEL_BYTES = 128 << 10
MAX_LABELS_JSON = 256 << 10
MAX_INFLATED_BYTES = 2 * MAX_XMP_BYTES
MAX_NOTES = 16
MAX_VORBIS_COMMENTS = 4_096
_SCALARS = (str, int, float, bool, type(None))


def _note(notes: list[str], message: str) -> None:
    if len(notes) < MAX_NOTES and message not in notes:
        notes.append(message)


def _inflate(data: bytes | memoryview, limit: int) -> bytes | None:
    """zlib ``data`` inflated, or None when it is corrupt or inflates past ``limit`` bytes."""
    import zlib

    d = zlib.decompressobj()
    try:
        out = d.decompress(data, limit)
    except zlib.error:
        return None
    return None if d.unconsumed_tail or not d.eof else out


def _read_png(data: bytes, found: dict[str, Any], notes: list[str]) -> None:
    """Our two iTXt keys (tEXt too): others are never copied, decoded or inflated."""
    from engine.containers import png_chunks

    budget = MAX_INFLATED_BYTES
    for ctype, body, _ in png_chunks(data):
        if ctype not in (b"iTXt", b"tEXt"):
            continue
        key = bytes(body[:80]).partition(b"\x00")[0].decode("latin-1")  # keywords: 1-79 bytes
        if key not in (XMP_PNG_KEY, AIGC_KEY):
            continue
        source, limit = f"png:{ctype.decode()}:{key}", MAX_XMP_BYTES if key == XMP_PNG_KEY else MAX_LABEL_BYTES
        if len(body) > limit + 256:  # the header fields before the text are short
            _note(notes, f"{source}: over {limit} bytes, not read")
            continue
        try:
            if ctype == b"tEXt":
                text = bytes(body).split(b"\x00", 1)[1].decode("latin-1")
            else:
                rest = bytes(body).split(b"\x00", 1)[1]
                flag = rest[0]
                _lang, rest = rest[2:].split(b"\x00", 1)
                _translated, raw = rest.split(b"\x00", 1)
                if flag:
                    allowed = min(limit, budget)
                    budget -= allowed  # the work is charged whether the text is kept or not
                    inflated = _inflate(raw, allowed + 1) if allowed > 0 else None
                    if inflated is None or len(inflated) > allowed:
                        _note(notes, f"{source}: corrupt, or inflates past {max(allowed, 0)} bytes; not read")
                        continue
                    raw = inflated
                text = raw.decode("utf-8", "replace")
        except (ValueError, IndexError):
            _note(notes, f"{source}: malformed chunk")
            continue
        if key == XMP_PNG_KEY:
            found["xmp"] = text
        else:
            found["aigc_json"] = (text, "png:iTXt:AIGC")


def _read_riff(data: bytes, result: dict[str, Any], found: dict[str, Any], notes: list[str]) -> None:
    from engine.containers import riff_chunks

    for cid, body in riff_chunks(data):
        if cid in (b"XMP ", b"_PMX"):
            found["xmp"] = body
        elif cid == AIGC_KEY.encode():
            found["aigc_json"] = (body, "riff:AIGC")
        elif cid == b"LIST" and body[:4] == b"INFO":
            info = result["info"] = {}
            for k, v in riff_chunks(body, 4):
                if len(v) > MAX_LABEL_BYTES:
                    _note(notes, f"riff:INFO:{k.decode('latin-1')}: over {MAX_LABEL_BYTES} bytes, not read")
                else:
                    info[k.decode("latin-1")] = bytes(v).rstrip(b"\x00").decode("utf-8", "replace")


def _load_json_object(text: str | bytes | memoryview, source: str, notes: list[str]) -> dict[str, Any] | None:
    """A JSON object's scalar members (labels are flat: nested values are left out and noted);
    None, noted, for text that is too large, too deeply nested or not a JSON object."""
    if len(text) > MAX_LABEL_BYTES:
        _note(notes, f"{source}: over {MAX_LABEL_BYTES} bytes, not read")
        return None
    if not isinstance(text, str):
        text = bytes(text).decode("utf-8", "replace")
    try:
        value = json.loads(text)
    except RecursionError:  # json's C decoder stops at the interpreter's recursion limit
        _note(notes, f"{source}: JSON nested too deeply")
        return None
    except ValueError:
        _note(notes, f"{source}: not valid JSON")
        return None
    if not isinstance(value, dict):
        _note(notes, f"{source}: not a JSON object")
        return None
    flat = {k: v for k, v in value.items() if isinstance(v, _SCALARS)}
    if len(flat) != len(value):
        _note(notes, f"{source}: nested values left out")
    return flat


def _read_gif(data: bytes, found: dict[str, Any], notes: list[str]) -> None:
    at = data.find(GIF_XMP_APP)
    if at >= 0:
        end = data.find(b"<?xpacket end", at)
        close = data.find(b"?>", end) if end >= 0 else -1
        if close - at > MAX_XMP_BYTES:
            _note(notes, f"gif:XMP: over {MAX_XMP_BYTES} bytes, not read")
        elif close >= 0:
            found["xmp"] = data[at + len(GIF_XMP_APP):close + 2]


def _read_ogg(data: bytes, found: dict[str, Any], notes: list[str]) -> None:
    # Only the identification and comment headers: the stream is walked lazily and no
    # further than they need (bounded by MAX_OGG_PAGES and MAX_OGG_PACKET).
    packets, _ = _ogg_header_packets(_iter_ogg_pages(data), 2, whole_pages=False)
    prefix, _ = _ogg_codec(packets[0])
    _, comments, _, count = _vorbis_comments(packets[1], prefix, MAX_VORBIS_COMMENTS)
    if count > len(comments):
        _note(notes, f"ogg: {count} comments, only the first {MAX_VORBIS_COMMENTS} read")
    found["comments"] = comments


def _bound(result: dict[str, Any], notes: list[str]) -> None:
    """Leave out the largest fields until the answer is under MAX_LABELS_JSON bytes."""
    fields = ["aigc", "provenance", "info", "description", "digital_source_type"]
    size = len(json.dumps(result, ensure_ascii=False, default=str).encode())
    while size > MAX_LABELS_JSON:
        sizes = {f: len(json.dumps(result.get(f), ensure_ascii=False).encode()) for f in fields if result.get(f)}
        if not sizes:
            break
        field = max(sizes, key=sizes.get)
        result[field] = None
        _note(notes, f"{field}: left out, the labels would be over {MAX_LABELS_JSON} bytes")
        size -= sizes[field]


def read_labels(data: bytes) -> dict[str, Any]:
    """What labels a file carries, parsed from what our encoders write (and the same fields
    written by others). Never raises on malformed input: unreadable parts are left out and
    ``error`` (the container) or ``malformed`` (a label) says why.

    Returns ``format`` (png, gif, webp, wav, ogg, text, unknown), ``ai_generated`` (any
    label says so), ``aigc`` (the GB 45438 object), ``digital_source_type``, ``provenance``
    (our meta), ``description``, ``sources`` (where each was found) and ``malformed`` (what
    was refused, and why). Bounded in work and in size; see MAX_LABEL_BYTES.
    """
    from engine.containers import WalkLimit

    result: dict[str, Any] = {"format": "unknown", "ai_generated": False, "aigc": None,
                              "digital_source_type": None, "provenance": None, "sources": []}
    found: dict[str, Any] = {}
    notes: list[str] = []
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            result["format"] = "png"
            _read_png(data, found, notes)
        elif data[:6] in (b"GIF87a", b"GIF89a"):
            result["format"] = "gif"
            _read_gif(data, found, notes)
        elif data[:4] == b"RIFF" and data[8:12] in (b"WEBP", b"WAVE"):
            result["format"] = "webp" if data[8:12] == b"WEBP" else "wav"
            _read_riff(data, result, found, notes)
        elif data[:4] == b"OggS":
            result["format"] = "ogg"
            _read_ogg(data, found, notes)
        else:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            if text is not None:
                result["format"] = "text"
                if any(text.rstrip().endswith(lbl) for lbl in TEXT_LABELS.values()):
                    result["ai_generated"] = True
                    result["sources"].append("text:label-line")
    except WalkLimit as exc:  # what was found before the limit is still read
        _note(notes, str(exc))
    except (LabelError, struct.error, IndexError, ValueError) as exc:
        result["error"] = str(exc) or type(exc).__name__

    if "xmp" in found:
        xmp = parse_xmp(found["xmp"], notes)
        if xmp:
            result["sources"].append("xmp")
            result["aigc"] = xmp.get("aigc")
            result["digital_source_type"] = xmp.get("digital_source_type")
            result["provenance"] = xmp.get("provenance")
            if "description" in xmp:
                result["description"] = xmp["description"]
    if "aigc_json" in found:
        text, source = found["aigc_json"]
        obj = _load_json_object(text, source, notes)
        if obj is not None:
            result["sources"].append(source)
            result["aigc"] = result["aigc"] or {k: v for k, v in obj.items() if k in AIGC_FIELDS}
            rest = {k: v for k, v in obj.items() if k not in AIGC_FIELDS}
            result["provenance"] = result["provenance"] or rest or None
    for comment in found.get("comments", []):
        key, _, value = comment.partition("=")
        key = key.upper()
        if key == "AIGC" and (obj := _load_json_object(value, "vorbis_comment:AIGC", notes)) is not None:
            result["aigc"] = obj
            if "vorbis_comment:AIGC" not in result["sources"]:
                result["sources"].append("vorbis_comment:AIGC")
        elif key == "AIGCBOT_PROVENANCE" and (
                obj := _load_json_object(value, "vorbis_comment:AIGCBOT_PROVENANCE", notes)) is not None:
            result["provenance"] = obj
        elif key == "DIGITALSOURCETYPE":
            result["digital_source_type"] = value
    aigc = result["aigc"]
    result["ai_generated"] = bool(
        result["ai_generated"]
        or (isinstance(aigc, dict) and str(aigc.get("Label")) == "1")
        or result["digital_source_type"] == DIGITAL_SOURCE_TYPE)
    result["malformed"] = notes
    _bound(result, notes)
    return result

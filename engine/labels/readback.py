"""Read-back: what labels a file carries (``read_labels``) and the XMP parser, bounded in
work and in size because the files come from anyone (``/v1/verify``)."""
from __future__ import annotations

import json
import struct
import xml.etree.ElementTree as ET
from typing import Any

from engine.labels.images import GIF_XMP_APP
from engine.labels.metadata import (AIGC_FIELDS, AIGC_KEY, DIGITAL_SOURCE_TYPE, MAX_XMP_BYTES, NS, TEXT_LABELS,
                                    XMP_PNG_KEY, LabelError)
from engine.labels.ogg import _ogg_codec, _ogg_header_packets, _iter_ogg_pages, _vorbis_comments

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


def _first(boxes: Any, btype: bytes) -> memoryview | None:
    return next((body for t, body in boxes if t == btype), None)


def _read_mp4(data: bytes, found: dict[str, Any], notes: list[str]) -> None:
    """The top-level XMP ``uuid`` box (or ``moov/udta/XMP_``) and the comment
    ``moov/udta/meta/ilst/©cmt`` carrying ``AIGC=``. Bounded: one walk of the top level and
    of each container on that fixed path, into the first box of each type only."""
    from engine.containers import mp4_boxes
    from engine.labels.video import XMP_UUID

    moov = None
    for btype, body in mp4_boxes(data):
        if btype == b"uuid" and bytes(body[:16]) == XMP_UUID and "xmp" not in found:
            found["xmp"] = body[16:]
        elif btype == b"moov" and moov is None:
            moov = body
    udta = _first(mp4_boxes(moov), b"udta") if moov is not None else None
    if udta is None:
        return
    meta = None
    for btype, body in mp4_boxes(udta):
        if btype == b"XMP_" and "xmp" not in found:
            found["xmp"] = body
        elif btype == b"meta" and meta is None:
            meta = body
    if meta is None:
        return
    # ISO's meta is a full box (4 bytes of version and flags first), QuickTime's is not
    ilst = _first(mp4_boxes(meta, 0 if bytes(meta[4:8]) == b"hdlr" else 4), b"ilst")
    cmt = _first(mp4_boxes(ilst), b"\xa9cmt") if ilst is not None else None
    value = _first(mp4_boxes(cmt), b"data") if cmt is not None else None
    if value is None:
        return
    if len(value) > MAX_LABEL_BYTES + 8:
        _note(notes, f"mp4:comment: over {MAX_LABEL_BYTES} bytes, not read")
        return
    text = bytes(value[8:]).decode("utf-8", "replace")  # after the type indicator and locale
    marker = f" {AIGC_KEY}="
    if marker in text:
        found["aigc_json"] = (text.split(marker, 1)[1], "mp4:comment:AIGC")


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

    Returns ``format`` (png, gif, webp, wav, ogg, mp4, text, unknown), ``ai_generated`` (any
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
        elif data[4:8] == b"ftyp":
            result["format"] = "mp4"
            _read_mp4(data, found, notes)
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

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
MP4     H.264 (OpenH264 via PyAV); mark on every frame; top-level XMP ``uuid`` box; the ``AIGC``
        object in the container comment (``moov/udta``)
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

The package, one concept per module: ``metadata`` (the AIGC object, XMP, shared constants),
``mark`` (the visible mark), ``images`` (PNG/GIF/WebP), ``video`` (MP4), ``audio`` (WAV/OGG), ``ogg`` (Ogg pages
and comment headers), ``text`` (the text label line) and ``readback`` (``read_labels`` and the
bounded parsers). The public names are re-exported here: ``from engine import labels;
labels.encode_png(...)``. Plugins reach the writers through ``engine.sdk``.
"""
from __future__ import annotations

from engine.labels.audio import encode_ogg, encode_wav, label_ogg
from engine.labels.images import encode_gif, encode_png, encode_webp
from engine.labels.mark import MIN_MARK_PX, draw_ai_mark, mark_box
from engine.labels.metadata import (AIGC_FIELDS, AIGC_KEY, DIGITAL_SOURCE_TYPE, MAX_XMP_BYTES, TEXT_LABELS,
                                    LabelError, aigc_object, build_xmp)
from engine.labels.ogg import MAX_OGG_PACKET, MAX_OGG_PAGES
from engine.labels.readback import (MAX_INFLATED_BYTES, MAX_LABEL_BYTES, MAX_LABELS_JSON, MAX_VORBIS_COMMENTS,
                                    parse_xmp, read_labels)
from engine.labels.text import label_text
from engine.labels.video import MAX_MP4_FRAMES, XMP_UUID, encode_mp4

__all__ = [
    "AIGC_KEY", "DIGITAL_SOURCE_TYPE", "LabelError", "aigc_object", "build_xmp", "parse_xmp",
    "mark_box", "draw_ai_mark", "encode_png", "encode_gif", "encode_webp", "encode_mp4", "encode_wav",
    "encode_ogg", "label_ogg", "label_text", "read_labels", "TEXT_LABELS",
    # the limits, for callers and tests that check against them
    "AIGC_FIELDS", "MAX_XMP_BYTES", "MAX_LABEL_BYTES", "MAX_LABELS_JSON", "MAX_INFLATED_BYTES",
    "MAX_VORBIS_COMMENTS", "MAX_OGG_PAGES", "MAX_OGG_PACKET", "MIN_MARK_PX", "MAX_MP4_FRAMES", "XMP_UUID",
]

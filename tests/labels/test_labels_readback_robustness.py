import io

from hypothesis import given, settings, strategies as st
from PIL import Image

from engine import labels
from engine.labels import build_xmp, metadata, parse_xmp, read_labels


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_read_labels_never_raises_on_arbitrary_bytes(data):
    got = read_labels(data)
    assert got["format"] in {"png", "gif", "webp", "wav", "ogg", "text", "unknown"}


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([b"\x89PNG\r\n\x1a\n", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBP", b"RIFF\x10\x00\x00\x00WAVE", b"OggS"]),
       st.binary(max_size=300))
def test_read_labels_survives_truncated_and_corrupt_containers(magic, tail):
    got = read_labels(magic + tail)
    assert got["ai_generated"] in (True, False)


def test_truncating_a_labelled_file_never_raises(meta):
    data = labels.encode_png(Image.new("RGB", (32, 32)), meta)
    for cut in range(0, len(data), 97):
        read_labels(data[:cut])


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), st.text(max_size=40), max_size=6))
def test_xmp_round_trips_any_meta(meta):
    parsed = parse_xmp(build_xmp(meta))
    cleaned = {k: metadata._clean(v) for k, v in meta.items()}
    assert parsed["provenance"] == {k: v for k, v in cleaned.items()}
    assert parsed["aigc"]["Label"] == "1"


def test_xmp_with_entities_is_not_expanded():
    bomb = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]>'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/">&a;</x:xmpmeta>')
    assert parse_xmp(bomb) == {}
    assert parse_xmp(b"<x:xmpmeta>unclosed") == {}


def test_png_with_compressed_foreign_itxt_is_read(meta):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", build_xmp(meta), zip=True)  # other tools may compress
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG", pnginfo=info)
    got = read_labels(buf.getvalue())
    assert got["ai_generated"] and got["provenance"] == meta

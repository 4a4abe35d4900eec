import io
import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from engine import labels
from engine.labels import DIGITAL_SOURCE_TYPE, LabelError, mark_box, read_labels

AIGC_FIELDS = {"Label", "ContentProducer", "ProduceID", "ContentPropagator", "PropagateID",
               "ReservedCode1", "ReservedCode2"}
XMP_NS = {"rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
          "ipx": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
          "tc": "http://www.tc260.org.cn/ns/AIGC/1.0/"}


def xmp_attrs(xmp):
    """Parse an XMP packet with the stdlib alone (independent of engine.labels.parse_xmp)."""
    text = xmp.decode() if isinstance(xmp, bytes) else xmp
    root = ET.fromstring(text[text.index("<x:xmpmeta"):text.index("</x:xmpmeta>") + 12])
    return root.find("rdf:RDF/rdf:Description", XMP_NS).attrib


def check_aigc(obj, meta):
    assert set(obj) == AIGC_FIELDS
    assert obj["Label"] == "1" and obj["ContentProducer"] == "AIGC Bot"
    assert obj["ProduceID"] == f"{meta['job']}:{meta['index']}"


def check_png_aigc_chunk(text, meta):
    """PNG iTXt AIGC: the GB 45438 fields, plus the engine's provenance meta (engine clients
    read job/seed/options from this key)."""
    chunk = json.loads(text)
    check_aigc({k: v for k, v in chunk.items() if k in AIGC_FIELDS}, meta)
    assert {k: v for k, v in chunk.items() if k not in AIGC_FIELDS} == meta


def check_exif(tags, meta):
    assert tags["XMP-iptcExt:DigitalSourceType"] == DIGITAL_SOURCE_TYPE
    check_aigc(json.loads(tags["XMP-TC260:Aigc"]), meta)
    assert json.loads(tags["XMP-aigcbot:Provenance"]) == meta
    assert tags["XMP-dc:Description"] == "AI-generated"


def noise(size, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def test_png_labels_read_back_by_pillow_exiftool_and_read_labels(tmp_path, meta, exiftool):
    data = labels.encode_png(noise((80, 60)), meta)
    im = Image.open(io.BytesIO(data))
    im.load()
    assert im.size == (80, 60)
    attrs = xmp_attrs(im.info["XML:com.adobe.xmp"])
    assert attrs[f"{{{XMP_NS['ipx']}}}DigitalSourceType"] == DIGITAL_SOURCE_TYPE
    check_aigc(json.loads(attrs[f"{{{XMP_NS['tc']}}}AIGC"]), meta)
    check_png_aigc_chunk(im.info["AIGC"], meta)
    path = tmp_path / "out.png"
    path.write_bytes(data)
    tags = exiftool(path)
    check_exif(tags, meta)
    check_png_aigc_chunk(tags["PNG:AIGC"], meta)
    got = read_labels(data)
    assert (got["format"], got["ai_generated"], got["provenance"]) == ("png", True, meta)
    check_aigc(got["aigc"], meta)
    assert got["sources"] == ["xmp", "png:iTXt:AIGC"]


def test_encode_png_keeps_its_engine_signature_and_mark_switch(meta):
    img = Image.new("RGB", (64, 64), (10, 200, 10))
    plain = Image.open(io.BytesIO(labels.encode_png(img, meta, visible_mark=False, compress_level=9)))
    assert np.array_equal(np.asarray(plain.convert("RGB")), np.asarray(img))
    marked = Image.open(io.BytesIO(labels.encode_png(img, meta)))
    assert not np.array_equal(np.asarray(marked.convert("RGB")), np.asarray(img))
    assert labels.encode_png(img, meta) == labels.encode_png(img, meta)  # deterministic bytes


@pytest.mark.parametrize("size", [(64, 64), (65, 300), (300, 64), (512, 512), (1024, 768), (16, 16)])
def test_visible_mark_is_in_the_corner_and_tall_enough(size):
    grey = Image.new("RGB", size, (128, 128, 128))
    marked = np.asarray(labels.draw_ai_mark(grey))
    x0, y0, x1, y1, text_h = mark_box(size)
    changed = np.argwhere(np.any(marked != 128, axis=2))
    assert changed[:, 1].min() >= x0 and changed[:, 0].min() >= y0  # only the corner box
    assert x1 > size[0] * 0.6 and y1 > size[1] * 0.6
    white = np.argwhere(np.all(marked == 255, axis=2))  # the letters
    letters_h = white[:, 0].max() - white[:, 0].min() + 1
    assert letters_h == text_h
    if min(size) >= 21:
        assert letters_h >= 0.05 * min(size)
    assert letters_h >= min(7, min(size) // 3 if min(size) >= 9 else min(size))


@pytest.mark.parametrize("background", [(255, 255, 255), (0, 0, 0), (128, 128, 128), (255, 255, 0), "noise"])
def test_visible_mark_contrasts_with_any_background(background):
    size = (64, 64)
    img = noise(size, 3) if background == "noise" else Image.new("RGB", size, background)
    marked = np.asarray(labels.draw_ai_mark(img)).astype(float)
    x0, y0, x1, y1, _ = mark_box(size)
    box = marked[y0:y1, x0:x1]
    lum = box @ [0.2126, 0.7152, 0.0722]
    letters = lum[np.all(box == 255, axis=2)]
    plate = lum[~np.all(box == 255, axis=2)]
    assert letters.size > 10
    # WCAG-style contrast of the white letters against the brightest plate pixel
    ratio = (255 + 12.75) / (plate.max() + 12.75)
    assert ratio >= 2.5, ratio


def test_mark_keeps_transparency_and_accepts_arrays_and_modes(meta):
    rgba = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    out = Image.open(io.BytesIO(labels.encode_png(rgba, meta)))
    assert out.mode == "RGBA" and out.getpixel((0, 0))[3] == 0
    x0, y0, *_ = mark_box((64, 64))
    assert out.getpixel((x0 + 1, y0 + 1))[3] > 0
    for data in (np.zeros((32, 48), np.uint8), np.zeros((32, 48, 3), np.uint8), Image.new("P", (48, 32)),
                 Image.new("L", (48, 32))):
        assert Image.open(io.BytesIO(labels.encode_png(data, meta))).size == (48, 32)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((4, 4), np.float32), "image data must be uint8, got float32"),
    (np.zeros((4, 4, 2), np.uint8), "got shape (4, 4, 2)"),
])
def test_bad_image_data_is_explained(bad, message, meta):
    with pytest.raises(LabelError) as info:
        labels.encode_png(bad, meta)
    assert message in str(info.value)


def frames(n=4, size=(96, 64)):
    return [noise(size, i) for i in range(n)]


def test_gif_is_a_valid_animation_with_xmp_read_by_exiftool(tmp_path, meta, exiftool):
    data = labels.encode_gif(frames(), meta, duration_ms=80)
    im = Image.open(io.BytesIO(data))
    assert im.n_frames == 4 and im.info["loop"] == 0
    for i in range(4):  # the XMP block and its magic trailer do not disturb a GIF decoder
        im.seek(i)
        im.load()
    comment = im.info["comment"].decode()
    assert comment.startswith("AI-generated AIGC=")
    check_aigc(json.loads(comment.split("AIGC=", 1)[1]), meta)
    path = tmp_path / "out.gif"
    path.write_bytes(data)
    tags = exiftool(path)
    check_exif(tags, meta)
    assert tags["GIF:FrameCount"] == 4
    got = read_labels(data)
    assert (got["format"], got["ai_generated"], got["provenance"]) == ("gif", True, meta)


def test_gif_marks_all_frames_or_only_the_first_ones(meta):
    def marked_frames(**kw):
        colours = [Image.new("RGB", (64, 64), (0, 0, 50 * i)) for i in range(4)]  # GIF merges equal frames
        im = Image.open(io.BytesIO(labels.encode_gif(colours, meta, **kw)))
        out = []
        for i in range(im.n_frames):
            im.seek(i)
            px = np.asarray(im.convert("RGB"))
            out.append(bool(np.any(np.all(px == 255, axis=2))))
        return out

    assert marked_frames() == [True] * 4
    assert marked_frames(mark_frames=2) == [True, True, False, False]
    assert marked_frames(visible_mark=False) == [False] * 4
    with pytest.raises(LabelError, match="mark_frames must be at least 1"):
        labels.encode_gif(frames(1), meta, mark_frames=0)
    with pytest.raises(LabelError, match="at least one frame"):
        labels.encode_gif([], meta)
    with pytest.raises(LabelError, match="same size"):
        labels.encode_gif([noise((8, 8)), noise((9, 8))], meta)


@pytest.mark.parametrize("animated", [False, True])
def test_webp_xmp_read_by_pillow_and_exiftool(tmp_path, meta, exiftool, animated):
    data = labels.encode_webp(frames(3) if animated else noise((64, 64)), meta)
    im = Image.open(io.BytesIO(data))
    assert getattr(im, "n_frames", 1) == (3 if animated else 1)
    attrs = xmp_attrs(im.info["xmp"])
    assert attrs[f"{{{XMP_NS['ipx']}}}DigitalSourceType"] == DIGITAL_SOURCE_TYPE
    path = tmp_path / "out.webp"
    path.write_bytes(data)
    check_exif(exiftool(path), meta)
    got = read_labels(data)
    assert (got["format"], got["ai_generated"], got["provenance"]) == ("webp", True, meta)
    # lossless by default: the pixels outside the mark are the generator's
    first = np.asarray(im.convert("RGB"))
    source = np.asarray((frames(3)[0] if animated else noise((64, 64))))
    x0, y0, *_ = mark_box((im.width, im.height))
    assert np.array_equal(first[:y0, :], source[:y0, :])


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 90), st.integers(1, 90), st.sampled_from(["RGB", "RGBA", "L", "P", "1"]))
def test_mark_works_on_every_size_and_mode(w, h, mode):
    marked = labels.draw_ai_mark(Image.new(mode, (w, h)))
    assert marked.size == (w, h) and marked.mode in ("RGB", "RGBA")
    if min(w, h) >= 21:  # big enough for the full-size mark: white letters present
        assert np.any(np.all(np.asarray(marked.convert("RGB")) == 255, axis=2))

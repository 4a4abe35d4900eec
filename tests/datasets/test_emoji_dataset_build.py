"""The emoji data set builder (needs Debian's fonts-noto-color-emoji, as CI installs it)."""
from __future__ import annotations

import json

import pytest
from PIL import Image

from engine.datasets.emoji import FontMissing, caption, find_font
from engine.datasets.emoji_categories import categorize, merge_small


def test_captions_of_sequences():
    assert caption((0x1F600,)) == "grinning face"
    assert caption((0x1F1EB, 0x1F1F7)) == "flag fr"
    assert caption((0x31, 0xFE0F, 0x20E3)) == "keycap digit one"
    assert caption((0x1F44D, 0x1F3FD)) == "thumbs up sign medium skin tone"
    assert caption((0x1F468, 0x200D, 0x1F373)) == "man cooking"
    tag = (0x1F3F4, 0xE0067, 0xE0062, 0xE0073, 0xE0063, 0xE0074, 0xE007F)
    assert caption(tag) == "flag scotland"


def test_categories_rules_and_merging():
    assert [categorize(c) for c in ("dog face", "grinning face", "thumbs up sign medium skin tone",
                                    "man cooking", "flag fr", "red apple", "automobile", "keycap digit one")] == \
        ["animal", "face", "hand", "person", "flag", "food", "vehicle", "symbol"]
    assert merge_small(["a"] * 5 + ["b"], min_class=2) == ["a"] * 5 + ["object"]


@pytest.mark.parametrize("caption, category", [
    # pictures of people whose names carry a hand keyword
    ("man handshake woman medium skin tone, dark skin tone", "person"),
    ("adult handshake adult", "person"),
    ("two women holding hands light skin tone", "person"),
    ("man and woman holding hands", "person"),
    ("happy person raising one hand medium-dark skin tone", "person"),
    ("female sign happy person raising one hand", "person"),
    ("ear of rice woman", "person"),  # the farmer ZWJ sequence, captioned by its parts
    # and what stays or becomes something else
    ("ear of rice", "food"),
    ("ear of maize", "food"),
    ("ear", "hand"),
    ("handshake medium skin tone", "hand"),
    ("person with folded hands", "hand"),  # the glyph is two hands
    ("person raising both hands in celebration dark skin tone", "hand"),
    ("waving hand sign", "hand"),
])
def test_people_named_after_hands_are_person(caption, category):
    assert categorize(caption) == category


def test_missing_font_says_how_to_install(tmp_path):
    with pytest.raises(FontMissing, match="apt-get install fonts-noto-color-emoji"):
        find_font(str(tmp_path / "nope.ttf"))
    from aigc.cli import main

    assert main(["data", "emoji", str(tmp_path / "out"), "--font", str(tmp_path / "nope.ttf")]) == 2


def test_tiny_build_renders_rgba_with_captions_and_counts(tmp_path, capsys):
    from aigc.cli import main

    assert main(["data", "emoji", str(tmp_path), "--limit", "48"]) == 0
    out = capsys.readouterr().out
    assert "built 48 images" in out
    rows = [json.loads(line) for line in (tmp_path / "captions.jsonl").read_text().splitlines()]
    assert len(rows) == 48 and len({r["file"] for r in rows}) == 48
    for r in rows[:5]:
        img = Image.open(tmp_path / r["file"])
        assert img.mode == "RGBA" and img.size == (64, 64)
        assert img.getchannel("A").getbbox() is not None  # something was drawn
        assert r["caption"] and r["category"] in out
    kinds = {r["caption"].split()[0] for r in rows}
    assert "flag" in kinds  # sequences (regional-indicator pairs) are in, not only code points

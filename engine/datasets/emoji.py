"""Build the emoji data set from Debian's fonts-noto-color-emoji.

Every glyph the font draws becomes one 64x64 RGBA PNG: single code points from its cmap, and
the sequences its GSUB ligature table shapes into one glyph (ZWJ sequences, skin tones,
flags, keycaps, tag flags). Pillow's raqm layout does the shaping; a render that comes out
as several glyphs side by side is skipped and counted. Captions are Unicode names.
"""
from __future__ import annotations

import json
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from engine.datasets.emoji_categories import categorize, merge_small

FONT_PATHS = (
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/noto/NotoColorEmoji.ttf",
    "/usr/local/share/fonts/NotoColorEmoji.ttf",
)
INSTALL_HINT = ("Noto Color Emoji font not found. Install it with\n"
                "    sudo apt-get install fonts-noto-color-emoji\n"
                "(Debian/Ubuntu; the font is under the SIL Open Font License), or pass --font PATH.")
FONT_SIZE = 109  # the only size of the font's CBDT bitmaps
ZWJ, VS16, KEYCAP = 0x200D, 0xFE0F, 0x20E3
SKIN_TONES = {0x1F3FB: "light skin tone", 0x1F3FC: "medium-light skin tone",
              0x1F3FD: "medium skin tone", 0x1F3FE: "medium-dark skin tone", 0x1F3FF: "dark skin tone"}
TAG_FLAGS = {"gbeng": "england", "gbsct": "scotland", "gbwls": "wales"}
# code points that are parts of sequences, not emoji of their own
COMPONENTS = {ZWJ, VS16, KEYCAP, 0xE007F, *range(0xE0020, 0xE007F), *range(0x1F1E6, 0x1F200),
              *SKIN_TONES, *range(0x20, 0x7F), 0xA9 - 0, 0xAE - 0}
COMPONENTS -= {0xA9, 0xAE}  # (c) and (r) are drawn as emoji


class FontMissing(FileNotFoundError):
    pass


def find_font(path: str | None = None) -> Path:
    for p in ([path] if path else FONT_PATHS):
        if p and Path(p).is_file():
            return Path(p)
    raise FontMissing(INSTALL_HINT)


def caption(seq: tuple[int, ...]) -> str:
    """A readable caption for a code point sequence, from unicodedata names."""
    if len(seq) == 2 and all(0x1F1E6 <= c <= 0x1F1FF for c in seq):
        return "flag " + "".join(chr(c - 0x1F1E6 + ord("a")) for c in seq)
    if seq and seq[0] == 0x1F3F4 and len(seq) > 2 and all(0xE0020 <= c <= 0xE007F for c in seq[1:]):
        tag = "".join(chr(c - 0xE0000) for c in seq[1:-1])
        return "flag " + TAG_FLAGS.get(tag, tag)
    parts: list[str] = []
    for c in seq:
        if c in (ZWJ, VS16):
            continue
        if c == KEYCAP:
            parts.insert(0, "keycap")
        elif c in SKIN_TONES:
            parts.append(SKIN_TONES[c])
        else:
            parts.append(unicodedata.name(chr(c), f"u+{c:04x}").lower())
    return " ".join(parts)


def font_sequences(font_path: Path) -> list[tuple[int, ...]]:
    """Code point sequences the font draws as one glyph, one per distinct glyph."""
    from fontTools.ttLib import TTFont

    font = TTFont(str(font_path), lazy=True)
    cmap = font.getBestCmap()
    glyph_to_cp: dict[str, int] = {}
    for cp, g in sorted(cmap.items()):
        glyph_to_cp.setdefault(g, cp)
    by_glyph: dict[str, tuple[int, ...]] = {}
    for cp, g in sorted(cmap.items()):
        if cp not in COMPONENTS and unicodedata.name(chr(cp), ""):
            by_glyph.setdefault(g, (cp,))
    ligatures: list[tuple[tuple[int, ...], str]] = []
    for lookup in font["GSUB"].table.LookupList.Lookup:
        for st in lookup.SubTable:
            st = getattr(st, "ExtSubTable", st)
            for first, ligs in getattr(st, "ligatures", {}).items():
                for lig in ligs:
                    names = (first, *lig.Component)
                    if all(n in glyph_to_cp for n in names):
                        ligatures.append((tuple(glyph_to_cp[n] for n in names), lig.LigGlyph))
    # prefer the sequence without VS16 when both exist, for the shortest caption source
    for seq, glyph in sorted(ligatures, key=lambda s: (len(s[0]), s[0])):
        by_glyph.setdefault(glyph, seq)
    return sorted(by_glyph.values(), key=lambda s: (len(s), s))


def render(font: ImageFont.FreeTypeFont, seq: tuple[int, ...], size: int = 64) -> Image.Image | None:
    """One emoji as a size x size RGBA image, or None when it did not shape to one glyph."""
    text = "".join(map(chr, seq))
    canvas = Image.new("RGBA", (FONT_SIZE * 3, FONT_SIZE * 2), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((8, 8), text, font=font, embedded_color=True)
    box = canvas.getchannel("A").getbbox()
    if box is None:
        return None
    w, h = box[2] - box[0], box[3] - box[1]
    if w > FONT_SIZE * 1.45:  # several glyphs side by side: the font did not ligate it
        return None
    side = max(w, h, FONT_SIZE)
    square = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    square.paste(canvas.crop(box), ((side - w) // 2, (side - h) // 2))
    return square.resize((size, size), Image.Resampling.LANCZOS)


@dataclass
class BuildReport:
    images: int
    skipped: int
    by_category: dict[str, int]


def build_emoji_dataset(out_dir: str | Path, font_path: str | None = None, size: int = 64,
                        limit: int | None = None) -> BuildReport:
    """Write ``out_dir/images/*.png`` and ``out_dir/captions.jsonl`` ({file, caption, category})."""
    path = find_font(font_path)
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    font = ImageFont.truetype(str(path), FONT_SIZE, layout_engine=ImageFont.Layout.RAQM)
    seqs = font_sequences(path)
    if limit is not None:  # an even spread over the set, so small builds keep every kind
        step = max(1, len(seqs) // limit)
        seqs = seqs[::step][:limit]
    rows: list[dict[str, str]] = []
    skipped = 0
    for seq in seqs:
        img = render(font, seq, size)
        if img is None:
            skipped += 1
            continue
        name = "emoji_" + "-".join(f"{c:x}" for c in seq) + ".png"
        img.save(out / "images" / name)
        cap = caption(seq)
        rows.append({"file": f"images/{name}", "caption": cap, "category": categorize(cap)})
    for row, cat in zip(rows, merge_small([r["category"] for r in rows])):
        row["category"] = cat
    with open(out / "captions.jsonl", "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts = Counter(r["category"] for r in rows)
    return BuildReport(images=len(rows), skipped=skipped, by_category=dict(counts.most_common()))

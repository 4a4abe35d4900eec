"""The visible "AI" mark (GB 45438's explicit label for images), drawn from polygons rather
than a font so it looks the same on every machine (output bytes depend only on the job) and
needs no font package."""
from __future__ import annotations

import math

from PIL import Image, ImageDraw

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

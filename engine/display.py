"""The display copy of an image job: the one picture a front posts (a grid of the outputs, or
a single output scaled up), labelled like every artifact and recorded in the provenance ledger.

Outputs are small (emoji: 64 px), so chat clients would show them as specks; the display copy
scales them with nearest-neighbour (pixels stay crisp) to ``cell`` px and lays several out in
a grid, the way Discord users expect one picture per result. The outputs keep their original
size for uses that need it (a server emoji). Each cell is an output's labelled image, so a
visible mark is already on every cell; the grid adds none of its own.

The file names who posts it (GB 45438's ``ContentPropagator`` and ``PropagateID``), so the same
job posted twice gives two files, both in the ledger as display copies of that job.
"""
from __future__ import annotations

import io
import math

from PIL import Image

from engine import labels

PAD = 4
MAX_SIDE = 1024  # px of the finished picture: well inside Discord's inline preview


def layout(count: int) -> tuple[int, int]:
    """(columns, rows) for ``count`` outputs: 1, 2 side by side, 2×2, 3×3, 4×4, ... (square-ish)."""
    cols = 1 if count == 1 else 2 if count <= 4 else math.ceil(math.sqrt(count))
    return cols, math.ceil(count / cols)


def compose(images: list[Image.Image], cell: int = 256) -> Image.Image:
    """The outputs on a transparent canvas, each scaled by a whole factor (nearest-neighbour)
    to fit ``cell`` px (smaller cells when many outputs would pass MAX_SIDE)."""
    if not images:
        raise ValueError("no images to compose")
    cols, rows = layout(len(images))
    side = max(cols, rows)
    cell = min(cell, (MAX_SIDE - PAD * (side + 1)) // side)
    pad = 0 if len(images) == 1 else PAD
    canvas = Image.new("RGBA", (cols * cell + pad * (cols + 1), rows * cell + pad * (rows + 1)), (0, 0, 0, 0))
    for i, img in enumerate(images):
        img = img.convert("RGBA")
        factor = cell // max(img.size)
        if factor >= 1:
            scaled = img.resize((img.width * factor, img.height * factor), Image.NEAREST)
        else:  # a plugin's large output: shrink it to the cell instead
            scaled = img.copy()
            scaled.thumbnail((cell, cell), Image.LANCZOS)
        x = pad + (i % cols) * (cell + pad) + (cell - scaled.width) // 2
        y = pad + (i // cols) * (cell + pad) + (cell - scaled.height) // 2
        canvas.paste(scaled, (x, y))
    return canvas


def display_png(outputs: list[bytes], meta: dict[str, str], *, cell: int = 256, compress_level: int = 1) -> bytes:
    """The labelled display copy of ``outputs`` (PNG files of one job, in index order)."""
    images = []
    for data in outputs:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            images.append(img.copy())
    return labels.encode_png(compose(images, cell), meta, visible_mark=False, compress_level=compress_level)

"""A tiny captioned image folder shared by the trainer tests."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="package")
def folder(tmp_path_factory):
    """32 synthetic RGBA images in two kinds (discs and squares) with categories."""
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(32):
        a = np.zeros((16, 16, 4), np.uint8)
        colour = rng.integers(0, 255, 3)
        yy, xx = np.mgrid[:16, :16]
        mask = ((yy - 8) ** 2 + (xx - 8) ** 2 < 30) if i % 2 else ((abs(yy - 8) < 5) & (abs(xx - 8) < 5))
        a[mask] = [*colour, 255]
        name = f"img_{i:02d}.png"
        Image.fromarray(a, "RGBA").save(root / name)
        kind = "disc" if i % 2 else "square"
        rows.append({"file": name, "caption": f"{kind} number {i}", "category": kind})
    (root / "captions.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    return root

"""Sample grids: a batch of RGBA images in [0, 1] as one PNG, composited on white."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [0, 1] -> (N, H, W, C) uint8."""
    return (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def save_grid(x: torch.Tensor, path: str | Path, nrow: int | None = None, pad: int = 2) -> Path:
    imgs = to_uint8(x)
    n, h, w, c = imgs.shape
    nrow = nrow or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / nrow))
    grid = Image.new("RGBA", (nrow * (w + pad) + pad, rows * (h + pad) + pad), (255, 255, 255, 255))
    for i, a in enumerate(imgs):
        tile = Image.fromarray(a, "RGBA" if c == 4 else "RGB").convert("RGBA")
        box = (pad + (i % nrow) * (w + pad), pad + (i // nrow) * (h + pad))
        grid.alpha_composite(tile, box)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.convert("RGB").save(path)
    return path

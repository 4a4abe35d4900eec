"""Image folders with captions, held in memory as one uint8 tensor.

Captions come from ``captions.jsonl`` ({"file", "caption", optional "category"}), else
``captions.csv`` (file,caption[,category]), else the file name ("red_heart.png" -> "red heart").
Bad files are skipped with one warning and a count, never a crash.
"""
from __future__ import annotations

import csv
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp"}


@dataclass
class ImageSet:
    images: torch.Tensor  # (N, C, S, S) uint8
    captions: list[str]
    categories: list[str] = field(default_factory=list)  # empty when the folder has none
    skipped: int = 0
    files: list[str] = field(default_factory=list)  # paths relative to the folder

    def __len__(self) -> int:
        return self.images.shape[0]

    def as_float(self, idx: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        """Batch in [-1, 1] (the generator's tanh range)."""
        return self.images[idx].to(device).float().div_(127.5).sub_(1.0)

    def draw_prompts(self, idx: torch.Tensor, g: torch.Generator) -> list[str]:
        """Each image's training prompt, drawn with ``g`` from ``prompt_variants``."""
        texts = []
        for j in idx.tolist():
            variants = prompt_variants(self.captions[j], self.categories[j] if self.categories else None)
            texts.append(variants[int(torch.randint(len(variants), (1,), generator=g))])
        return texts


def _caption_from_name(path: Path) -> str:
    return re.sub(r"[_\-\s]+", " ", path.stem).strip().lower()


def read_captions(root: Path) -> dict[str, dict[str, str]]:
    """Relative file path -> {"caption", maybe "category"} from captions.jsonl/.csv."""
    table: dict[str, dict[str, str]] = {}
    if (root / "captions.jsonl").exists():
        for line in (root / "captions.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                table[row["file"]] = {k: str(v) for k, v in row.items() if k != "file"}
    elif (root / "captions.csv").exists():
        with open(root / "captions.csv", newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                table[row["file"]] = {k: v for k, v in row.items() if k != "file" and v}
    return table


def load_image(path: Path, size: int, channels: int) -> np.ndarray:
    """(S, S, C) uint8; alpha kept for 4 channels, composited on white for 3.
    Fully transparent pixels get colour 0 so the model need not learn invisible noise."""
    with Image.open(path) as im:
        im.load()
        rgba = im.convert("RGBA")
    if rgba.size != (size, size):
        rgba = rgba.resize((size, size), Image.Resampling.LANCZOS)
    a = np.asarray(rgba).copy()
    if channels == 3:
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    a[a[..., 3] == 0] = 0
    return a


def load_image_folder(root: str | Path, size: int = 64, channels: int = 4) -> ImageSet:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"--data {root}: not a folder")
    table = read_captions(root)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())
    arrays: list[np.ndarray] = []
    captions: list[str] = []
    categories: list[str] = []
    kept: list[str] = []
    bad: list[str] = []
    for p in files:
        rel = p.relative_to(root).as_posix()
        try:
            arrays.append(load_image(p, size, channels))
        except Exception as e:  # truncated, corrupt, not an image: skip it, say so once
            bad.append(f"{rel} ({type(e).__name__})")
            continue
        kept.append(rel)
        row = table.get(rel, {})
        captions.append(row.get("caption") or _caption_from_name(p))
        if "category" in row:
            categories.append(row["category"])
    if bad:
        warnings.warn(f"skipped {len(bad)} unreadable image(s) in {root}: {', '.join(bad[:5])}"
                      + (" ..." if len(bad) > 5 else ""), stacklevel=2)
    if not arrays:
        raise ValueError(f"--data {root}: no readable images ({', '.join(sorted(EXTENSIONS))})")
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    if len(categories) != len(captions):
        categories = []
    return ImageSet(images=images, captions=captions, categories=categories, skipped=len(bad),
                    files=kept)


def prompt_variants(caption: str, category: str | None) -> list[str]:
    """Texts a sample may be conditioned on: its caption, its category word, or both, so
    short prompts such as "animal" mean something to the model."""
    if not category:
        return [caption]
    return [caption, category, f"{category} {caption}"]

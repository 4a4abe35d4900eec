"""The model card's samples: `python -m plugins.sfx.samples [--model STEM] [--data DIR] OUT`
writes OUT/samples.png (one row per kind: the served audio's spectrograms, seeds 0-3, default
variety; with --data, once per set, real clips of each kind in a second picture, real.png, for comparison)
and OUT/<kind>.ogg (seed 0 of each kind, labelled like every served file, without the cue)."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from engine import sdk
from plugins.sfx.generator import HERE, SfxGenerator
from plugins.sfx.spectro import to_spec

SEEDS = 4


def grid(rows: list[torch.Tensor]) -> Image.Image:
    """Rows of (n, SAMPLES) audio -> their spectrograms side by side (low frequencies at the bottom)."""
    lines = [torch.cat(list(to_spec(r)[:, 0].flip(1)), 1) for r in rows]
    pixels = ((torch.cat(lines, 0) + 1) * 127.5).clamp(0, 255).byte().numpy()
    return Image.fromarray(pixels // 16 * 16 + 8)  # 16 grey levels (5 dB each): half the file, same picture


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out")
    p.add_argument("--model", default=str(HERE / "gan"))
    p.add_argument("--data", action="append", help="a data set folder: also draw real clips (real.png); repeatable")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gen = SfxGenerator(Path(args.model))
    gen.load("cpu")
    rows = []
    for kind in gen.classes:
        outputs = gen.generate([sdk.Item("sfx", {"kind": kind}, seed=s, index=0) for s in range(SEEDS)])
        rows.append(torch.stack([torch.from_numpy(o.data) for o in outputs]))
        meta = {"command": "sfx", "model": "sfx-specgan", "seed": "0", "index": "0", "label": "AI-generated",
                "options": f'{{"kind": "{kind}"}}', "job": "model-card-sample"}
        (out / f"{kind}.ogg").write_bytes(sdk.encode_ogg(outputs[0].data, 16000, meta, codec="opus"))
    grid(rows).save(out / "samples.png")
    if args.data:
        from plugins.sfx import dataset

        test = dataset.join([dataset.load(d, "test") for d in args.data])
        real = [torch.from_numpy(test.floats(np.flatnonzero(test.labels == c)[:SEEDS])) for c in range(len(test.classes))]
        grid(real).save(out / "real.png")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

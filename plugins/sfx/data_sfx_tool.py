"""`aigc data sfx DIR [--per-class N] [--test-per-class M] [--seed S]`: render the synthesiser's
sound-effect classes into a data set folder (plugins/sfx/dataset.py), with a progress bar.

Clip k of class c comes from the seed derive(seed, c, k), so the same arguments give the same
bytes, and a bigger --per-class extends a smaller one."""
from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="output folder")
    parser.add_argument("--per-class", type=int, default=1000, help="training clips per class (default 1000)")
    parser.add_argument("--test-per-class", type=int, default=100, help="held-out clips per class (default 100)")
    parser.add_argument("--seed", type=int, default=0)


def clip_seed(seed: int, cls: int, k: int) -> int:
    from engine.sdk import derive_seed

    return derive_seed("sfx-data", seed, cls, k) & 0x7FFFFFFF


def build(out: Path, per_class: int, test_per_class: int, seed: int, progress: bool = True) -> None:
    import numpy as np
    from tqdm import tqdm

    from plugins.sfx import dataset
    from plugins.sfx.synth import CLASSES, random_clip

    classes = list(CLASSES)
    total = len(classes) * (per_class + test_per_class)
    clips, labels = [], []
    with tqdm(total=total, desc="sfx clips", unit="clip", disable=not progress) as bar:
        for c, kind in enumerate(classes):
            for k in range(per_class + test_per_class):
                clips.append(dataset.to_int16(random_clip(kind, clip_seed(seed, c, k))[0]))
                labels.append(c)
                bar.update(1)
    audio, lab = np.stack(clips), np.array(labels)
    test = np.array([k % (per_class + test_per_class) >= per_class for k in range(len(lab))])
    dataset.write(out, "sfx", classes, audio[~test], lab[~test], audio[test], lab[test], seed)


def run(args: argparse.Namespace) -> int:
    for name in ("per_class", "test_per_class"):
        if not 1 <= getattr(args, name) <= 100_000:
            print(f"--{name.replace('_', '-')}: must be between 1 and 100000")
            return 2
    build(Path(args.dir), args.per_class, args.test_per_class, args.seed)
    print(f"wrote {args.dir}")
    return 0

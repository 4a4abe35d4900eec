"""`aigc data names DIR`: build the names data set (see plugins/name/data.py)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="output folder (names.jsonl + manifest.json)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the sampled first/last pairs")
    parser.add_argument("--person-pairs", type=int, default=12000,
                        help="how many English full names to pair (half as many Chinese)")


def run(args: argparse.Namespace) -> int:
    from plugins.name.data import build, write

    if args.person_pairs < 1:
        print("aigc data names: --person-pairs must be at least 1")
        return 2
    manifest = write(build(args.seed, args.person_pairs), Path(args.dir))
    print(json.dumps(manifest["counts"], ensure_ascii=False))
    return 0

"""`aigc data swatch-moods DIR`: write the example plugin's moods and their hues to DIR/moods.json
(a plugin's data set builder, declared as ``sdk.Tool("data", ...)``)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="output folder")


def run(args: argparse.Namespace) -> int:
    from aigc_example_swatch import MOODS

    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "moods.json").write_text(json.dumps(MOODS, indent=1))
    print(f"wrote {len(MOODS)} moods to {out / 'moods.json'}")
    return 0

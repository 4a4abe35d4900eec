"""`aigc eval --plugin swatch [--samples N] [--json]`: how far generated colours stray from their
mood's hue (mean circular hue distance; uniformly random hues would score 0.25). A plugin's own
evaluation, declared as ``sdk.Tool("eval", "swatch", ...)``."""
from __future__ import annotations

import argparse
import colorsys
import json
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples", type=int, default=64, help="swatches per mood (1-10000)")
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    from engine import sdk
    from aigc_example_swatch import MOODS, Swatches

    if not 1 <= args.samples <= 10_000:
        print("aigc eval: --samples must be between 1 and 10000", file=sys.stderr)
        return 2
    gen, errors = Swatches(), []
    for mood, hue in MOODS.items():
        items = [sdk.Item("swatch", {"mood": mood}, seed=s, index=0) for s in range(args.samples)]
        for out in gen.generate(items):
            for colour in out.data:
                r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
                h = colorsys.rgb_to_hls(r, g, b)[0]
                errors.append(min(abs(h - hue), 1 - abs(h - hue)))
    result = {"plugin": "swatch", "samples": args.samples * len(MOODS),
              "hue_error": round(sum(errors) / len(errors), 4), "hue_error_random": 0.25}
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0

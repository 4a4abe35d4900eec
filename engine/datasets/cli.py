"""`aigc data emoji DIR`: build the built-in emoji data set; `aigc data NAME ...`: a plugin's
data set builder (``sdk.Tool`` of kind ``data``)."""
from __future__ import annotations

import argparse
import sys
import time


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    p = sub.add_parser("emoji", help="64x64 RGBA emoji from fonts-noto-color-emoji")
    p.add_argument("dir", help="output folder (images/ + captions.jsonl)")
    p.add_argument("--font", default=None, help="path to NotoColorEmoji.ttf")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--limit", type=int, default=None, help="build only about this many (for tests)")
    from engine.cli.plugin_tools import add_tool_parsers

    add_tool_parsers(sub, "data", taken={"emoji"})


def run(args: argparse.Namespace) -> int:
    from engine.cli.plugin_tools import run_tool

    code = run_tool(args)
    if code is not None:
        return code
    from engine.datasets.emoji import FontMissing, build_emoji_dataset

    t0 = time.perf_counter()
    try:
        report = build_emoji_dataset(args.dir, args.font, args.size, args.limit)
    except FontMissing as e:
        print(e, file=sys.stderr)
        return 2
    print(f"built {report.images} images in {args.dir} ({report.skipped} sequences skipped: "
          f"not shaped to one glyph) in {time.perf_counter() - t0:.1f}s")
    for cat, n in report.by_category.items():
        print(f"  {cat:<8} {n}")
    return 0

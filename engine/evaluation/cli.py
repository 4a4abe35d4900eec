"""`aigc eval --plugin emoji --model gan|vae [--samples N] [--option NAME=VALUE] --json`."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("AIGC_CACHE", Path.home() / ".cache" / "aigc"))


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plugin", default="emoji")
    parser.add_argument("--model", choices=("gan", "vae"), default="gan")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--variety", type=float, default=1.0, help="1.0: no truncation")
    parser.add_argument("--data", default=None, help="data set folder (default: built into the cache)")
    parser.add_argument("--judge", default=None, help="judge stem (default: plugins/<plugin>/judge)")
    parser.add_argument("--judge-epochs", type=int, default=10, help="when the judge must be trained")
    parser.add_argument("--weights", default=None, help="folder with model files to evaluate instead of the plugin's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                        help="a command option for every sample, e.g. quality=draft (repeatable)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from engine.evaluation.evaluate import evaluate
    from engine.training.data import load_image_folder

    t0 = time.perf_counter()
    options = {}
    for raw in args.option:
        name, sep, value = raw.partition("=")
        if not sep or not name:
            print(f"aigc eval: --option {raw!r}: expected NAME=VALUE, e.g. quality=draft", file=sys.stderr)
            return 2
        options[name] = value
    data_dir = Path(args.data) if args.data else cache_dir() / "data" / args.plugin
    if not (data_dir / "captions.jsonl").exists():
        if args.plugin != "emoji":
            print(f"aigc eval: no data set at {data_dir}; pass --data", file=sys.stderr)
            return 2
        from engine.datasets.emoji import FontMissing, build_emoji_dataset

        try:
            build_emoji_dataset(data_dir)
        except FontMissing as e:
            print(e, file=sys.stderr)
            return 2
    data = load_image_folder(data_dir)
    judge = Path(args.judge) if args.judge else Path(__file__).resolve().parents[2] / "plugins" / args.plugin / "judge"
    result = evaluate(args.plugin, args.model, data, judge, args.samples, args.variety, args.seed,
                      judge_epochs=args.judge_epochs, weights=Path(args.weights) if args.weights else None,
                      options=options)
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>20}: {value:.4f}" if isinstance(value, float) else f"{key:>20}: {value}")
    return 0

"""`aigc eval --plugin emoji --model gan|vae [--samples N] [--seeds S,S,...] [--option NAME=VALUE] --json`;
`aigc eval --plugin NAME ...` runs a plugin's own evaluation when it declares one (``sdk.Tool``)."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    return Path(os.environ.get("AIGC_CACHE", Path.home() / ".cache" / "aigc"))


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plugin", default="emoji")
    parser.add_argument("--model", choices=("gan", "vae"), default="gan")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--variety", type=float, default=None,
                        help="default: the command's own default, what users get (emoji: 0.7); 1.0: no truncation")
    parser.add_argument("--data", default=None, help="data set folder (default: built into the cache)")
    parser.add_argument("--judge", default=None, help="judge stem (default: plugins/<plugin>/judge)")
    parser.add_argument("--judge-epochs", type=int, default=12, help="when the judge must be trained")
    parser.add_argument("--weights", default=None, help="folder with model files to evaluate instead of the plugin's")
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int, default=0)
    seeds.add_argument("--seeds", default=None, metavar="S,S,...",
                        help="evaluate once per seed and report the mean of each figure, with its "
                             "sd and per-seed values (k-NN precision/recall vary by a few hundredths)")
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                        help="a command option for every sample, e.g. quality=draft (repeatable)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def configure_for_argv(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """`aigc eval --plugin NAME`: the plugin's own evaluation (``sdk.Tool`` of kind ``eval``)
    when it declares one, else the image evaluation above."""
    name = _plugin_named(argv)
    from engine.cli.plugin_tools import configure_tool, find_tool

    tool = find_tool("eval", name) if name not in (None, "emoji") else None
    if tool is None:
        configure(parser)
        return
    parser.add_argument("--plugin", required=True)
    configure_tool(parser, tool)


def _plugin_named(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--plugin" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--plugin="):
            return arg.partition("=")[2]
    return None


def run(args: argparse.Namespace) -> int:
    from engine.cli.plugin_tools import run_tool

    code = run_tool(args)
    if code is not None:
        return code
    from engine.evaluation.evaluate import evaluate, served_options
    from engine.training.data import load_image_folder

    t0 = time.perf_counter()
    options = {}
    for raw in args.option:
        name, sep, value = raw.partition("=")
        if not sep or not name:
            print(f"aigc eval: --option {raw!r}: expected NAME=VALUE, e.g. quality=draft", file=sys.stderr)
            return 2
        options[name] = value
    try:
        seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [args.seed]
    except ValueError:
        print(f"aigc eval: --seeds {args.seeds!r}: expected comma-separated integers, e.g. 0,1,2,3",
              file=sys.stderr)
        return 2
    from engine.validation import FieldError

    try:  # bad options are refused before the data set is built or a sample drawn
        served_options(args.plugin, args.model, args.variety, options)
    except FieldError as e:
        flag = "--variety" if e.field == "options.variety" and args.variety is not None else "--option"
        print(f"aigc eval: {flag} {e}", file=sys.stderr)
        return 2
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
    runs = [evaluate(args.plugin, args.model, data, judge, args.samples, args.variety, seed,
                     judge_epochs=args.judge_epochs, weights=Path(args.weights) if args.weights else None,
                     options=options) for seed in seeds]
    result = runs[0] if len(runs) == 1 else combine(runs, seeds)
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            if isinstance(value, dict) and value and all(isinstance(x, float) for x in value.values()):
                value = ", ".join(f"{c} {x:.3f}" for c, x in value.items())
            print(f"{key:>24}: {value:.4f}" if isinstance(value, float) else f"{key:>24}: {value}")
    return 0


def combine(runs: list[dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """One result from several seeds: each float figure (and each float in a dict of them,
    such as diversity_ratio per category) is the mean, with its sample sd and the per-seed
    values alongside; everything else is taken from the first run."""
    result = dict(runs[0])
    floats = [k for k, v in runs[0].items() if isinstance(v, float)]
    tables = [k for k, v in runs[0].items()
              if isinstance(v, dict) and v and all(isinstance(x, float) for x in v.values())]
    result.update({k: statistics.fmean(r[k] for r in runs) for k in floats})
    result.update({k: {c: statistics.fmean(r[k][c] for r in runs) for c in runs[0][k]} for k in tables})
    result["seeds"] = seeds
    result["sd"] = {k: statistics.stdev(r[k] for r in runs) for k in floats}
    result["per_seed"] = {k: [r[k] for r in runs] for k in floats}
    result["per_seed"].update({k: {c: [r[k][c] for r in runs] for c in runs[0][k]} for k in tables})
    return result

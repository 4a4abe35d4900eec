"""`aigc train sfx-judge --data DIR --out STEM [--minutes M] [--steps N]`: train the judge
(plugins/sfx/judge.py) the evaluation measures with, and print its held-out accuracy."""
from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="a folder from `aigc data sfx|digits`")
    parser.add_argument("--out", required=True, help="writes STEM.safetensors + STEM.json")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)


def run(args: argparse.Namespace) -> int:
    if args.steps < 1 or args.minutes <= 0:
        print("--steps and --minutes: must be positive")
        return 2
    import torch

    torch.set_num_threads(max(1, args.threads))
    from plugins.sfx import dataset
    from plugins.sfx.judge import judge_outputs, save_judge, train_judge

    data, test = dataset.load(args.data), dataset.load(args.data, "test")
    judge, info = train_judge(data, args.minutes, args.steps, seed=args.seed)
    probs, _ = judge_outputs(judge, torch.from_numpy(test.floats()))
    acc = float((probs.argmax(1).numpy() == test.labels).mean())
    save_judge(judge, args.out, {"classes": list(data.classes), "kind": data.kind,
                                 "test_accuracy": round(acc, 4), **info})
    print(f"judge: held-out accuracy {acc:.3f} ({len(test.labels)} clips); wrote {args.out}.safetensors")
    return 0

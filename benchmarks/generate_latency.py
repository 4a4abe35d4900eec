"""Latency of one /emoji image as served, quality:draft and quality:best, beside the raw
forward pass of the generator it runs (the same weights, one latent, no padding, no
encoding), measured in one run, in-process (no engine, no HTTP).

The three are timed in alternating rounds, so load from other processes hits all alike;
each figure is the median (p50) over rounds of the per-image milliseconds.

    python benchmarks/generate_latency.py [--rounds 40] [--threads 1] [--prompt "grinning face"]

prints one JSON line: {"draft_p50_ms", "best_p50_ms", "raw_forward_p50_ms", ...}.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from engine import sdk  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (on a loaded 2-core machine, 2 threads measured ~15x slower than 1)")
    ap.add_argument("--prompt", default="grinning face")
    ap.add_argument("--weights", default=None, help="folder with the model files (default: the plugin's)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from plugins.emoji.generator import CANDIDATES, HERE, EmojiGenerator

    gen = EmojiGenerator(Path(args.weights) if args.weights else HERE)
    gen.load("cpu")
    module, config = gen.models["gan"]
    tok = gen.tokenizers["gan"]

    def served(quality: str, i: int) -> None:
        gen.generate([sdk.Item(command="emoji", options={"prompt": args.prompt, "quality": quality}, seed=i,
                               index=0)])

    def raw(i: int) -> None:
        with torch.inference_mode():
            z = torch.randn(1, int(config["nz"]), generator=torch.Generator().manual_seed(i))
            module(z, tok.batch([args.prompt]) if tok is not None else None)

    paths = {"draft": lambda i: served("draft", i), "best": lambda i: served("best", i), "raw_forward": raw}
    for fn in paths.values():  # warm-up: first calls pick kernels and fill caches
        for i in range(3):
            fn(i)
    times: dict[str, list[float]] = {k: [] for k in paths}
    for r in range(args.rounds):
        for name, fn in paths.items():
            t0 = time.perf_counter()
            fn(1000 + r)
            times[name].append((time.perf_counter() - t0) * 1000)
    p50 = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({"draft_p50_ms": round(p50["draft"], 2), "best_p50_ms": round(p50["best"], 2),
                      "raw_forward_p50_ms": round(p50["raw_forward"], 2),
                      "best_candidates": CANDIDATES if gen.critic is not None else 1,
                      "critic": gen.critic is not None, "gan_sha256": gen.model_info()["sha256"][:12],
                      "rounds": args.rounds, "threads": args.threads, "prompt": args.prompt}))


if __name__ == "__main__":
    main()

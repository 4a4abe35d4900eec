"""Content Credentials: what signing costs per file, by kind, against encoding the same file.

Measures in one run, with the engine's own Signer (a local CA made in a temporary directory):
  encode_ms            PNG encode + labels of one 64-px output (the baseline: work every output does)
  sign_output_ms       signing that output (c2pa.created, the AIGC assertion)
  sign_followup_ms     signing a variation that embeds its parent (one inputTo ingredient)
  sign_display_ms      signing a display copy of 1 / 4 / 16 outputs (parentOf / componentOf each)
  added_bytes_*        what the manifest adds to each file
p50 of N tries each. Prints one JSON line. Usage: python benchmarks/c2pa_signing.py [--tries 50]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._harness import percentile  # noqa: E402


def p50_ms(fn, tries: int) -> float:
    times = []
    for _ in range(tries):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(percentile(times, 0.5) * 1000, 3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tries", type=int, default=50)
    args = ap.parse_args()
    from engine.display import display_png
    from engine.labels import encode_png
    from engine.provenance.credentials import Ingredient, Signer, local_keys

    meta = {"label": "AI-generated", "producer": "AIGC Bot", "job": "bench", "index": "0", "command": "emoji",
            "model": "emoji-dcgan", "model_version": "1"}
    rng = np.random.default_rng(0)
    pixels = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(16)]
    with tempfile.TemporaryDirectory() as tmp:
        signer = Signer(local_keys(Path(tmp)))
        labelled = [encode_png(p, {**meta, "index": str(k)}) for k, p in enumerate(pixels)]
        outputs = [signer.sign(d, "image/png", {**meta, "index": str(k)}) for k, d in enumerate(labelled)]
        out: dict[str, object] = {}
        steps = tqdm(total=6, desc="c2pa signing", file=sys.stderr)
        out["encode_ms"] = p50_ms(lambda: encode_png(pixels[0], meta), args.tries)
        steps.update()
        out["sign_output_ms"] = p50_ms(lambda: signer.sign(labelled[0], "image/png", meta), args.tries)
        out["added_bytes_output"] = len(outputs[0]) - len(labelled[0])
        steps.update()
        parent = [Ingredient("output 0 of job parent", "inputTo", data=outputs[0])]
        out["sign_followup_ms"] = p50_ms(lambda: signer.sign(labelled[1], "image/png", meta, parent, "variations"),
                                         args.tries)
        out["added_bytes_followup"] = len(signer.sign(labelled[1], "image/png", meta, parent)) - len(labelled[1])
        steps.update()
        for n in (1, 4, 16):
            dmeta = {**meta, "index": "display", "rendition": "display copy"}
            grid = display_png(outputs[:n], dmeta)
            rel = "parentOf" if n == 1 else "componentOf"
            ings = [Ingredient(f"output {k} of job bench", rel, data=o) for k, o in enumerate(outputs[:n])]
            out[f"sign_display_{n}_ms"] = p50_ms(lambda: signer.sign(grid, "image/png", dmeta, ings),
                                                 max(5, args.tries // n))
            out[f"added_bytes_display_{n}"] = len(signer.sign(grid, "image/png", dmeta, ings)) - len(grid)
            steps.update()
        steps.close()
    out.update(tries=args.tries, cpu_count=os.cpu_count(), load_average=round(os.getloadavg()[0], 2))
    print(json.dumps(out))


if __name__ == "__main__":
    main()

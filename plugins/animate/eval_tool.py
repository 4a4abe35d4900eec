"""`aigc eval --plugin animate [--clips N] [--frames F] [--json]`: what /animate's clips are worth,
measured in the emoji judge's feature space (plugins/emoji/judge.*).

* temporal smoothness: mean feature distance between consecutive frames, ÷ the mean distance
  between random pairs of stills (different prompts and seeds); lower is smoother. Two trivially
  bad clips are scored beside it, so the figure is seen to separate them: the same frames
  shuffled, and clips of independent stills (no motion at all, just cuts): both must score worse.
* loop closure: distance last → first ÷ mean consecutive distance (≤ 1.5 for a seamless loop;
  a morph, which does not loop, is scored too as the contrast), and the same step ÷ the two
  steps beside it (a seam is a jump its neighbours lack; ~1 for a seamless loop).
* endpoint fidelity: the share of morphs whose first and last frames are, pixel for pixel, the
  stills /emoji makes for the same prompts and seeds (its own generator, not this plugin's path).
* sizes: each format's bytes for the longest clip (48 frames) against Discord's limits.
* time per frame: rendering a clip (batched) ÷ its frames, beside one /emoji still (best and
  draft quality), in this run.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time
from typing import Any

PROMPTS = ["red heart", "cat face", "grinning face", "fire", "star", "pizza", "rocket", "sun", "frog face",
           "ghost", "snowflake", "crying face"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clips", type=int, default=12, help="clips per motion (1-200)")
    parser.add_argument("--frames", type=int, default=24, help="frames per clip (8-48)")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1-64)")
    parser.add_argument("--json", action="store_true", help="one JSON line")


def _features(judge: Any, frames: list) -> Any:
    import numpy as np
    import torch

    x = torch.from_numpy(np.stack([np.asarray(f.convert("RGBA")) for f in frames])).permute(0, 3, 1, 2)
    with torch.no_grad():
        return judge.features(x.float() / 255.0).double()


def _consecutive(f: Any) -> float:
    return float((f[1:] - f[:-1]).norm(dim=1).mean())


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from engine import sdk
    from plugins.animate.encode import ATTACHMENT_LIMIT, EMOJI_LIMIT, encode_clip
    from plugins.animate.generator import AnimateGenerator, endpoints
    from plugins.emoji.latents import JUDGE

    for name, value, lo, hi in (("--clips", args.clips, 1, 200), ("--frames", args.frames, 8, 48),
                                ("--threads", args.threads, 1, 64)):
        if not lo <= value <= hi:
            print(f"aigc eval: {name} must be between {lo} and {hi}, got {value}", file=sys.stderr)
            return 2
    torch.set_num_threads(args.threads)
    judge, _ = sdk.load_judge(JUDGE)
    gen = AnimateGenerator()
    gen.load("cpu")

    def clip_items(motion: str) -> list[sdk.Item]:
        out = []
        for k in range(args.clips):
            o: dict[str, Any] = {"prompt": PROMPTS[k % len(PROMPTS)], "motion": motion, "frames": args.frames}
            if motion == "morph":
                o["to"] = PROMPTS[(k + 5) % len(PROMPTS)]
            out.append(sdk.Item(command="animate", options=o, seed=args.seed + k, index=0))
        return out

    result: dict[str, Any] = {"plugin": "animate", "clips_per_motion": args.clips, "frames": args.frames,
                              "judge": "plugins/emoji/judge", "model": gen.model_info()["sha256"][:12]}
    g = torch.Generator().manual_seed(args.seed)
    # random pairs of stills: the scale consecutive frames are measured against
    stills = gen.model.stills([s for it in clip_items("morph") for s in endpoints(it)])
    sf = _features(judge, stills)
    i, j = torch.randint(len(sf), (2, 512), generator=g)
    keep = i != j
    random_pair = float((sf[i[keep]] - sf[j[keep]]).norm(dim=1).mean())
    result["random_pair_distance"] = round(random_pair, 4)

    fidelity, per_motion, timing = [], {}, {}
    for motion in tqdm(("morph", "loop", "bounce", "spin", "pulse"), desc="motions", file=sys.stderr):
        items = clip_items(motion)
        start = time.perf_counter()
        outs = gen.generate(items)
        timing[motion] = (time.perf_counter() - start) / (len(items) * args.frames)
        cons, shuffled, closure, seam = [], [], [], []
        for out in outs:
            frames = out.data.raw if motion in ("morph", "loop") else out.data.frames
            f = _features(judge, [im.resize((64, 64)) if im.size != (64, 64) else im for im in frames])
            cons.append(_consecutive(f))
            shuffled.append(_consecutive(f[torch.randperm(len(f), generator=g)]))
            closure.append(float((f[-1] - f[0]).norm()) / max(cons[-1], 1e-12))
            # the closing step against the steps beside it: a seam is a jump its neighbours lack,
            # while a motion that is fast at the loop point (a bounce's landing) is not one
            beside = (float((f[1] - f[0]).norm()) + float((f[-1] - f[-2]).norm())) / 2
            seam.append(float((f[-1] - f[0]).norm()) / max(beside, 1e-12))
        mean = sum(cons) / len(cons)
        per_motion[motion] = {"consecutive_distance": round(mean, 4), "smoothness": round(mean / random_pair, 4),
                              "smoothness_shuffled": round(sum(shuffled) / len(shuffled) / random_pair, 4),
                              "loop_closure": round(sum(closure) / len(closure), 3),
                              "loop_closure_max": round(max(closure), 3),
                              "seam_vs_neighbour_steps": round(sum(seam) / len(seam), 3)}
        if motion == "morph":
            for it, out in zip(items, outs):
                a, b = gen.model.stills(list(endpoints(it)))
                fidelity.append(out.data.raw[0].tobytes() == a.tobytes() and out.data.raw[-1].tobytes() == b.tobytes())
    # clips of independent stills: every frame a new prompt/seed (cuts, no motion)
    cuts = [_consecutive(sf[torch.randperm(len(sf), generator=g)[:args.frames]]) for _ in range(args.clips)]
    result["independent_stills_smoothness"] = round(sum(cuts) / len(cuts) / random_pair, 4)
    result["motions"] = per_motion
    result["morph_endpoint_fidelity"] = round(sum(fidelity) / len(fidelity), 4)

    # sizes at the longest clip, against Discord's limits
    sizes = {}
    for fmt in ("webp", "gif", "mp4"):
        it = sdk.Item(command="animate", options={"prompt": "red heart", "to": "cat face", "frames": 48, "fps": 12,
                                                  "format": fmt}, seed=args.seed, index=0)
        out = gen.generate([it])[0]
        start = time.perf_counter()
        data = encode_clip(out, sdk.EncodeContext(meta={"job": "eval", "index": "0"}))
        enc_ms = (time.perf_counter() - start) * 1000 / 48
        limit = EMOJI_LIMIT if fmt == "gif" else ATTACHMENT_LIMIT
        frames_kept = _frame_count(data, fmt)
        sizes[fmt] = {"bytes": len(data), "limit": limit, "within": len(data) <= limit, "frames": frames_kept,
                      "encode_ms_per_frame": round(enc_ms, 2)}
    result["sizes_48_frames"] = sizes

    # time per frame beside the still path (one /emoji output, quality best: the critic), same process, same threads
    from plugins.emoji.latents import Still

    gen.model.stills([Still("warm up", 0)])
    start = time.perf_counter()
    n = 8
    for k in range(n):
        gen.model.stills([Still(PROMPTS[k % len(PROMPTS)], 1000 + k, quality="best")])  # not the default since #21
    still_ms = (time.perf_counter() - start) * 1000 / n
    start = time.perf_counter()
    for k in range(n):
        gen.model.stills([Still(PROMPTS[k % len(PROMPTS)], 1000 + k, quality="draft")])
    draft_ms = (time.perf_counter() - start) * 1000 / n
    result["render_ms_per_frame"] = {m: round(t * 1000, 2) for m, t in timing.items()}
    result["still_ms_per_image"] = round(still_ms, 2)  # /emoji quality best: 8 drafts + critic
    result["still_draft_ms_per_image"] = round(draft_ms, 2)
    result["threads"] = args.threads
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))
    return 0


def _frame_count(data: bytes, fmt: str) -> int:
    if fmt == "mp4":
        import av

        with av.open(io.BytesIO(data)) as c:
            return sum(1 for _ in c.decode(video=0))
    from PIL import Image

    return Image.open(io.BytesIO(data)).n_frames

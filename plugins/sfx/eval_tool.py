"""`aigc eval --plugin sfx --dataset sfx|digits --data DIR [--per-class N] [--json]`: how the
/sfx generator compares with real clips, in the features of a judge trained locally on the set
(judge.py; `aigc train sfx-judge`), as the WaveGAN paper measured SC09.

Samples are made the way users get them (SfxGenerator, default variety, seeds 0..N-1 per class,
Griffin-Lim decode). The held-out split of the data set is the real side; FD is always against
the same subsample of the training split (--train-clips), with every set the same size as the
held-out split, so the figures compare.

References a generator has to beat: ``fd_floor`` (held-out real clips), ``fd_reference`` (the
held-out clips low-passed at 2 kHz, with white noise 20 dB below them, and passed through the
model's own spectrogram + Griffin-Lim decode: the best a perfect spectrogram generator could
score); ``inception_score_reference`` holds the same three sets' Inception scores. ``sanity`` holds the same figures for white noise and for a collapsed generator (one real
clip per class, repeated): a metric that does not rank them below real data is not measuring.
``diversity_ratio`` is the issue's figure (the ratio of the averages over kinds);
``diversity_ratio_capped`` averages the per-kind ratios capped at 1, so that one kind gone to noise
(more varied than real) cannot hide a collapsed one; ``diversity_ratio_per_class`` lists them.
``cond_acc_per_class`` is the judge's accuracy per kind (its mean is ``cond_acc_balanced``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=["sfx", "digits"], default="sfx")
    parser.add_argument("--data", help="the data set folder (`aigc data sfx|digits DIR`)")
    parser.add_argument("--model", help="generator stem (default plugins/sfx/gan, the served one)")
    parser.add_argument("--judge", help="judge stem (default plugins/sfx/judge_DATASET)")
    parser.add_argument("--per-class", type=int, default=100, help="generated clips per class (1-1000)")
    parser.add_argument("--variety", type=float, default=None, help="the generator's variety (default: the command's)")
    parser.add_argument("--train-clips", type=int, default=3000,
                        help="training clips FD and novelty compare with (a fixed subsample)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")


def lowpass(audio, cutoff_hz: float):
    import torch

    spec = torch.fft.rfft(audio, dim=1)
    freqs = torch.fft.rfftfreq(audio.shape[1], 1 / 16000)
    return torch.fft.irfft(spec * (freqs <= cutoff_hz), n=audio.shape[1], dim=1)


def with_noise(audio, snr_db: float, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    rms = audio.pow(2).mean(1, keepdim=True).sqrt()
    return (audio + torch.randn(audio.shape, generator=g) * rms * 10 ** (-snr_db / 20)).clamp(-1, 1)


def figures(judge, audio, wanted, train_feats, classes: int) -> dict:
    from plugins.sfx import metrics
    from plugins.sfx.judge import judge_outputs

    probs, feats = judge_outputs(judge, audio)
    # per class once, the means from them
    per_class = metrics.diversity_per_class(feats, wanted)
    acc_per_class = metrics.cond_accuracy_per_class(probs, wanted, classes)
    return {"is": metrics.inception_score(probs), "fd": metrics.frechet_distance(feats, train_feats),
            "cond_acc": metrics.average(acc_per_class),
            "cond_acc_per_class": acc_per_class,
            "diversity": metrics.average(per_class),
            "diversity_per_class": per_class,
            "nearest": metrics.nearest_distance(feats, train_feats)}


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.per_class <= 1000:
        print("aigc eval: --per-class must be between 1 and 1000", file=sys.stderr)
        return 2
    if args.data is None:
        print(f"aigc eval: --data is required (a folder from `aigc data {args.dataset} DIR`)", file=sys.stderr)
        return 2
    import numpy as np
    import torch

    torch.set_num_threads(max(1, args.threads))
    from engine import sdk
    from plugins.sfx import dataset, metrics
    from plugins.sfx.generator import SfxGenerator
    from plugins.sfx.judge import judge_outputs, load_judge
    from plugins.sfx.spectro import to_audio, to_spec

    try:
        train, test = dataset.load(args.data), dataset.load(args.data, "test")
    except (ValueError, OSError) as e:
        print(f"aigc eval: {e}", file=sys.stderr)
        return 2
    if train.kind != args.dataset:
        print(f"aigc eval: --data holds the {train.kind!r} set, not {args.dataset!r}", file=sys.stderr)
        return 2
    judge_stem = Path(args.judge) if args.judge else HERE / f"judge_{args.dataset}"
    model_stem = Path(args.model) if args.model else HERE / "gan"
    judge, judge_meta = load_judge(judge_stem)
    k = len(train.classes)

    # the real side: a fixed training subsample, for FD and for novelty's nearest neighbours
    rng = np.random.default_rng(0)
    sub = np.sort(rng.choice(len(train.labels), min(len(train.labels), args.train_clips), replace=False))
    _, train_feats = judge_outputs(judge, torch.from_numpy(train.floats(sub)))
    real = torch.from_numpy(test.floats())
    wanted_real = torch.from_numpy(test.labels)
    res_real = figures(judge, real, wanted_real, train_feats, k)
    refs = {"lowpass_2khz": lowpass(real, 2000.0), "noise_20db": with_noise(real, 20.0),
            "griffin_lim": torch.cat([to_audio(to_spec(real[s:s + 64])) for s in range(0, len(real), 64)])}
    ref_figures = {name: figures(judge, a, wanted_real, train_feats, k) for name, a in refs.items()}
    fd_reference = {name: round(f["fd"], 3) for name, f in ref_figures.items()}
    # the ceiling of a spectrogram generator: real clips through our spectrogram + Griffin-Lim
    is_reference = {name: round(f["is"], 3) for name, f in ref_figures.items()}
    # trivially bad "generators": white noise, and one real clip per class repeated
    noise = torch.randn(len(real), real.shape[1], generator=torch.Generator().manual_seed(1)).mul(0.3).clamp(-1, 1)
    first = {int(c): int(np.flatnonzero(test.labels == c)[0]) for c in np.unique(test.labels)}
    collapsed = real[[first[int(c)] for c in test.labels]]
    sanity = {}
    for name, a in (("noise", noise), ("collapsed", collapsed)):
        f = figures(judge, a, wanted_real, train_feats, k)
        per = f.pop("diversity_per_class")
        f.pop("cond_acc_per_class")
        sanity[name] = {**{key: round(v, 3) for key, v in f.items()},
                        "diversity_ratio_capped": round(metrics.capped_ratio(per, res_real["diversity_per_class"]), 3)}

    result: dict = {"plugin": "sfx", "dataset": args.dataset, "classes": list(train.classes),
                    "judge": {"stem": str(judge_stem), "test_accuracy": judge_meta.get("test_accuracy")},
                    "real_clips": len(real), "chance": round(1 / k, 4),
                    "inception_score_real": round(res_real["is"], 3), "fd_floor": round(res_real["fd"], 3),
                    "fd_reference": fd_reference, "inception_score_reference": is_reference, "sanity": sanity}
    if not Path(f"{model_stem}.safetensors").exists():
        result["model"] = None
        result["missing"] = f"no generator weights at {model_stem}.safetensors"
    else:
        gen = SfxGenerator(model_stem)
        gen.load("cpu")
        # a generator trained on several sets names this set's classes with its prefix ("digit-seven")
        kinds = [joined if (joined := dataset.class_name(train.kind, c)) in gen.classes else c
                 for c in train.classes]
        if not set(kinds) <= set(gen.classes):
            print(f"aigc eval: {model_stem} was trained on {gen.classes}, not on this set's classes", file=sys.stderr)
            return 2
        opts = {} if args.variety is None else {"variety": args.variety}
        items = [sdk.Item("sfx", {"kind": c, **opts}, seed=s, index=0)
                 for c in kinds for s in range(args.per_class)]
        clips = []
        for s in range(0, len(items), 16):
            clips += [torch.from_numpy(o.data) for o in gen.generate(items[s:s + 16])]
        wanted = torch.tensor([kinds.index(it.options["kind"]) for it in items])
        res = figures(judge, torch.stack(clips), wanted, train_feats, k)
        result.update({
            "model": {"stem": str(model_stem), **gen.model_info()}, "kinds": kinds, "samples": len(items),
            "variety": args.variety if args.variety is not None else 0.7,
            "inception_score": round(res["is"], 3),
            "inception_score_ratio": round(res["is"] / res_real["is"], 3),
            "cond_acc_balanced": round(res["cond_acc"], 4),
            "cond_acc_real": round(res_real["cond_acc"], 4),
            # per kind: how often the judge hears the kind asked for (its mean is cond_acc_balanced)
            "cond_acc_per_class": {kinds[c]: round(v, 3) for c, v in res["cond_acc_per_class"].items()},
            "fd_model": round(res["fd"], 3),
            "diversity_ratio": round(res["diversity"] / res_real["diversity"], 3),
            # per kind, and their mean capped at 1 per kind: an over-varied kind (one that came
            # apart into noise) cannot hide a collapsed one, as it can in diversity_ratio
            "diversity_ratio_per_class": {kinds[c]: round(v / res_real["diversity_per_class"][c], 3)
                                          for c, v in res["diversity_per_class"].items()
                                          if res_real["diversity_per_class"].get(c)},
            "diversity_ratio_capped": round(metrics.capped_ratio(res["diversity_per_class"],
                                                                 res_real["diversity_per_class"]), 3),
            "novelty": round(res["nearest"] / res_real["nearest"], 3),
        })
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0

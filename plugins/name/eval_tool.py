"""`aigc eval --plugin name [--model vae] [--data DIR] [--seeds 8] [--json]`: the name models'
figures (see plugins/name/evaluation.py). Without --data the data set is built in memory from
Faker's lists, exactly as `aigc data names` would."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=["vae", "gan"], default="vae", help="which model makes the names")
    parser.add_argument("--stem", help="that model's weights (default plugins/name/vae or plugins/name/gan)")
    parser.add_argument("--data", help="folder made by `aigc data names` (default: build it in memory)")
    parser.add_argument("--seeds", type=int, default=8, help="batches of 25 per style (default 8)")
    parser.add_argument("--variety", type=float, default=None, help="the command's variety option (default: its default)")
    parser.add_argument("--retrain-judge", action="store_true", help="train the style classifier again")
    parser.add_argument("--checks", action="store_true", help="also score trivially bad outputs (random, collapsed, copies)")
    parser.add_argument("--iw-samples", type=int, default=256,
                        help="importance samples of the VAE's NLL bound (IWAE; 1 = a one-sample ELBO)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")


def run(args: argparse.Namespace) -> int:
    import torch

    from plugins.name import evaluation as ev
    from plugins.name.data import build, load
    from plugins.name.generator import HERE, NameGenerator
    from plugins.name.training import evaluate_vae, importance_weighted_nll

    if args.iw_samples < 1 or args.seeds < 1 or (args.variety is not None and not 0 <= args.variety <= 1):
        print("aigc eval --plugin name: --seeds and --iw-samples must be at least 1 and --variety within [0, 1]",
              file=sys.stderr)
        return 2
    torch.set_num_threads(max(1, args.threads))
    examples = load(args.data) if args.data else build()
    splits = ev.Splits(*[[e for e in examples if e.split == s] for s in ("train", "valid", "test")])
    judge = None if args.retrain_judge else ev.load_judge()
    if judge is None:
        print("training the style classifier (judge) ...", file=sys.stderr)
        judge = ev.fit_judge(splits)
    stem = Path(args.stem) if args.stem else HERE / args.model
    gen = NameGenerator(stem, None) if args.model == "vae" else NameGenerator(HERE / "vae", stem)
    gen.load("cpu")
    assert gen.model is not None and gen.vocab is not None
    if args.model == "gan" and gen.gan is None:
        print(f"aigc eval --plugin name: no GAN weights at {stem}.safetensors", file=sys.stderr)
        return 2
    step = gen.meta.get("step") if args.model == "vae" else gen.gan[2].get("step")  # type: ignore[index]
    out: dict[str, object] = {"model": args.model, "weights": str(stem), "step": step}
    # the GAN has no likelihood: its nll is null (the VAE's is an upper bound on the true NLL)
    out["nll"] = None
    if args.model == "vae":
        out["nll"] = importance_weighted_nll(gen.model, gen.vocab, splits.test, k=args.iw_samples)
        out["iw_samples"] = args.iw_samples
        elbo = evaluate_vae(gen.model, gen.vocab, splits.test)
        out.update(nll_elbo=elbo["nll_per_char"], kl_per_name=elbo["kl_per_name"])
    base = ev.best_ngram(splits, len(gen.vocab))
    out.update(nll_ngram=base["nll"], ngram_order=base["order"], nll_ngram_by_order=base["by_order"])
    options: dict[str, object] = {} if args.variety is None else {"variety": args.variety}
    if args.model == "gan":
        options["model"] = "gan"
    out.update(ev.figures(ev.generator_sampler(gen, options), judge, splits, args.seeds))
    out.update(ev.real_figures(judge, splits, args.seeds))
    if args.checks:
        out["checks"] = {}
        for name, sampler in ev.trivial_samplers(splits).items():
            f = ev.figures(sampler, judge, splits, args.seeds)
            f.pop("per_style")
            out["checks"][name] = {k: round(v, 4) for k, v in f.items()}  # type: ignore[index]
    out["targets"] = {
        "nll_below_ngram": out["nll"] is not None and out["nll"] < out["nll_ngram"],  # type: ignore[operator]
        "novelty_0.7": out["novelty"] >= 0.7,  # type: ignore[operator]
        "validity_0.7_of_real": out["validity"] >= 0.7 * out["validity_real"],  # type: ignore[operator]
    }
    out = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        for k, v in out.items():
            print(f"{k:>18}: {v}")
    return 0

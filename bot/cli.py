"""`aigc bot`: run the Discord bot (against the local emulator when DISCORD_TOKEN is unset)."""
from __future__ import annotations

import argparse
import asyncio
import sys

from bot.config import ConfigError, load_bot_settings


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--emulator-port", type=int, default=None,
                   help="port of the local Discord emulator when there is no token "
                        "(default $AIGC_EMULATOR_PORT or 8765)")


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_bot_settings()
    except ConfigError as e:
        print(f"aigc: invalid configuration:\n{e}", file=sys.stderr)
        return 2
    from aigc_common.logs import setup_logging

    setup_logging("text")
    return asyncio.run(_serve(settings, args.emulator_port))


async def _serve(settings, emulator_port: int | None) -> int:
    from bot.runner import start_bot

    running = await start_bot(settings, emulator_port=emulator_port)
    if running.emulator is not None:
        print(f"No DISCORD_TOKEN: running against the local Discord emulator.\n"
              f"  Playground: {running.emulator.playground_url}", flush=True)
    try:
        await running.task
    finally:
        await running.stop()
    return 0

"""`aigc up`: the engine (a subprocess with a fresh shared secret) and the bot together.

With no DISCORD_TOKEN the bot runs against the local Discord emulator and its playground page
is printed: open it to use the product with no Discord account. Ctrl-C stops both cleanly.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time

import aiohttp


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine-port", type=int, default=int(os.environ.get("AIGC_ENGINE_PORT", 8700)))
    p.add_argument("--emulator-port", type=int, default=None,
                   help="the local Discord emulator's port (default $AIGC_EMULATOR_PORT or 8765)")
    p.add_argument("--exit-after", type=float, default=0,
                   help="stop after this many seconds once ready (for scripted checks)")


def run(args: argparse.Namespace) -> int:
    from aigc_common.logs import setup_logging

    setup_logging("text")
    try:
        return asyncio.run(_up(args))
    except KeyboardInterrupt:
        return 0


async def wait_engine_ready(url: str, proc: subprocess.Popen | None = None, timeout: float = 180) -> None:
    """Poll the engine's /readyz until it answers 200 (or the process dies, or time runs out)."""
    end = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < end:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"the engine exited with code {proc.returncode}")
            try:
                async with s.get(f"{url}/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError("the engine did not become ready")


async def _up(args: argparse.Namespace) -> int:
    from bot.config import ConfigError, load_bot_settings
    from bot.runner import start_bot

    token = os.environ.get("AIGC_ENGINE_TOKEN") or secrets.token_urlsafe(32)
    engine_url = f"http://127.0.0.1:{args.engine_port}"
    env = {**os.environ, "AIGC_ENGINE_TOKEN": token, "AIGC_ENGINE_PORT": str(args.engine_port),
           "AIGC_ENGINE_HOST": "127.0.0.1", "AIGC_LOG_FORMAT": os.environ.get("AIGC_LOG_FORMAT", "text")}
    print(f"aigc up: starting the engine on {engine_url}", file=sys.stderr, flush=True)
    proc = subprocess.Popen([sys.executable, "-m", "aigc.cli", "engine"], env=env)
    running = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await wait_engine_ready(engine_url, proc)
        try:
            settings = load_bot_settings(engine_url=[engine_url], engine_token=token)
        except ConfigError as e:
            print(f"aigc: invalid configuration:\n{e}", file=sys.stderr)
            return 2
        running = await start_bot(settings, emulator_port=args.emulator_port)
        print("aigc up: engine and bot are ready.", flush=True)
        if running.emulator is not None:
            print(f"  No DISCORD_TOKEN: using the local Discord emulator.\n"
                  f"  Open the playground: {running.emulator.playground_url}\n"
                  f"  Try /emoji prompt: red heart — Ctrl-C stops everything.", flush=True)
        if args.exit_after:
            await asyncio.wait({asyncio.ensure_future(stop.wait()), running.task}, timeout=args.exit_after,
                               return_when=asyncio.FIRST_COMPLETED)
        else:
            await asyncio.wait({asyncio.ensure_future(stop.wait()), running.task},
                               return_when=asyncio.FIRST_COMPLETED)
        return 0
    finally:
        print("aigc up: stopping", file=sys.stderr, flush=True)
        if running is not None:
            await running.stop()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()

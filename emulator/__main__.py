"""``python -m emulator [--port 8765]``: run the emulator with a demo guild."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os

from .config import PRIVILEGED_INTENTS, EmulatorConfig
from .server import serve


def _env_port(parser: argparse.ArgumentParser) -> int:
    raw = os.environ.get("AIGC_EMULATOR_PORT", "8765")
    if not raw.isdigit() or int(raw) > 65535:
        parser.error(f"AIGC_EMULATOR_PORT: must be a port number 0-65535, got {raw!r}")
    return int(raw)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("AIGC_EMULATOR_HOST", "127.0.0.1"),
                        help="address to bind (default $AIGC_EMULATOR_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=_env_port(parser),
                        help="port to bind (default $AIGC_EMULATOR_PORT or 8765)")
    parser.add_argument("--token", default=EmulatorConfig.token)
    parser.add_argument("--no-zlib", action="store_true", help="never compress gateway frames")
    parser.add_argument("--privileged-intents", action="store_true", help="allow members/presence/content intents")
    parser.add_argument("--no-demo", action="store_true", help="start with no guild")
    args = parser.parse_args(argv)
    config = EmulatorConfig(
        host=args.host, port=args.port, token=args.token, allow_zlib_stream=not args.no_zlib,
        allowed_privileged_intents=PRIVILEGED_INTENTS if args.privileged_intents else 0,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(config, demo=not args.no_demo))


if __name__ == "__main__":
    main()

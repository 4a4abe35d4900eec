"""`aigc engine`: serve the HTTP API until stopped."""
from __future__ import annotations

import argparse
import secrets
import sys

from aiohttp import web

from engine.cli import settings_or_exit
from aigc_common.logs import setup_logging


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="bind address (default AIGC_ENGINE_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default AIGC_ENGINE_PORT or 8700)")
    p.add_argument("--queue", help="scale out: redis://HOST:6379/0 (default AIGC_QUEUE_URL; unset: in-process)")
    p.add_argument("--database", help="with --queue: postgresql://... (default AIGC_DATABASE_URL)")


def run(args: argparse.Namespace) -> int:
    overrides = {k: v for k, v in (("engine_host", args.host), ("engine_port", args.port),
                                   ("queue_url", args.queue), ("database_url", args.database)) if v is not None}
    settings = settings_or_exit(**overrides)
    setup_logging(settings.log_format)
    if settings.engine_token is None:
        token = secrets.token_urlsafe(32)
        # Printed once to the console for the operator; never logged.
        print(f"AIGC_ENGINE_TOKEN was not set; generated one for this run:\n  {token}", file=sys.stderr,
              flush=True)
    else:
        token = settings.engine_token.get_secret_value()
    from engine.server import build_app
    from engine.service import Engine

    app = build_app(Engine(settings), token)
    web.run_app(app, host=settings.engine_host, port=settings.engine_port, access_log=None,
                print=lambda m: print(m.replace("======== ", "").replace(" ========", ""), file=sys.stderr))
    return 0

"""`python -m aigc.healthcheck [engine|bot|all]`: the container HEALTHCHECK. Exit 0 when the
engine's /readyz and/or the bot's /healthz answer 200 on loopback, 1 (naming which) otherwise.
Ports come from AIGC_ENGINE_PORT (8700) and AIGC_BOT_HTTP_PORT (8701); standard library only."""
from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

ENGINE_ROUTE = "/readyz"  # engine/server.py
BOT_ROUTE = "/healthz"  # bot/health.py
DEFAULT_ENGINE_PORT = 8700
DEFAULT_BOT_PORT = 8701


def targets(role: str, env: dict[str, str] | None = None) -> list[str]:
    env = dict(os.environ if env is None else env)
    urls = []
    if role in ("engine", "all"):
        urls.append(f"http://127.0.0.1:{env.get('AIGC_ENGINE_PORT') or DEFAULT_ENGINE_PORT}{ENGINE_ROUTE}")
    if role in ("bot", "all"):
        urls.append(f"http://127.0.0.1:{env.get('AIGC_BOT_HTTP_PORT') or DEFAULT_BOT_PORT}{BOT_ROUTE}")
    return urls


def check(url: str, timeout: float = 5.0) -> str | None:
    """None when healthy, else why not."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - loopback, fixed scheme
            return None if r.status == 200 else f"HTTP {r.status}"
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code}: {e.read(500).decode(errors='replace')}"
    except (urllib.error.URLError, OSError) as e:
        return str(getattr(e, "reason", e))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    role = args[0] if args else "all"
    if role not in ("engine", "bot", "all"):
        print("usage: python -m aigc.healthcheck [engine|bot|all]", file=sys.stderr)
        return 2
    failed = [(url, why) for url in targets(role) if (why := check(url)) is not None]
    for url, why in failed:
        print(f"unhealthy: {url}: {why}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

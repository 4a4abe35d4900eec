"""POST /v1/moderate with big guild rule sets: cold vs. cached, and /healthz meanwhile.

Starts a real engine (`aigc engine` subprocess on loopback) and sends rule sets of 3 rules x
1,000 wildcard keywords (`*word*`, the costliest kind to compile), then measures in the same run:
  cold_p50_ms       a rule set the engine has not seen (parse + compile + match): the baseline
  cached_p50_ms     the same rule set again (hash of the content, cache hit, match)
  healthz_p50_ms/healthz_max_ms  /healthz latency while --concurrency clients keep sending
                    new (uncached) heavy rule sets, i.e. how much the event loop is held up
  healthz_idle_p50_ms  /healthz on an idle engine, for comparison
Prints one JSON line. Usage: python benchmarks/moderate_rules.py [--cold 6] [--cached 30] [--seconds 3]
Takes about 15-30 s, most of it the engine's start.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import string
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._harness import free_port, percentile, start_engine, wait_ready  # noqa: E402

TEXT = "a watercolor painting of a lighthouse at dusk, seagulls, soft light " * 4


def heavy_rules(tag: int, rules: int = 3, keywords: int = 1000) -> list[dict]:
    """Distinct content for each tag, so each tag is a cold (uncached) rule set."""
    rnd = random.Random(tag)
    word = lambda: "".join(rnd.choice(string.ascii_lowercase) for _ in range(rnd.randint(5, 9)))  # noqa: E731
    return [{"id": f"r{i}", "keywords": [f"*{word()}*" for _ in range(keywords)]} for i in range(rules)]


async def moderate(session: aiohttp.ClientSession, base: str, headers: dict, rules: list[dict]) -> float:
    t0 = time.perf_counter()
    async with session.post(f"{base}/v1/moderate", json={"text": TEXT, "rules": rules}, headers=headers) as r:
        body = await r.json()
        if r.status != 200:
            raise RuntimeError(f"/v1/moderate answered {r.status}: {body}")
    return time.perf_counter() - t0


async def healthz(session: aiohttp.ClientSession, base: str) -> float:
    t0 = time.perf_counter()
    async with session.get(f"{base}/healthz") as r:
        await r.read()
    return time.perf_counter() - t0


async def healthz_under_load(session, base, headers, concurrency: int, seconds: float,
                             first_tag: int) -> tuple[list[float], int]:
    """Poll /healthz every 20 ms while `concurrency` clients send new heavy rule sets."""
    end = time.perf_counter() + seconds
    tags = iter(range(first_tag, first_tag + 10_000))
    sent = 0

    async def load() -> None:
        nonlocal sent
        while time.perf_counter() < end:
            await moderate(session, base, headers, heavy_rules(next(tags)))
            sent += 1

    async def probe() -> list[float]:
        out = []
        while time.perf_counter() < end:
            out.append(await healthz(session, base))
            await asyncio.sleep(0.02)
        return out

    results = await asyncio.gather(probe(), *(load() for _ in range(concurrency)))
    return results[0], sent


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cold", type=int, default=6, help="requests with rule sets not seen before")
    ap.add_argument("--cached", type=int, default=30, help="requests repeating one rule set")
    ap.add_argument("--seconds", type=float, default=3.0, help="length of the /healthz-under-load phase")
    ap.add_argument("--concurrency", type=int, default=2, help="heavy clients during that phase")
    args = ap.parse_args()
    port, token = free_port(), secrets.token_urlsafe(16)
    base, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
    sets = [heavy_rules(tag) for tag in range(args.cold)]  # built before timing anything
    body_kib = len(json.dumps({"text": TEXT, "rules": sets[0]})) / 1024
    with tempfile.TemporaryDirectory() as data_dir:
        proc = start_engine(port, token, data_dir, AIGC_WARMUP="false", AIGC_MAX_BODY_BYTES=str(1 << 20))
        try:
            await wait_ready(base, proc)
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as session:
                idle = [await healthz(session, base) for _ in range(20)]
                cold = [await moderate(session, base, headers, rules) for rules in sets]
                cached = [await moderate(session, base, headers, sets[0]) for _ in range(args.cached)]
                loaded, sent = await healthz_under_load(session, base, headers, args.concurrency,
                                                        args.seconds, first_tag=args.cold)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    ms = lambda xs, q: round(percentile(xs, q) * 1000, 2)  # noqa: E731
    print(json.dumps({
        "rules": "3x1000 wildcard keywords",
        "body_kib": round(body_kib, 1),
        "cold_p50_ms": ms(cold, 0.5),
        "cached_p50_ms": ms(cached, 0.5),
        "speedup_cached_vs_cold": round(percentile(cold, 0.5) / percentile(cached, 0.5), 1),
        "healthz_idle_p50_ms": ms(idle, 0.5),
        "healthz_p50_ms": ms(loaded, 0.5),
        "healthz_max_ms": round(max(loaded) * 1000, 2),
        "healthz_probes": len(loaded),
        "heavy_requests_during_probe": sent,
        "concurrency": args.concurrency,
        "cpu_count": os.cpu_count(),
    }))


if __name__ == "__main__":
    asyncio.run(main())

"""Engine throughput: batch-1 vs. 32 concurrent HTTP clients vs. the raw ceiling.

Starts a real engine (`aigc engine` subprocess on loopback) with the built-in emoji plugin,
then measures in the same run:
  batch1_rps      one client, one request at a time (each POST waits for its result)
  c32_rps         32 clients at once (the scheduler batches them)
  ceiling_rps     direct generate + PNG encode + C2PA signing at the best batch size, no HTTP,
                  no scheduler (the engine signs every output by default; so does the ceiling)
  ceiling_unsigned_rps  the same ceiling without signing, in the same rounds (what signing costs)
  sign_ms         signing cost per output (p50 of one 64-px PNG signed with the engine's Signer),
                  and what it adds per output inside the ceiling's loop (sign_ms_in_ceiling)
  p50_ms/p99_ms   request latency at concurrency 32
  lone_overhead_ms  p50 of a lone HTTP request minus p50 of a direct batch-of-one call
Prints one JSON line. Usage: python benchmarks/engine_throughput.py [--seconds 8] [--quality draft|best]
[--no-sign] (both paths without Content Credentials, AIGC_C2PA_SIGN=false)

The emoji quality is `draft` by default: one forward pass per output, so the figures show the
engine's own overhead (HTTP, scheduler, batching). `best` adds the critic's choice among 8
candidates (several times the compute per output), which hides that overhead behind the model.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._harness import free_port, percentile, start_engine, wait_ready  # noqa: E402


QUALITY = "draft"  # set from --quality in main()


async def one(session: aiohttp.ClientSession, base: str, headers: dict, seed: int) -> float:
    body = {"command": "emoji", "options": {"prompt": "smiling face", "quality": QUALITY}, "seed": seed, "count": 1}
    t0 = time.perf_counter()
    async with session.post(f"{base}/v1/jobs?wait=60", json=body, headers=headers) as r:
        data = await r.json()
        if r.status != 200 or data.get("status") != "done":
            raise RuntimeError(f"job did not finish: {r.status} {data}")
    return time.perf_counter() - t0


async def drive(session, base, headers, concurrency: int, seconds: float, desc: str) -> tuple[float, list[float]]:
    latencies: list[float] = []
    end = time.perf_counter() + seconds
    bar = tqdm(desc=desc, unit="req", file=sys.stderr, leave=False)

    async def client(c: int) -> None:
        k = 0
        while time.perf_counter() < end:
            latencies.append(await one(session, base, headers, c * 1_000_000 + k))
            k += 1
            bar.update()

    t0 = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(concurrency)))
    elapsed = time.perf_counter() - t0
    bar.close()
    return len(latencies) / elapsed, latencies


class Direct:
    """The emoji generator called directly in this process: no HTTP, no scheduler. Calls run
    in one worker thread, as the engine runs them (torch's OpenMP pool behaves differently in
    the main thread of a busy machine, which would make the comparison unfair)."""

    def __init__(self, signer=None) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._worker = ThreadPoolExecutor(1)
        from engine import sdk
        from engine.artifacts import BUILTIN_MODALITIES
        from engine.runtime import configure_threads
        from plugins.emoji import plugin

        configure_threads(0)
        self.sdk = sdk
        self.gen = plugin.generators[0]
        self.gen.load("cpu")
        self.image = next(m for m in BUILTIN_MODALITIES if m.name == "image")
        self.meta = {"label": "AI-generated", "producer": "AIGC Bot", "job": "bench", "index": "0",
                     "command": "emoji", "model": "emoji-dcgan", "model_version": "1"}
        self.ctx = sdk.EncodeContext(meta=self.meta, compress_level=1)
        self.signer = signer  # engine.provenance.credentials.Signer, as the engine signs

    def run(self, n: int, base: int, sign: bool = True) -> None:
        import torch

        items = [self.sdk.Item(command="emoji", options={"prompt": "smiling face", "variety": 0.7, "quality": QUALITY,
                                                          "model": "gan"}, seed=base + i, index=0)
                 for i in range(n)]
        with torch.inference_mode():
            outs = self.gen.generate(items)
        for o in outs:
            data = self.image.encode(o, self.ctx)
            if sign and self.signer is not None:
                self.signer.sign(data, "image/png", self.meta)

    def rate(self, bs: int, seconds: float, sign: bool = True) -> float:
        def loop() -> float:
            done, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                self.run(bs, done, sign)
                done += bs
            return done / (time.perf_counter() - t0)
        return self._worker.submit(loop).result()

    def sign_cost_ms(self, n: int = 200) -> float:
        """p50 of signing one output of this generator (64 px PNG, labelled), in ms."""
        import torch

        item = self.sdk.Item(command="emoji", options={"prompt": "smiling face", "variety": 0.7, "quality": QUALITY,
                                                        "model": "gan"}, seed=1, index=0)
        with torch.inference_mode():
            data = self.image.encode(self.gen.generate([item])[0], self.ctx)

        def loop() -> list[float]:
            out = []
            for _ in range(n):
                t0 = time.perf_counter()
                self.signer.sign(data, "image/png", self.meta)
                out.append(time.perf_counter() - t0)
            return out
        return percentile(self._worker.submit(loop).result()[10:], 0.5) * 1000

    def single_latencies(self, n: int) -> list[float]:
        def loop() -> list[float]:
            out = []
            for k in range(n):
                t0 = time.perf_counter()
                self.run(1, k)
                out.append(time.perf_counter() - t0)
            return out
        return self._worker.submit(loop).result()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4.0, help="duration of each phase per round")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of interleaved phases")
    ap.add_argument("--quality", choices=("draft", "best"), default="draft", help="the emoji command's quality")
    ap.add_argument("--no-sign", action="store_true", help="no Content Credentials in either path")
    args = ap.parse_args()
    global QUALITY
    QUALITY = args.quality
    port, token = free_port(), secrets.token_urlsafe(16)
    base, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
    with tempfile.TemporaryDirectory() as data_dir:
        signer = None
        if not args.no_sign:  # the engine's own signer class and a local CA, as the engine makes one
            from engine.provenance.credentials import Signer, local_keys

            signer = Signer(local_keys(Path(data_dir) / "bench-direct"))
        direct = Direct(signer)
        sign_ms = direct.sign_cost_ms() if signer else 0.0
        # Best batch size for the ceiling, chosen once.
        best_bs = max((1, 8, 16, 32, 64), key=lambda bs: direct.rate(bs, 1.0))
        b1, c32, ceil, ceil_unsigned, lone, lat, single = [], [], [], [], [], [], []
        proc = start_engine(port, token, data_dir, AIGC_C2PA_SIGN="false" if args.no_sign else "true")
        try:
            await wait_ready(base)
            conn = aiohttp.TCPConnector(limit=64)
            async with aiohttp.ClientSession(connector=conn) as session:
                await drive(session, base, headers, 4, 1.0, "warm-up")
                # Phases interleave, round after round, so that a noisy machine hits all alike.
                for r in tqdm(range(args.rounds), desc="rounds", file=sys.stderr):
                    rps, l1 = await drive(session, base, headers, 1, args.seconds, "batch-1")
                    b1.append(rps)
                    lone += l1
                    rps, l32 = await drive(session, base, headers, 32, args.seconds, "c32")
                    c32.append(rps)
                    lat += l32
                    ceil.append(direct.rate(best_bs, args.seconds))
                    if signer is not None:
                        ceil_unsigned.append(direct.rate(best_bs, args.seconds / 2, sign=False))
                    single += direct.single_latencies(40)[5:]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    batch1_rps, c32_rps, ceiling_rps = (statistics.median(x) for x in (b1, c32, ceil))
    print(json.dumps({
        "batch1_rps": round(batch1_rps, 1),
        "c32_rps": round(c32_rps, 1),
        "ceiling_rps": round(ceiling_rps, 1),
        "ceiling_batch_size": best_bs,
        "ceiling_unsigned_rps": round(statistics.median(ceil_unsigned), 1) if ceil_unsigned else round(ceiling_rps, 1),
        # what signing adds per output inside the ceiling's loop (after a forward pass, with torch's
        # threads still about: more than sign_ms_per_output, measured alone)
        "sign_ms_in_ceiling": round((1 / ceiling_rps - 1 / statistics.median(ceil_unsigned)) * 1000, 3)
        if ceil_unsigned else 0.0,
        "speedup_c32_vs_batch1": round(c32_rps / batch1_rps, 2),
        "fraction_of_ceiling": round(c32_rps / ceiling_rps, 3),
        "p50_ms": round(percentile(lat, 0.5) * 1000, 2),
        "p99_ms": round(percentile(lat, 0.99) * 1000, 2),
        "lone_p50_ms": round(percentile(lone, 0.5) * 1000, 2),
        "direct_single_p50_ms": round(percentile(single, 0.5) * 1000, 2),
        "lone_overhead_ms": round((percentile(lone, 0.5) - percentile(single, 0.5)) * 1000, 2),
        "quality": args.quality,
        "signed": not args.no_sign,
        "sign_ms_per_output": round(sign_ms, 3),
        "rounds": args.rounds,
        "cpu_count": os.cpu_count(),
    }))


if __name__ == "__main__":
    asyncio.run(main())

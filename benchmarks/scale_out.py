"""Scale-out on Redis Streams and PostgreSQL vs. the in-process engine, in one run.

Configurations (the emoji plugin, `draft` quality so that the queueing overhead shows):
  inprocess   `aigc engine` alone (its in-process queue and generator process)
  redis_1w    `aigc engine --queue` + one `aigc worker` pinned to core 0
  redis_2w    `aigc engine --queue` + two workers, pinned to cores 0 and 1
For each: throughput (rps) and p50/p99 latency at 32 concurrent clients (each POST ?wait=
for its result), and the p50 of a lone job (one client, one at a time). Then:
  lone_overhead_ms   redis_1w's lone p50 minus inprocess's lone p50 (issue #25's target: <= 3 ms)
  recovery_s         two workers, a burst of jobs, kill -9 of the worker holding entries: seconds
                     from the kill until the last job it held is done (claim_idle_ms + the redo)
Needs Redis (AIGC_BENCH_REDIS, default redis://127.0.0.1:6379/0) and PostgreSQL
(AIGC_BENCH_PG, default postgresql://postgres@127.0.0.1:5432/postgres; a throwaway database is
made and dropped). Prints one JSON line.
Usage: python benchmarks/scale_out.py [--seconds 6] [--claim-idle-ms 1000]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._harness import ROOT, free_port, percentile, start_engine, wait_ready  # noqa: E402

PG = os.environ.get("AIGC_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("AIGC_BENCH_REDIS", "redis://127.0.0.1:6379/0")
BODY = {"command": "emoji", "options": {"prompt": "smiling face", "quality": "draft"}, "count": 1}


async def one(http: aiohttp.ClientSession, base: str, headers: dict, seed: int) -> float:
    t0 = time.perf_counter()
    async with http.post(f"{base}/v1/jobs?wait=120", json={**BODY, "seed": seed}, headers=headers) as r:
        data = await r.json()
        if r.status != 200 or data.get("status") != "done":
            raise RuntimeError(f"job did not finish: {r.status} {data}")
    return time.perf_counter() - t0


async def drive(http, base, headers, concurrency: int, seconds: float) -> tuple[float, list[float]]:
    lat: list[float] = []
    end = time.perf_counter() + seconds

    async def client(c: int) -> None:
        k = 0
        while time.perf_counter() < end:
            lat.append(await one(http, base, headers, c * 1_000_000 + k + int(time.time())))
            k += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(concurrency)))
    return len(lat) / (time.perf_counter() - t0), lat


async def measure(base: str, headers: dict, seconds: float) -> dict:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as http:
        await drive(http, base, headers, 4, 1.0)  # warm-up
        lone = [await one(http, base, headers, 7_000_000 + k) for k in range(40)][5:]
        rps, lat = await drive(http, base, headers, 32, seconds)
    return {"c32_rps": round(rps, 1), "p50_ms": round(percentile(lat, 0.5) * 1000, 1),
            "p99_ms": round(percentile(lat, 0.99) * 1000, 1), "lone_p50_ms": round(percentile(lone, 0.5) * 1000, 2)}


def start_worker(env: dict, name: str, cpus: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "aigc.cli", "worker", "--name", name, "--cpus", cpus,
                             "--port", str(free_port())], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(*procs: subprocess.Popen) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


async def wait_worker_ready(redis, stream: str, names: list[str], timeout: float = 120) -> None:
    """A worker is ready once it has joined the stream's group (its first read)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            have = {c["name"].decode() for c in await redis.xinfo_consumers(stream, "workers")}
            if set(names) <= have:
                return
        except Exception:  # noqa: BLE001 - no stream yet
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError(f"workers {names} did not join")


async def recovery(base: str, headers: dict, redis, stream: str, workers: dict[str, subprocess.Popen]) -> float:
    async with aiohttp.ClientSession() as http:
        ids = []
        for k in range(96):
            async with http.post(f"{base}/v1/jobs", json={**BODY, "seed": 9_000_000 + k}, headers=headers) as r:
                ids.append((await r.json())["id"])
        victim, held = None, []
        while victim is None:
            info = await redis.xpending(stream, "workers")
            for c in info.get("consumers") or []:
                if int(c["pending"]) > 0:
                    victim = c["name"].decode()
                    break
            await asyncio.sleep(0.005)
        entries = await redis.xpending_range(stream, "workers", "-", "+", 1000, victim)
        for e in entries:
            got = await redis.xrange(stream, e["message_id"], e["message_id"])
            if got:
                held.append(got[0][1][b"job"].decode())
        workers[victim].send_signal(signal.SIGKILL)
        killed = time.perf_counter()
        for job_id in held:
            while True:
                async with http.get(f"{base}/v1/jobs/{job_id}", headers=headers) as r:
                    if (await r.json())["status"] == "done":
                        break
                await asyncio.sleep(0.02)
        return time.perf_counter() - killed


async def main() -> None:
    import asyncpg
    from redis.asyncio import Redis

    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=6.0, help="duration of each c32 phase")
    ap.add_argument("--claim-idle-ms", type=int, default=1000, help="AIGC_CLAIM_IDLE_MS for the recovery figure")
    args = ap.parse_args()
    token = secrets.token_urlsafe(16)
    headers = {"Authorization": f"Bearer {token}"}
    out: dict = {}
    db = f"aigc_bench_{secrets.token_hex(4)}"
    prefix = f"bench{secrets.token_hex(4)}"
    admin = await asyncpg.connect(PG)
    await admin.execute(f'CREATE DATABASE "{db}"')
    redis = Redis.from_url(REDIS)
    stream = f"{prefix}:gen:emoji"
    try:
        with tempfile.TemporaryDirectory() as data:
            port = free_port()  # in-process
            proc = start_engine(port, token, data)
            try:
                await wait_ready(f"http://127.0.0.1:{port}", proc)
                out["inprocess"] = await measure(f"http://127.0.0.1:{port}", headers, args.seconds)
            finally:
                stop(proc)
            scaled = {"AIGC_QUEUE_URL": REDIS, "AIGC_DATABASE_URL": PG.rsplit("/", 1)[0] + "/" + db,
                      "AIGC_QUEUE_PREFIX": prefix, "AIGC_CLAIM_IDLE_MS": str(args.claim_idle_ms),
                      "AIGC_GENERATOR_PROCESSES": "false"}
            wenv = {**os.environ, "AIGC_PLUGINS_ENABLED": "emoji", "AIGC_LOG_FORMAT": "json",
                    "PYTHONPATH": str(ROOT), **scaled}
            port = free_port()
            api = start_engine(port, token, data, **scaled)
            base = f"http://127.0.0.1:{port}"
            workers: dict[str, subprocess.Popen] = {}
            try:
                await wait_ready(base, api)
                workers["w0"] = start_worker(wenv, "w0", "0")
                await wait_worker_ready(redis, stream, ["w0"])
                out["redis_1w"] = await measure(base, headers, args.seconds)
                workers["w1"] = start_worker(wenv, "w1", "1")
                await wait_worker_ready(redis, stream, ["w1"])
                out["redis_2w"] = await measure(base, headers, args.seconds)
                out["recovery_s"] = round(await recovery(base, headers, redis, stream, workers), 2)
            finally:
                stop(api, *workers.values())
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin.close()
    out["lone_overhead_ms"] = round(out["redis_1w"]["lone_p50_ms"] - out["inprocess"]["lone_p50_ms"], 2)
    out["speedup_2w_vs_1w"] = round(out["redis_2w"]["c32_rps"] / out["redis_1w"]["c32_rps"], 2)
    out["claim_idle_ms"] = args.claim_idle_ms
    out["cpu_count"] = os.cpu_count()
    out["quality"] = "draft"
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())

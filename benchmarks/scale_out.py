"""Scale-out on Redis Streams and PostgreSQL vs. the in-process engine, in one run.

Configurations (the emoji plugin, `draft` quality so that the queueing overhead shows):
  inprocess   `aigc engine` alone (its in-process queue and generator process), pinned to core 0
              with one torch thread: the compute one worker gets
  redis_1w    `aigc engine --queue` + one `aigc worker` pinned to core 0
  redis_2w    `aigc engine --queue` + two workers, pinned to cores 0 and 1
For each: throughput (rps, median of the rounds) and p50/p99 latency at 32 concurrent clients
(each POST ?wait= for its result), and the p50 of a lone job (one client, one at a time). The
in-process engine and the API node run side by side and are measured in interleaved rounds, so
that a shared machine's noise hits both alike; redis_2w is interleaved with inprocess_2 (the
in-process engine again, as the reference for that phase). Then:
  lone_overhead_ms   median over paired lone jobs (one on each path, alternating, in
                     counterbalanced order) of the Redis path's latency minus the in-process
                     one's (issue #25's target: <= 3 ms); lone_overhead_by_round_ms: the same per
                     round (round 0 before any 32-client burst, each later one after a burst)
  cpu_ms_per_job     CPU time per finished job at 32 clients, per part (the engine with its
                     generator process; or the API node, the workers, Redis, PostgreSQL: every
                     postgres process, so anything else PostgreSQL serves meanwhile counts too;
                     and this script's 32 clients),
                     and cores_busy: what those parts and the rest of the machine (other
                     engineers' work) used, in cores, during those phases
  recovery_s         two workers, a burst of jobs, kill -9 of the worker holding entries: seconds
                     from the kill until the last job it held is done (claim_idle_ms + the redo)
Needs Redis (AIGC_BENCH_REDIS, default redis://127.0.0.1:6379/0) and PostgreSQL
(AIGC_BENCH_PG, default postgresql://postgres@127.0.0.1:5432/postgres; a throwaway database is
made and dropped). Prints one JSON line.
Usage: python benchmarks/scale_out.py [--seconds 4] [--rounds 3] [--claim-idle-ms 1000] [--no-sync-commit]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import statistics
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


async def lone(http, base: str, headers: dict, n: int, seed0: int) -> list[float]:
    return [await one(http, base, headers, seed0 + k) for k in range(n)]


async def c32(http, base: str, headers: dict, seconds: float) -> tuple[float, list[float]]:
    return await drive(http, base, headers, 32, seconds)


def summary(rates: list[float], lat: list[float], lone_lat: list[float] | None = None) -> dict:
    out = {"c32_rps": round(statistics.median(rates), 1), "p50_ms": round(percentile(lat, 0.5) * 1000, 1),
           "p99_ms": round(percentile(lat, 0.99) * 1000, 1)}
    if lone_lat:
        out["lone_p50_ms"] = round(percentile(lone_lat, 0.5) * 1000, 2)
    return out


_TICK = os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    """``pid`` and every process below it (an engine's generator process, a worker's)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def _named(comm: str) -> list[int]:
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/comm") as f:
                    if f.read().strip() == comm:
                        pids.append(int(d))
            except OSError:
                pass
    return pids


def cpu_s(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes ``pids`` have used so far."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / _TICK


def machine_busy_s() -> float:
    """CPU seconds the whole machine was busy (every process, ours and the other engineers')."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / _TICK  # all but idle and iowait


class CpuMeter:
    """CPU milliseconds per finished job, per part, over the c32 phases of one configuration;
    and what the rest of the machine used meanwhile (other engineers' work on the same cores)."""

    def __init__(self, parts: dict[str, list[int]]) -> None:
        self.parts = parts
        self.used = {k: 0.0 for k in parts}
        self.busy = self.wall = 0.0
        self.jobs = 0

    async def phase(self, coro) -> tuple[float, list[float]]:
        pids = {k: [q for p in v for q in _tree(p)] for k, v in self.parts.items()}
        before, busy0, t0 = {k: cpu_s(v) for k, v in pids.items()}, machine_busy_s(), time.perf_counter()
        rps, lat = await coro
        for k, v in pids.items():
            self.used[k] += cpu_s(v) - before[k]
        self.busy += machine_busy_s() - busy0
        self.wall += time.perf_counter() - t0
        self.jobs += len(lat)
        return rps, lat

    def summary(self) -> dict:
        per = {k: round(1000 * v / max(1, self.jobs), 2) for k, v in self.used.items()}
        ours = sum(self.used.values())
        return {"cpu_ms_per_job": {**per, "total": round(1000 * ours / max(1, self.jobs), 2)},
                "cores_busy": {"ours": round(ours / self.wall, 2),
                               "rest_of_machine": round(max(0.0, self.busy - ours) / self.wall, 2)}}


def start_worker(env: dict, name: str, cpus: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "aigc.cli", "worker", "--name", name, "--cpus", cpus,
                             "--port", str(port)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, f"http://127.0.0.1:{port}"


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


async def start_ready_worker(env: dict, name: str, cpus: str) -> subprocess.Popen:
    proc, url = start_worker(env, name, cpus)
    await wait_ready(url, proc)  # the worker's /readyz: generators loaded, Redis answering
    return proc


async def recovery(base: str, headers: dict, redis, stream: str, workers: dict[str, subprocess.Popen]) -> float:
    """Seconds from a worker's kill -9 until every entry it held is acknowledged by another
    worker and every job of the burst is done."""
    async with aiohttp.ClientSession() as http:
        async def post(k: int) -> str:
            async with http.post(f"{base}/v1/jobs", json={**BODY, "seed": 9_000_000 + k}, headers=headers) as r:
                return (await r.json())["id"]
        # all at once, so that entries pile up faster than two workers drain them (posted one by
        # one, each could be done before the next arrives, and no worker would ever hold any)
        posting = asyncio.gather(*(post(k) for k in range(96)))
        victim = None
        deadline = time.monotonic() + 60
        while victim is None:  # frozen first, so that it cannot acknowledge between our look and the kill
            if time.monotonic() > deadline:
                raise RuntimeError("recovery: no worker was seen holding entries")
            info = await redis.xpending(stream, "workers")
            name = next((c["name"].decode() for c in info.get("consumers") or [] if int(c["pending"]) > 0), None)
            if name is None:
                await asyncio.sleep(0.002)
                continue
            workers[name].send_signal(signal.SIGSTOP)
            if await redis.xpending_range(stream, "workers", "-", "+", 1, name):
                victim = name
            else:
                workers[name].send_signal(signal.SIGCONT)
        workers[victim].send_signal(signal.SIGKILL)
        killed = time.perf_counter()
        workers[victim].wait()
        ids = await posting
        while await redis.xpending_range(stream, "workers", "-", "+", 1, victim):
            await asyncio.sleep(0.02)  # claimed by the other worker (after claim_idle_ms) and redone
        for job_id in ids:  # every job of the burst
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
    ap.add_argument("--seconds", type=float, default=4.0, help="duration of each c32 phase")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of each comparison")
    ap.add_argument("--no-sync-commit", action="store_true",
                    help="AIGC_DATABASE_SYNCHRONOUS_COMMIT=false (no WAL flush wait per commit)")
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
    load_before = os.getloadavg()[0]
    try:
        with tempfile.TemporaryDirectory() as data:
            scaled = {"AIGC_QUEUE_URL": REDIS, "AIGC_DATABASE_URL": PG.rsplit("/", 1)[0] + "/" + db,
                      "AIGC_QUEUE_PREFIX": prefix, "AIGC_CLAIM_IDLE_MS": str(args.claim_idle_ms),
                      "AIGC_GENERATOR_PROCESSES": "false",
                      "AIGC_DATABASE_SYNCHRONOUS_COMMIT": "false" if args.no_sync_commit else "true"}
            wenv = {**os.environ, "AIGC_PLUGINS_ENABLED": "emoji", "AIGC_LOG_FORMAT": "json",
                    "PYTHONPATH": str(ROOT), **scaled}
            p1, p2 = free_port(), free_port()
            # The in-process engine gets what one worker gets: core 0, one torch thread.
            local = start_engine(p1, token, str(Path(data) / "local"), AIGC_THREADS="1")
            os.sched_setaffinity(local.pid, {0})  # before it starts its generator process
            api = start_engine(p2, token, str(Path(data) / "api"), **scaled)
            inproc, redis_base = f"http://127.0.0.1:{p1}", f"http://127.0.0.1:{p2}"
            workers: dict[str, subprocess.Popen] = {}
            try:
                await wait_ready(inproc, local)
                await wait_ready(redis_base, api)
                workers["w0"] = await start_ready_worker(wenv, "w0", "0")
                runs = {k: ([], [], []) for k in ("inprocess", "redis_1w", "inprocess_2", "redis_2w")}
                shared_parts = {"redis": _named("redis-server"), "postgres": _named("postgres"),
                                "clients": [os.getpid()]}
                meters = {"inprocess": CpuMeter({"engine": [local.pid], "clients": [os.getpid()]}),
                          "redis_1w": CpuMeter({"api": [api.pid], "workers": [workers["w0"].pid], **shared_parts})}
                async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as http:
                    for base in (inproc, redis_base):
                        await drive(http, base, headers, 4, 1.0)  # warm-up
                    # Interleaved rounds: a noisy (shared) machine hits both paths alike.
                    pairs_by_round: list[list[float]] = [[] for _ in range(args.rounds)]
                    for r in range(args.rounds):
                        # Lone jobs, alternating one by one between the two paths: paired samples,
                        # in counterbalanced order (AB, BA, ...), so that whatever one path's job
                        # leaves running after its answer (a journal write, a pinned core's
                        # caches) slows each path's jobs alike.
                        for k in range(30):
                            seed = 7_000_000 + 100 * r + k
                            if k % 2 == 0:
                                a = await one(http, inproc, headers, seed)
                                b = await one(http, redis_base, headers, seed)
                            else:
                                b = await one(http, redis_base, headers, seed)
                                a = await one(http, inproc, headers, seed)
                            if k >= 3:
                                runs["inprocess"][2].append(a)
                                runs["redis_1w"][2].append(b)
                                pairs_by_round[r].append(b - a)
                        for name, base in (("inprocess", inproc), ("redis_1w", redis_base)):
                            rates, lat, lone_lat = runs[name]
                            rps, l32 = await meters[name].phase(c32(http, base, headers, args.seconds))
                            rates.append(rps)
                            lat += l32
                    workers["w1"] = await start_ready_worker(wenv, "w1", "1")
                    meters["inprocess_2"] = CpuMeter({"engine": [local.pid], "clients": [os.getpid()]})
                    meters["redis_2w"] = CpuMeter({"api": [api.pid], "workers": [workers["w0"].pid, workers["w1"].pid],
                                                   **shared_parts})
                    await drive(http, redis_base, headers, 4, 1.0)
                    for r in range(args.rounds):
                        for name, base in (("inprocess_2", inproc), ("redis_2w", redis_base)):
                            rates, lat, _ = runs[name]
                            rps, l32 = await meters[name].phase(c32(http, base, headers, args.seconds))
                            rates.append(rps)
                            lat += l32
                for name, (rates, lat, lone_lat) in runs.items():
                    out[name] = {**summary(rates, lat, lone_lat), **meters[name].summary()}
                stop(local)
                out["recovery_s"] = round(await recovery(redis_base, headers, redis, stream, workers), 2)
            finally:
                stop(local, api, *workers.values())
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin.close()
    pairs = [d for p in pairs_by_round for d in p]
    out["lone_overhead_ms"] = round(statistics.median(pairs) * 1000, 2)  # median of paired differences
    # per round: round 0 comes before any 32-client burst, the others each follow one
    out["lone_overhead_by_round_ms"] = [round(statistics.median(p) * 1000, 2) for p in pairs_by_round if p]
    out["speedup_2w_vs_1w"] = round(out["redis_2w"]["c32_rps"] / out["redis_1w"]["c32_rps"], 2)
    out["claim_idle_ms"] = args.claim_idle_ms
    out["synchronous_commit"] = not args.no_sync_commit
    out["loadavg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]  # before, after: a shared machine
    out["cpu_count"] = os.cpu_count()
    out["quality"] = "draft"
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())

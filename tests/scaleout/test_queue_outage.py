"""Redis restarted (our own redis-server, no persistence): the API node reports not-ready and
refuses new jobs with 503 while it is gone, then recovers; the jobs it had accepted are queued
again from PostgreSQL and finish. The stream's length bounds admission (429 + Retry-After).
Then a consumer that died holding entries (claimed and redone by the worker), a poisonous
output (fails its job after too many deliveries), a job cancelled while queued (its entries
are skipped) and a malformed entry (acknowledged and dropped)."""
from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess
import time

import aiohttp
import asyncpg
import pytest

from redis.asyncio import Redis

from tests.scaleout.cluster import AUTH, Cluster, drop_database, free_port, get_job, make_database, submit

pytestmark = pytest.mark.slow


def start_redis(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind",
                             "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc


async def wait_redis(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise AssertionError("redis-server did not start")


async def readyz(http: aiohttp.ClientSession, url: str) -> int:
    async with http.get(f"{url}/readyz") as r:
        return r.status


async def until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def test_redis_restart_loses_nothing_accepted(tmp_path):
    port = free_port()
    redis = start_redis(port)
    database = await make_database()
    cluster = Cluster(database, f"redis://127.0.0.1:{port}/0", f"t{secrets.token_hex(5)}", tmp_path)
    try:
        await wait_redis(port)
        api = cluster.api("api", AIGC_QUEUE_MAX="8")
        await cluster.ready(api)
        body = {"command": "emoji", "options": {"prompt": "a green frog"}, "count": 3}
        async with aiohttp.ClientSession() as http:
            # No worker yet: the stream fills; 3 + 3 outputs fit in 8, 3 more do not.
            ids = [(await submit(http, api, {**body, "seed": s}))["id"] for s in (1, 2)]
            refused = await submit(http, api, {**body, "seed": 3}, expect=429)
            assert refused["error"]["code"] == "queue_full"

            redis.kill()
            redis.wait()
            await until(lambda: _is(readyz(http, api.url), 503), 10, "not-ready while Redis is down")
            down = await submit(http, api, {**body, "seed": 4}, expect=503)
            assert down["error"]["code"] == "queue_unavailable"
            assert (await get_job(http, api, ids[0]))["status"] == "queued"  # still answered (PostgreSQL)

            redis = start_redis(port)  # back, empty: the streams are gone
            await until(lambda: _is(readyz(http, api.url), 200), 15, "ready again once Redis is back")
            stream = f"{cluster.prefix}:gen:emoji"
            client = Redis.from_url(cluster.redis_url)
            await until(lambda: _length(client, stream, 6), 10, "the accepted jobs are queued again")
            # Two more jobs fill the stream to its bound (8). A consumer that dies holding every
            # entry ("ghost"); one output has killed its workers 9 times already (poisonous);
            # one job is cancelled while queued; a malformed entry.
            poison = (await submit(http, api, {**body, "count": 1, "seed": 5}))["id"]
            cancelled = (await submit(http, api, {**body, "count": 1, "seed": 6}))["id"]
            taken = await client.xreadgroup("workers", "ghost", {stream: ">"}, count=8)
            entries = taken[0][1]
            assert len(entries) == 8
            for eid, fields in entries:
                retry = 9 if fields[b"job"].decode() == poison else 1
                await client.xclaim(stream, "workers", "ghost", 0, [eid], idle=60_000, retrycount=retry)
            async with http.delete(f"{api.url}/v1/jobs/{cancelled}", headers=AUTH) as r:
                assert r.status == 200 and (await r.json())["status"] == "cancelled"
            await client.xadd(stream, {"nonsense": "1"})

            worker = cluster.worker("w1")
            await cluster.ready(worker)
            for job_id in ids:  # claimed from the ghost, run again, done
                await until(lambda: _done(http, api, job_id), 60, f"job {job_id} finishes after the restart")
            await until(lambda: _status(http, api, poison, "failed"), 30, "the poisonous output fails its job")
            error = (await get_job(http, api, poison))["error"]
            assert error["code"] == "generation_failed" and "died" in error["message"]
            await until(lambda: _length(client, stream, 0), 30, "every entry acknowledged, the malformed one too")
            assert (await get_job(http, api, cancelled))["status"] == "cancelled"
            await client.aclose()
            conn = await asyncpg.connect(database)
            try:  # refused jobs left nothing behind; accepted ones are done, each output once
                assert await conn.fetchval("SELECT count(*) FROM aigc_jobs") == 4
                assert await conn.fetchval("SELECT count(*) FROM aigc_outputs") == 6
                assert await conn.fetchval("SELECT count(*) FROM aigc_outputs WHERE job = ANY($1::text[])",
                                           [poison, cancelled]) == 0
            finally:
                await conn.close()
            async with http.get(f"{worker.url}/metrics") as r:
                text = await r.text()
            def metric(name: str) -> float:
                return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))

            assert metric("aigc_worker_claimed_total") >= 7
            assert metric("aigc_worker_redone_total") == 6  # the two accepted jobs' outputs, run again
            for gauge in ("aigc_stream_length", "aigc_stream_pending", "aigc_stream_lag", "aigc_stream_consumers"):
                assert f'{gauge}{{generator="emoji"}}' in text
            async with http.get(f"{api.url}/metrics") as r:
                assert 'aigc_jobs_refused_total{reason="queue_full"} 1.0' in await r.text()
    finally:
        cluster.stop()
        redis.kill()
        redis.wait()
        await drop_database(database)


async def _is(status, want: int) -> bool:
    try:
        return await status == want
    except aiohttp.ClientError:
        return False


async def _done(http, api, job_id) -> bool:
    return (await get_job(http, api, job_id))["status"] == "done"


async def _status(http, api, job_id, status: str) -> bool:
    return (await get_job(http, api, job_id))["status"] == status


async def _length(client: Redis, stream: str, n: int) -> bool:
    return await client.xlen(stream) == n

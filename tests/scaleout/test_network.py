"""The scale-out across a network: an API node, two workers and the shared state (Redis and
PostgreSQL) on four hosts (network namespaces, tests/scaleout/netlab.py), the test as the
clients' host. Besides jobs crossing real links, this is what a network adds to a worker's death:
a worker cut off in the middle of a batch is not dead. It finishes its forward pass and its
commit hangs; another worker claims its entries and redoes them; when the link comes back the
cut-off worker's late commit lands on outputs already recorded, and must change nothing, and
the worker must go back to work."""
from __future__ import annotations

import asyncio
import os
import signal
import time

import aiohttp
import asyncpg
import pytest
from redis.asyncio import Redis

from tests.scaleout.cluster import Cluster, events, get_job, submit
from tests.scaleout.netlab import NetLab, available

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(available() is not None, reason=f"no network lab here: {available()}")]
GROUP = "workers"


@pytest.fixture
def lab():
    net = NetLab()
    try:
        net.start()
        yield net
    finally:
        net.stop()


async def _metric(http: aiohttp.ClientSession, url: str, name: str, outcome: str | None = None) -> float:
    async with http.get(f"{url}/metrics") as r:
        text = await r.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") and (outcome is None or f'outcome="{outcome}"' in line))


async def _until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        got = await check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_a_worker_cut_off_mid_batch_changes_nothing_when_it_comes_back(lab, tmp_path):
    _, api_addr, w1_addr, w2_addr = (lab.host(n) for n in ("db", "api", "w1", "w2"))
    redis_url, pg_url = lab.start_redis("db"), lab.start_postgres("db")
    cluster = Cluster(pg_url, redis_url, "net", tmp_path)
    try:
        api = cluster.api("api", netns=lab.ns("api"), host=api_addr)
        w1 = cluster.worker("w1", netns=lab.ns("w1"), host=w1_addr)
        w2 = cluster.worker("w2", netns=lab.ns("w2"), host=w2_addr)
        await cluster.ready(api, w1, w2)
        redis = Redis.from_url(redis_url)
        stream = "net:gen:emoji"
        async with aiohttp.ClientSession() as http:
            accepted: list[str] = []

            # Freeze w1 while it holds entries, cut its link, let it run on: its batch finishes
            # on a host that can no longer reach Redis or PostgreSQL.
            async def w1_holds():
                try:
                    info = await redis.xpending(stream, GROUP)
                except Exception:  # noqa: BLE001 - no group yet
                    return None
                if any(c["name"] == b"w1" and int(c["pending"]) > 0 for c in info.get("consumers") or []):
                    os.kill(w1.proc.pid, signal.SIGSTOP)
                    held = await redis.xpending_range(stream, GROUP, "-", "+", 1000, "w1")
                    if held:
                        return held
                    os.kill(w1.proc.pid, signal.SIGCONT)
                return None

            # w1 may have written its acknowledgement just before it stopped; then the cut came
            # after the batch and w2 has nothing to claim. Only entries still w1's once the link
            # is down (and anything in flight has landed) make the case: otherwise try again.
            held = []
            for attempt in range(4):
                for n, w in enumerate(["red", "blue", "green", "happy", "sad", "tiny"]):
                    accepted.append((await submit(http, api, {"command": "emoji", "options": {"prompt": f"a {w} cat"},
                                                              "seed": 7 + n + 10 * attempt, "count": 4}))["id"])
                await _until(w1_holds, 30, "w1 to take entries")
                lab.partition("w1")
                await asyncio.sleep(0.3)
                held = await redis.xpending_range(stream, GROUP, "-", "+", 1000, "w1")
                if held:
                    break
                lab.heal("w1")
                os.kill(w1.proc.pid, signal.SIGCONT)
            assert held, "w1 never held entries at the cut"
            held_jobs = {(await redis.xrange(stream, e["message_id"], e["message_id"]))[0][1][b"job"].decode()
                         for e in held}
            os.kill(w1.proc.pid, signal.SIGCONT)

            # w2 claims w1's entries after the idle timeout and finishes everything; the API node
            # (another host) streams a held job's events to the end.
            seen = await events(http, api, sorted(held_jobs)[0])
            assert seen[-1][0] == "done" and len(seen[-1][1]["artifacts"]) == 4, seen[-1]
            for job_id in accepted:
                await _until(lambda: _done(http, api, job_id), 60, f"job {job_id}")
            assert await _metric(http, w2.url, "aigc_worker_claimed_total") >= 1

            # The link comes back: w1's hung connections carry on; whatever it commits now was
            # recorded by w2 already, so it adds no row and announces nothing.
            lab.heal("w1")
            conn = await asyncpg.connect(pg_url)
            try:
                async def w1_trace() -> bool:  # (TCP retransmits after its backoff: seconds)
                    # its late commit found the outputs recorded; or it had committed just before
                    # the cut (then its acknowledgement was what hung)
                    late = await _metric(http, w1.url, "aigc_worker_items_total", "duplicate")
                    first = await conn.fetchval("SELECT count(*) FROM aigc_outputs WHERE worker = 'w1' "
                                                "AND job = ANY($1::text[])", sorted(held_jobs))
                    return late + first >= 1
                await _until(w1_trace, 90, "w1's late commit")
                outputs = await conn.fetch("SELECT job, idx, worker FROM aigc_outputs")
                ledger = await conn.fetch("SELECT job, output_index, count(*) AS n FROM aigc_ledger "
                                          "WHERE rendition = '' AND signed = 0 GROUP BY job, output_index")
                files = await conn.fetchval("SELECT count(*) FROM aigc_files")
            finally:
                await conn.close()
            assert sorted((r["job"], r["idx"]) for r in outputs) == sorted((j, i) for j in accepted for i in range(4))
            assert len(ledger) == len(outputs) == files and {r["n"] for r in ledger} == {1}
            # each worker announced exactly the outputs it recorded: nothing twice
            for node in (w1, w2):
                assert await _metric(http, node.url, "aigc_worker_items_total", "done") == \
                    sum(r["worker"] == node.name for r in outputs)

            # ... and w1 works again: with w2 frozen, new jobs are w1's.
            os.kill(w2.proc.pid, signal.SIGSTOP)
            try:
                again = (await submit(http, api, {"command": "emoji", "options": {"prompt": "a cat"},
                                                   "seed": 99, "count": 2}))["id"]
                await _until(lambda: _done(http, api, again), 60, "a job after the partition")
            finally:
                os.kill(w2.proc.pid, signal.SIGCONT)
            conn = await asyncpg.connect(pg_url)
            try:
                assert {r["worker"] for r in await conn.fetch(
                    "SELECT worker FROM aigc_outputs WHERE job = $1", again)} == {"w1"}
            finally:
                await conn.close()
        await redis.aclose()
    finally:
        cluster.stop()


async def _done(http: aiohttp.ClientSession, api, job_id: str) -> bool:
    view = await get_job(http, api, job_id)
    assert view["status"] not in ("failed", "cancelled"), view
    return view["status"] == "done"


"""Two API nodes and three workers as separate processes on real Redis and PostgreSQL: jobs
spread over the workers; a worker killed (-9) mid-batch and an API node killed, and still every
accepted job finishes exactly once, with the pixels of a single-process run; the other API node
serves the killed one's job events."""
from __future__ import annotations

import asyncio
import io
import os
import signal
import time

import aiohttp
import asyncpg
import pytest
from PIL import Image
from redis.asyncio import Redis

from tests.scaleout.cluster import (
    AUTH, REDIS_URL, Cluster, drop_database, drop_keys, events, get_job, make_database, submit,
)

pytestmark = pytest.mark.slow
GROUP = "workers"


@pytest.fixture
async def cluster(tmp_path):
    import secrets

    c = Cluster(await make_database(), REDIS_URL, f"t{secrets.token_hex(5)}", tmp_path)
    yield c
    c.stop()
    await drop_keys(c.redis_url, c.prefix)
    await drop_database(c.database_url)


def pixels(png: bytes) -> bytes:
    return Image.open(io.BytesIO(png)).convert("RGBA").tobytes()


async def _pending_by_consumer(redis: Redis, stream: str) -> dict[str, int]:
    try:
        info = await redis.xpending(stream, GROUP)
    except Exception:  # noqa: BLE001 - the group is not there yet
        return {}
    return {c["name"].decode(): int(c["pending"]) for c in info.get("consumers") or []}


async def test_jobs_finish_exactly_once_across_worker_and_api_node_kills(cluster, engine_factory):
    api_a, api_b = cluster.api("api-a"), cluster.api("api-b")
    workers = {name: cluster.worker(name) for name in ("w1", "w2", "w3")}
    await cluster.ready(api_a, api_b, *workers.values())
    stream = f"{cluster.prefix}:gen:emoji"
    redis = Redis.from_url(cluster.redis_url)
    bodies = [{"command": "emoji", "options": {"prompt": f"a {word} cat"}, "seed": 100 + n, "count": 4,
               "idempotency_key": f"k{n}"} for n, word in enumerate(
        ["red", "blue", "green", "happy", "sad", "tiny", "big", "round"] * 2)]
    async with aiohttp.ClientSession() as http:
        accepted = []
        for n, body in enumerate(bodies):  # alternately on both nodes
            accepted.append((await submit(http, (api_a, api_b)[n % 2], body))["id"])
        # The same key again, on the other node: the same job, not a second one.
        again = await submit(http, api_b, bodies[0])
        assert again["id"] == accepted[0]

        # kill -9 a worker while it holds unacknowledged entries (mid-batch). It is frozen
        # first (SIGSTOP), so that it cannot acknowledge them between our look and the kill.
        victim, held_ids = None, []
        deadline = time.monotonic() + 30
        while victim is None and time.monotonic() < deadline:
            held = await _pending_by_consumer(redis, stream)
            name = next((n for n, c in held.items() if c > 0 and workers[n].proc.poll() is None), None)
            if name is None:
                await asyncio.sleep(0.02)
                continue
            os.kill(workers[name].proc.pid, signal.SIGSTOP)
            held_ids = [e["message_id"] for e in await redis.xpending_range(stream, GROUP, "-", "+", 1000, name)]
            if held_ids:
                victim = name
            else:
                os.kill(workers[name].proc.pid, signal.SIGCONT)
        assert victim is not None, "no worker ever held entries"
        held_jobs = {(await redis.xrange(stream, i, i))[0][1][b"job"].decode() for i in held_ids}
        workers[victim].kill9()
        # API node A dies too; B serves the events of A's jobs still in flight.
        a_jobs = accepted[0::2]
        live_on_a = [j for j in a_jobs if (await get_job(http, api_b, j))["status"] not in ("done", "failed")]
        api_a.kill9()
        watched = live_on_a[-1] if live_on_a else a_jobs[-1]
        seen = await events(http, api_b, watched)
        assert seen[-1][0] == "done" and seen[-1][1]["status"] == "done", seen[-1]
        assert len(seen[-1][1]["artifacts"]) == 4

        finals = {}
        deadline = time.monotonic() + 90
        for job_id in accepted:
            while True:
                view = await get_job(http, api_b, job_id)
                if view["status"] in ("done", "failed", "cancelled") or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            finals[job_id] = view
        assert {v["status"] for v in finals.values()} == {"done"}, \
            {k: (v["status"], v.get("error")) for k, v in finals.items() if v["status"] != "done"}

        # Exactly once: one journal row, one file and one ledger row per output.
        conn = await asyncpg.connect(cluster.database_url)
        try:
            outputs = await conn.fetch("SELECT job, idx, worker FROM aigc_outputs")
            # the labelled file (the signed copy has a row of its own: signed = 1)
            ledger = await conn.fetch("SELECT job, output_index, count(*) AS n FROM aigc_ledger "
                                      "WHERE rendition = '' AND signed = 0 GROUP BY job, output_index")
            signed = await conn.fetch("SELECT job, output_index, count(*) AS n FROM aigc_ledger "
                                      "WHERE rendition = '' AND signed = 1 GROUP BY job, output_index")
            files = await conn.fetchval("SELECT count(*) FROM aigc_files")
        finally:
            await conn.close()
        assert len(outputs) == len(accepted) * 4 == files
        assert {(r["job"], r["idx"]) for r in outputs} == {(j, i) for j in accepted for i in range(4)}
        assert len(ledger) == len(outputs) and {r["n"] for r in ledger} == {1}
        assert len(signed) == len(outputs) and {r["n"] for r in signed} == {1}  # the copy served, once
        # Spread over the workers, and the dead one's entries were claimed and redone by others.
        assert len({r["worker"] for r in outputs}) >= 2
        # The victim may have been frozen between its PostgreSQL commit (its jobs read "done") and
        # its acknowledgement: its entries are then claimed only after the idle timeout, which can
        # come after every job reads done. Wait for the stream to drain before counting claims.
        deadline = time.monotonic() + 60
        while (await redis.xpending(stream, GROUP))["pending"] and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert (await redis.xpending(stream, GROUP))["pending"] == 0, "entries still pending after 60 s"
        claimed = 0
        for name, node in workers.items():
            if name == victim:
                continue
            async with http.get(f"{node.url}/metrics") as r:
                text = await r.text()
            claimed += sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                           if line.startswith("aigc_worker_claimed_total{"))
        assert claimed >= 1
        assert await redis.xlen(stream) == 0  # every entry acknowledged and deleted

        # Any node serves the shared ledger: /verify knows a file, a display copy is recorded.
        art = finals[accepted[0]]["artifacts"][0]
        async with http.get(f"{api_b.url}{art['url']}", headers=AUTH) as r:
            png = await r.read()
        async with http.post(f"{api_b.url}/v1/verify", data=png, headers=AUTH) as r:
            report = await r.json()
            assert r.status == 200 and report["finding"] == "recorded" and report["ledger"], report
        async with http.post(f"{api_b.url}/v1/jobs/{accepted[0]}/display", headers=AUTH,
                             json={"propagator": "test", "propagate_id": "m1"}) as r:
            assert r.status == 200, await r.text()
        conn = await asyncpg.connect(cluster.database_url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM aigc_ledger WHERE job=$1 AND rendition <> ''",
                                       accepted[0]) == 1
        finally:
            await conn.close()

        # The same pixels as a single-process engine, for the jobs the dead worker held.
        single = await engine_factory(plugins_enabled=["emoji"], generator_processes=False)
        for job_id in sorted(held_jobs)[:3]:
            body = next(b for b, j in zip(bodies, accepted) if j == job_id)
            local = await single.submit({k: v for k, v in body.items() if k != "idempotency_key"},
                                        expect=200, params={"wait": "120"})
            for remote_art, local_art in zip(finals[job_id]["artifacts"], local["artifacts"]):
                async with http.get(f"{api_b.url}{remote_art['url']}", headers=AUTH) as r:
                    assert r.status == 200
                    remote_png = await r.read()
                lr = await single.client.get(local_art["url"], headers=single.headers)
                assert pixels(remote_png) == pixels(await lr.read())
    await redis.aclose()

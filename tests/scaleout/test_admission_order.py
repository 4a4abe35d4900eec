"""Admission writes a job's journal row and its stream entries at the same time
(engine/scaleout/ingress.py), so a worker may hold an entry whose row is not there yet. On real
Redis, PostgreSQL and processes: an entry whose row lands late still finishes its job exactly
once; an entry whose job was never journaled is dropped and records nothing; and two API nodes
racing one idempotency key make one job and leave no stray entry behind."""
from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time

import aiohttp
import asyncpg
import pytest
from redis.asyncio import Redis

from engine.journal import JournalEntry
from engine.scaleout.database import open_pool
from engine.scaleout.journal import PgJournal
from engine.scaleout.streams import GROUP, job_payload
from tests.scaleout.cluster import AUTH, REDIS_URL, Cluster, drop_database, drop_keys, get_job, make_database, submit

pytestmark = pytest.mark.slow


@pytest.fixture
async def cluster(tmp_path):
    c = Cluster(await make_database(), REDIS_URL, f"t{secrets.token_hex(5)}", tmp_path,
                env_extra={"AIGC_CLAIM_IDLE_MS": "600"})
    yield c
    c.stop()
    await drop_keys(c.redis_url, c.prefix)
    await drop_database(c.database_url)


async def until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        await asyncio.sleep(0.05)


async def test_entries_ahead_of_their_journal_row(cluster):
    api, worker = cluster.api("api"), cluster.worker("w1")
    await cluster.ready(api, worker)
    stream = f"{cluster.prefix}:gen:emoji"
    redis = Redis.from_url(cluster.redis_url)
    pool = await open_pool(cluster.database_url)
    journal = PgJournal(pool, asyncio.get_running_loop())
    try:
        async with aiohttp.ClientSession() as http:
            model = (await submit(http, api, {"command": "emoji", "options": {"prompt": "a red fox"},
                                              "seed": 1}))["id"]
            await until(lambda: _status(http, api, model, "done"), 60, "a first job finishes")
        template = await journal.get(model)

        def job(seed: int) -> JournalEntry:
            return dataclasses.replace(template, id=secrets.token_hex(8), seed=seed, status="queued",
                                       created=time.time(), started=None, finished=None, outputs={})

        late, never = job(2), job(3)
        for e in (late, never):  # as an API node writes them; neither row is there yet
            await redis.xadd(stream, {"job": e.id, "i": "0", "e": job_payload(e)})
        await until(lambda: _logged(worker, "held until claimed"), 60, "the worker finds no rows and holds both")
        await journal.accept(late)
        await until(lambda: _job_done(pool, late.id), 30, "the late row's job finishes (claimed, redone)")
        await until(lambda: _stream_empty(redis, stream), 30, "both entries acknowledged")
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT outputs_done FROM aigc_jobs WHERE id=$1", late.id) == 1
            assert await conn.fetchval("SELECT count(*) FROM aigc_outputs WHERE job=$1", late.id) == 1
            ledger = "SELECT count(*) FROM aigc_ledger WHERE job=$1"  # as many rows as a job admitted normally
            assert await conn.fetchval(ledger, late.id) == await conn.fetchval(ledger, model) > 0
            for table in ("aigc_jobs WHERE id=$1", "aigc_outputs WHERE job=$1", "aigc_files WHERE job=$1",
                          "aigc_ledger WHERE job=$1"):
                assert await conn.fetchval(f"SELECT count(*) FROM {table}", never.id) == 0, table
    finally:
        await pool.close()
        await redis.aclose()


async def test_two_nodes_racing_one_idempotency_key_make_one_job(cluster):
    a, b = cluster.api("api-a"), cluster.api("api-b")
    worker = cluster.worker("w1")
    await cluster.ready(a, b, worker)
    stream = f"{cluster.prefix}:gen:emoji"
    redis = Redis.from_url(cluster.redis_url)
    try:
        async with aiohttp.ClientSession() as http:
            ids = []
            for k in range(6):
                body = {"command": "emoji", "options": {"prompt": "a blue whale"}, "seed": 10 + k, "count": 2,
                        "idempotency_key": f"race-{k}"}
                got = await asyncio.gather(*(_post(http, node, body) for node in (a, b)))
                accepted = {data["id"] for status, data in got if status == 202}
                assert len(accepted) == 1, got  # both answers name one job (or one asks to retry: 409)
                assert all(status == 202 or (status == 409 and data["error"]["field"] == "idempotency_key")
                           for status, data in got), got
                ids += accepted
            for job_id in ids:
                await until(lambda: _status(http, a, job_id, "done"), 60, f"job {job_id} finishes")
        await until(lambda: _stream_empty(redis, stream), 30, "no stray entry left")
        conn = await asyncpg.connect(cluster.database_url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM aigc_jobs") == 6
            assert await conn.fetchval("SELECT count(*) FROM aigc_outputs") == 12
        finally:
            await conn.close()
    finally:
        await redis.aclose()


async def _post(http: aiohttp.ClientSession, node, body: dict) -> tuple[int, dict]:
    async with http.post(f"{node.url}/v1/jobs", json=body, headers=AUTH) as r:
        return r.status, await r.json()


async def _status(http: aiohttp.ClientSession, node, job_id: str, want: str) -> bool:
    return (await get_job(http, node, job_id))["status"] == want


async def _job_done(pool: asyncpg.Pool, job_id: str) -> bool:
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT status FROM aigc_jobs WHERE id=$1", job_id) == "done"


async def _logged(node, text: str) -> bool:
    return text in node.log.read_text(errors="replace")


async def _stream_empty(redis: Redis, stream: str) -> bool:
    pending = await redis.xpending(stream, GROUP)
    return await redis.xlen(stream) == 0 and int(pending["pending"]) == 0

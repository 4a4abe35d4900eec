"""A worker's commit (one statement, engine/scaleout/worker.py) on real PostgreSQL: two workers
finishing outputs of one job at the same moment still make it 'done' exactly once; a job
finished (cancelled) while its batch ran records nothing; and the job a stream entry carries is
the journal's own, so a first run (from the entry) and a redo (from the journal) make the same
bytes. Also: a job accepted without waiting for its flush is there, and made durable, before
anyone is told of it."""
from __future__ import annotations

import asyncio
import time

import pytest

from engine.artifacts import StoredArtifact
from engine.journal import JournalEntry
from engine.scaleout.database import open_pool
from engine.scaleout.journal import PgJournal
from engine.scaleout.streams import _PAYLOAD_FIELDS, entry_from_payload, job_payload
from engine.scaleout.worker import commit_batch
from tests.scaleout.cluster import drop_database, make_database


@pytest.fixture
async def pg():
    url = await make_database()
    pool = await open_pool(url)
    try:
        yield pool, PgJournal(pool, asyncio.get_running_loop())
    finally:
        await pool.close()
        await drop_database(url)


def entry(job_id: str, count: int) -> JournalEntry:
    return JournalEntry(job_id, None, {"command": "emoji", "options": {"prompt": "a ☃ cat", "scale": 0.1 + 0.2},
                                       "requester": {"platform": "discord", "guild": "7", "user": "9"}},
                        "emoji", {"prompt": "a ☃ cat", "scale": 0.1 + 0.2, "quality": "draft"}, 2**40 + 3, count,
                        "generate", None, {}, True, "queued", time.time())


def art(job_id: str, index: int) -> str:
    return f'{{"id": "{job_id}-{index}", "index": {index}}}'


def file(job_id: str, index: int) -> tuple[str, int, str, StoredArtifact]:
    return job_id, index, f"{job_id}-{index}", StoredArtifact(f"{job_id}-{index}", b"png", "image/png", "a.png", "0" * 64)


async def commit(conn, job_id: str, index: int, worker: str):
    return await commit_batch(conn, [(job_id, index, art(job_id, index))], {}, [file(job_id, index)], [],
                              worker=worker, now=time.time(), started=time.time())


async def test_two_workers_finishing_one_job_at_once_make_it_done(pg):
    pool, journal = pg
    await journal.accept(entry("j1", 2), flush=False)
    async with pool.acquire() as a, pool.acquire() as b, pool.acquire() as watch:
        tx = a.transaction()
        await tx.start()
        first = await commit(a, "j1", 0, "w1")  # uncommitted: holds the job's row
        assert [(r["kind"], r["idx"]) for r in first] == [("new", 0)]
        second = asyncio.create_task(commit(b, "j1", 1, "w2"))
        while not await watch.fetchval(  # w2's statement waits for w1's row lock
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"):
            assert not second.done(), second.result()
            await asyncio.sleep(0.01)
        await tx.commit()
        got = await second
    assert sorted((r["kind"], r["job"]) for r in got) == [("done", "j1"), ("new", "j1")]
    e = await journal.get("j1")
    assert e.status == "done" and sorted(e.outputs) == [0, 1] and e.finished is not None
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT outputs_done FROM aigc_jobs WHERE id='j1'") == 2
        assert await conn.fetchval("SELECT count(*) FROM aigc_files WHERE job='j1'") == 2
        # a redo of an output recorded already: nothing new, nothing announced
        assert await commit(conn, "j1", 1, "w3") == []
        assert await conn.fetchval("SELECT count(*) FROM aigc_outputs WHERE job='j1'") == 2


async def test_a_job_finished_while_its_batch_ran_records_nothing(pg):
    pool, journal = pg
    await journal.accept(entry("j2", 1))
    assert await journal.update_status("j2", "cancelled", finished=time.time())
    async with pool.acquire() as conn:
        assert await commit(conn, "j2", 0, "w1") == []
        assert await conn.fetchval("SELECT count(*) FROM aigc_outputs") == 0
        assert await conn.fetchval("SELECT count(*) FROM aigc_files") == 0
    assert (await journal.get("j2")).status == "cancelled"


async def test_the_job_a_stream_entry_carries_is_the_journals(pg):
    _, journal = pg
    e = entry("j3", 4)
    await journal.accept(e, flush=False)
    assert await journal.make_durable("j3")
    stored, carried = await journal.get("j3"), entry_from_payload("j3", job_payload(e).encode())
    assert carried is not None
    for name in _PAYLOAD_FIELDS:
        assert getattr(carried, name) == getattr(stored, name), name
    assert (carried.status, carried.outputs, carried.terminal) == ("queued", {}, False)
    assert entry_from_payload("j3", b"{not json") is None and entry_from_payload("j3", None) is None
    assert not await journal.make_durable("never-accepted")


async def test_a_job_without_a_journal_row_is_reported_missing_and_records_nothing(pg):
    pool, journal = pg
    await journal.accept(entry("j4", 1))
    async with pool.acquire() as conn:
        got = await commit_batch(conn, [("j4", 0, art("j4", 0)), ("ghost", 0, art("ghost", 0))],
                                 {"ghost2": '{"code": "generation_failed", "message": "x"}'},
                                 [file("j4", 0), file("ghost", 0)], [], worker="w1", now=time.time(),
                                 started=time.time())
        assert sorted((r["kind"], r["job"]) for r in got) == [
            ("done", "j4"), ("missing", "ghost"), ("missing", "ghost2"), ("new", "j4")]
        assert await conn.fetchval("SELECT count(*) FROM aigc_outputs WHERE job='ghost'") == 0
        assert await conn.fetchval("SELECT count(*) FROM aigc_files WHERE job='ghost'") == 0
    assert (await journal.get("j4")).status == "done"


async def test_a_commit_looks_jobs_up_by_key_after_the_table_grew(pg):
    """Plans cached while ``aigc_jobs`` was tiny (a new database, no ANALYZE since: autovacuum
    off or behind) must not turn every commit's foreign-key checks into scans of the whole table
    once it holds thousands of jobs (open_pool: enable_seqscan off)."""
    pool, journal = pg
    await journal.accept(entry("warm", 1), flush=False)
    async with pool.acquire() as conn:
        await commit(conn, "warm", 0, "w1")  # plans made and cached on a one-row table
        await conn.execute(
            "INSERT INTO aigc_jobs (id, request, command, options, seed, count, action, action_options, "
            "visible_mark, status, created, updated) SELECT 'bulk' || g, '{}', 'emoji', '{}', g, 1, 'generate', "
            "'{}', true, 'done', 0, 0 FROM generate_series(1, 3000) AS g")
        await journal.accept(entry("late", 1), flush=False)
        scans = "SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'aigc_jobs'"
        async with conn.transaction():  # (the view also counts what is not yet flushed from before)
            before = await conn.fetchval(scans)
            got = await commit(conn, "late", 0, "w1")
            after = await conn.fetchval(scans)
    assert {r["kind"] for r in got} == {"new", "done"}
    assert after - before == 0

"""The provenance ledger in PostgreSQL keeps the SQLite ledger's contract: rows validated the same
way, a repeat is a no-op, valid rows are written beside invalid ones (which are named), lookups
by bytes, content and job, and no client can UPDATE or DELETE a row (a trigger refuses)."""
from __future__ import annotations

import asyncio

import asyncpg
import pytest

from engine.provenance.ledger import LedgerError
from engine.scaleout.database import open_pool
from engine.scaleout.ledger import PgProvenanceLedger
from tests.scaleout.cluster import drop_database, make_database


def meta(job: str, index: int) -> dict[str, str]:
    return {"job": job, "index": str(index), "command": "emoji", "model": "emoji-dcgan",
            "created": "2026-01-01T00:00:00+00:00"}


async def test_the_postgresql_ledger_keeps_the_sqlite_ledgers_contract():
    url = await make_database()
    pool = await open_pool(url)
    try:
        ledger = PgProvenanceLedger(pool, asyncio.get_running_loop())
        where = {"platform": "discord", "guild": "1", "mime": "text/plain"}
        good = [(b"file-a", meta("job1", 0), where), (b"file-b", meta("job1", 1), where)]
        bad = (b"file-c", {**meta("job1", 2), "index": "x"}, where)
        with pytest.raises(LedgerError, match="meta.index"):
            await asyncio.to_thread(ledger.record_meta_many, [*good, bad])
        assert await asyncio.to_thread(ledger.record_meta_many, good) == 0  # written already: no-op
        assert await asyncio.to_thread(len, ledger) == 2
        entry = await asyncio.to_thread(ledger.record_meta, b"file-a", meta("job1", 0), **where)
        assert (entry.job, entry.index, entry.guild) == ("job1", 0, "1")
        import hashlib

        found = await asyncio.to_thread(ledger.lookup, hashlib.sha256(b"file-b").hexdigest())
        assert [(e.job, e.index) for e in found] == [("job1", 1)]
        assert [e.index for e in await asyncio.to_thread(ledger.lookup_job, "job1")] == [0, 1]
        with pytest.raises(RuntimeError, match="event loop"):  # would deadlock: refused
            ledger.lookup_job("job1")
        async with pool.acquire() as conn:
            for sql in ("UPDATE aigc_ledger SET guild='2'", "DELETE FROM aigc_ledger"):
                with pytest.raises(asyncpg.RaiseError, match="append-only"):
                    await conn.execute(sql)
    finally:
        await pool.close()
        await drop_database(url)

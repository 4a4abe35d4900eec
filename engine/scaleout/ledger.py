"""The provenance ledger in PostgreSQL (table ``aigc_ledger``, append-only by trigger): the
SQLite ledger's API, so ``/verify``, display copies and signed copies work unchanged on any node.

The rows are validated and hashed exactly as the SQLite ledger does (its ``_row``); the
synchronous methods are called from worker threads (never the event loop) and run their
query on the loop given at construction."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Coroutine

import asyncpg

from engine.provenance.ledger import (
    _COLUMNS, LedgerEntry, LedgerError, LedgerRecord, ProvenanceLedger, _entry, _meta_fields,
)

_INSERT = (f"INSERT INTO aigc_ledger ({_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14) "
           "ON CONFLICT DO NOTHING")
# the ledger's columns (_COLUMNS, in order) as PostgreSQL array types: rows go in set-based, one
# array parameter per column (unnest_rows), here and in the worker's one-statement commit
COLUMNS = _COLUMNS
_ARRAY_TYPES = ("text", "text", "text", "int", "text", "text", "text", "float8", "text", "text", "text", "float8",
                "text", "int")
assert len(_ARRAY_TYPES) == len(_COLUMNS.split(",")), "one array type per ledger column"
JOB_COLUMN = [c.strip() for c in _COLUMNS.split(",")].index("job")  # a row tuple's job


def unnest_rows(first: int) -> str:
    """``unnest($first::text[], ...)`` over the ledger's columns, parameters numbered from ``first``."""
    return "unnest(" + ", ".join(f"${first + k}::{t}[]" for k, t in enumerate(_ARRAY_TYPES)) + ")"


def row_columns(rows: list[tuple]) -> list[list]:
    """Ledger rows as the column arrays ``unnest_rows`` takes (empty arrays for no rows)."""
    return [list(col) for col in zip(*rows)] if rows else [[] for _ in _ARRAY_TYPES]


_INSERT_MANY = (f"WITH new AS (INSERT INTO aigc_ledger ({_COLUMNS}) SELECT * FROM {unnest_rows(1)} "
                "ON CONFLICT DO NOTHING RETURNING 1) SELECT count(*) FROM new")
LEDGER_TIMEOUT_S = 30.0


class PgProvenanceLedger(ProvenanceLedger):
    def __init__(self, pool: asyncpg.Pool, loop: asyncio.AbstractEventLoop) -> None:
        # Not the SQLite ledger's __init__ (it opens a file): only what _row and the readers use.
        self.path = Path("postgresql:aigc_ledger")
        self.readonly = False
        self._columns = _COLUMNS
        self.pool, self.loop = pool, loop

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:  # would wait for itself forever
            coro.close()
            raise RuntimeError("PgProvenanceLedger's blocking methods must not run on the event loop")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(LEDGER_TIMEOUT_S)

    # ---- rows (pure, any thread) -------------------------------------------------------

    def rows(self, records: list[LedgerRecord]) -> list[tuple]:
        """Validated rows for ``records``; LedgerError names every bad one."""
        rows, bad = self._split(records)
        if bad:
            raise LedgerError("; ".join(bad))
        return rows

    def _split(self, records: list[LedgerRecord]) -> tuple[list[tuple], list[str]]:
        rows, bad = [], []
        for data, meta, where in records:
            try:
                rows.append(self._row(data, sha256=None, **_meta_fields(meta), **where))
            except LedgerError as e:
                bad.append(f"{meta.get('job', '?')}/{meta.get('index', '?')}: {e}")
        return rows, bad

    @staticmethod
    async def insert(conn: asyncpg.Connection, rows: list[tuple]) -> int:
        """Insert ``rows`` in one statement (inside the caller's transaction); how many were new."""
        if not rows:
            return 0
        return int(await conn.fetchval(_INSERT_MANY, *row_columns(rows)))

    # ---- the SQLite ledger's API (blocking: worker threads) ----------------------------

    def record(self, data: bytes | None = None, **kw: Any) -> LedgerEntry:
        row = self._row(data, sha256=kw.pop("sha256", None), **kw)

        async def go() -> asyncpg.Record:
            async with self.pool.acquire() as conn:
                await conn.execute(_INSERT, *row)
                return await conn.fetchrow(f"SELECT {_COLUMNS} FROM aigc_ledger WHERE sha256=$1 AND job=$2 "
                                           "AND output_index=$3", row[0], row[2], row[3])
        return _entry(tuple(self._run(go())))

    def record_meta_many(self, records: list[LedgerRecord]) -> int:
        """As the SQLite ledger: the valid records in one transaction, then a LedgerError
        naming the invalid ones (if any). Returns how many rows were new."""
        rows, bad = self._split(records)

        async def go() -> int:
            async with self.pool.acquire() as conn, conn.transaction():
                return await self.insert(conn, rows)
        written = int(self._run(go()))
        if bad:
            raise LedgerError("; ".join(bad))
        return written

    def _select(self, where: str, arg: str) -> list[LedgerEntry]:
        async def go() -> list[asyncpg.Record]:
            async with self.pool.acquire() as conn:
                return await conn.fetch(f"SELECT {_COLUMNS} FROM aigc_ledger WHERE {where}", arg)
        return [_entry(tuple(r)) for r in self._run(go())]

    def lookup(self, sha256: str) -> list[LedgerEntry]:
        return self._select("sha256=$1 ORDER BY id", sha256.lower())

    def lookup_content(self, content_sha256: str) -> list[LedgerEntry]:
        return self._select("content_sha256=$1 ORDER BY id", content_sha256)

    def lookup_job(self, job: str) -> list[LedgerEntry]:
        return self._select("job=$1 ORDER BY output_index, id", job)

    def __len__(self) -> int:
        async def go() -> int:
            async with self.pool.acquire() as conn:
                return int(await conn.fetchval("SELECT count(*) FROM aigc_ledger"))
        return self._run(go())

    def close(self) -> None:  # the pool is closed by its owner
        pass

"""Durable record of accepted jobs, so an engine crash loses none.

A job is fully described by (command, options, seed, action, source), so the journal keeps
descriptions, never tensors or files: on start-up unfinished jobs are queued again and give
the same result; finished ones still serve as parents of follow-up actions.
SQLite (stdlib) in WAL mode, used from one dedicated thread so the event loop never blocks.
"""
from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT UNIQUE,
    request TEXT NOT NULL,
    command TEXT NOT NULL,
    options TEXT NOT NULL,
    seed INTEGER NOT NULL,
    count INTEGER NOT NULL,
    action TEXT NOT NULL,
    source TEXT,
    action_options TEXT NOT NULL,
    visible_mark INTEGER NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
"""


@dataclass(frozen=True)
class JournalEntry:
    id: str
    idempotency_key: str | None
    request: dict[str, Any]
    command: str
    options: dict[str, Any]
    seed: int
    count: int
    action: str
    source: tuple[int, int] | None
    action_options: dict[str, Any]
    visible_mark: bool
    status: str
    created: float


class Journal:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="journal")
        self._db: sqlite3.Connection | None = None
        self._pool.submit(self._open).result()

    def _open(self) -> None:
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    async def _call(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    # ---- writes ---------------------------------------------------------------------

    async def accept(self, e: JournalEntry) -> None:
        await self._call(self._accept, e)

    def _accept(self, e: JournalEntry) -> None:
        assert self._db is not None
        if e.idempotency_key:  # a key whose job finished before a restart is given to the new job
            self._db.execute("UPDATE jobs SET idempotency_key=NULL WHERE idempotency_key=?",
                             (e.idempotency_key,))
        self._db.execute(
            "INSERT OR IGNORE INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (e.id, e.idempotency_key, json.dumps(e.request), e.command, json.dumps(e.options),
             e.seed, e.count, e.action, json.dumps(e.source) if e.source else None,
             json.dumps(e.action_options), int(e.visible_mark), e.status, e.created, time.time()))

    def set_status(self, job_id: str, status: str) -> None:
        """Fire and forget: ordered after the job's accept by the single writer thread."""
        self._pool.submit(self._set_status, job_id, status)

    def _set_status(self, job_id: str, status: str) -> None:
        assert self._db is not None
        self._db.execute("UPDATE jobs SET status=?, updated=? WHERE id=?", (status, time.time(), job_id))

    async def prune(self, older_than_s: float) -> int:
        return await self._call(self._prune, older_than_s)

    def _prune(self, older_than_s: float) -> int:
        assert self._db is not None
        cur = self._db.execute("DELETE FROM jobs WHERE status IN ('done','failed','cancelled') "
                               "AND updated < ?", (time.time() - older_than_s,))
        return cur.rowcount

    # ---- reads ----------------------------------------------------------------------

    async def get(self, job_id: str) -> JournalEntry | None:
        rows = await self._call(self._select, "id=?", (job_id,))
        return rows[0] if rows else None

    async def by_idempotency_key(self, key: str) -> JournalEntry | None:
        rows = await self._call(self._select, "idempotency_key=?", (key,))
        return rows[0] if rows else None

    async def unfinished(self) -> list[JournalEntry]:
        return await self._call(self._select, "status IN ('queued','running') ORDER BY created", ())

    def _select(self, where: str, args: tuple) -> list[JournalEntry]:
        assert self._db is not None
        cur = self._db.execute(
            "SELECT id, idempotency_key, request, command, options, seed, count, action, source, "
            f"action_options, visible_mark, status, created FROM jobs WHERE {where}", args)
        return [JournalEntry(r[0], r[1], json.loads(r[2]), r[3], json.loads(r[4]), r[5], r[6], r[7],
                             tuple(json.loads(r[8])) if r[8] else None, json.loads(r[9]),
                             bool(r[10]), r[11], r[12]) for r in cur.fetchall()]

    def close(self) -> None:
        def _close() -> None:
            if self._db:
                self._db.close()
        self._pool.submit(_close).result()
        self._pool.shutdown(wait=True)

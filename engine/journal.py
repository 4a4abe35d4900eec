"""Durable record of accepted jobs, so an engine crash loses none.

A job is fully described by (command, options, seed, action, source), so the journal keeps
descriptions, never tensors or files: on start-up unfinished jobs are queued again and give
the same result; finished ones still serve as parents of follow-up actions, answer
GET /v1/jobs/{id} and keep their idempotency key for ``job_ttl_s`` (their files are made again
on demand, identical by determinism).

Each output is written here (``record_outputs``, from the finishing stage) *before* its result
is delivered, so a crash never makes a served output run again: replay starts a job at its
first unrecorded output, and a job whose outputs are all recorded is simply done.
SQLite (stdlib) in WAL mode, used from one dedicated thread so the event loop never blocks.
"""
from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
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
CREATE TABLE IF NOT EXISTS outputs (
    job TEXT NOT NULL,
    idx INTEGER NOT NULL,
    artifact TEXT NOT NULL,
    PRIMARY KEY (job, idx)
);
"""
# Columns added after the first release; older journals are upgraded in place.
ADDED_COLUMNS = {"model": "TEXT", "error": "TEXT", "started": "REAL", "finished": "REAL"}


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
    model: dict[str, str] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    started: float | None = None
    finished: float | None = None
    outputs: dict[int, dict[str, Any]] = field(default_factory=dict)  # index -> ArtifactView JSON

    @property
    def terminal(self) -> bool:
        return self.status in ("done", "failed", "cancelled")


_JOB_COLUMNS = ("id, idempotency_key, request, command, options, seed, count, action, source, "
                "action_options, visible_mark, status, created, model, error, started, finished")


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
        have = {r[1] for r in self._db.execute("PRAGMA table_info(jobs)")}
        for name, kind in ADDED_COLUMNS.items():
            if name not in have:
                self._db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")

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
            f"INSERT OR IGNORE INTO jobs ({_JOB_COLUMNS}, updated) VALUES ({','.join('?' * 18)})",
            (e.id, e.idempotency_key, json.dumps(e.request), e.command, json.dumps(e.options),
             e.seed, e.count, e.action, json.dumps(e.source) if e.source else None,
             json.dumps(e.action_options), int(e.visible_mark), e.status, e.created,
             json.dumps(e.model), json.dumps(e.error) if e.error else None, e.started, e.finished,
             time.time()))

    def set_status(self, job_id: str, status: str, *, error: dict[str, Any] | None = None,
                   started: float | None = None, finished: float | None = None) -> None:
        """Fire and forget: ordered after the job's accept by the single writer thread. Nothing
        is lost if a crash comes first: the outputs recorded already say what was done."""
        self._pool.submit(self._set_status, job_id, status, error, started, finished)

    def _set_status(self, job_id: str, status: str, error: dict[str, Any] | None,
                    started: float | None, finished: float | None) -> None:
        assert self._db is not None
        self._db.execute("UPDATE jobs SET status=?, error=?, started=coalesce(?, started), "
                         "finished=coalesce(?, finished), updated=? WHERE id=?",
                         (status, json.dumps(error) if error else None, started, finished, time.time(), job_id))

    def record_outputs(self, job_id: str, outputs: dict[int, dict[str, Any]]) -> None:
        """Durably note finished outputs (index -> ArtifactView JSON) before they are delivered.
        Blocks the calling thread (a finishing worker, never the event loop) until committed."""
        if outputs:
            self._pool.submit(self._record_outputs, job_id, outputs).result()

    def _record_outputs(self, job_id: str, outputs: dict[int, dict[str, Any]]) -> None:
        assert self._db is not None
        with self._db:  # one transaction per batch of one job
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO outputs VALUES (?,?,?)",
                                 [(job_id, i, json.dumps(a)) for i, a in outputs.items()])

    async def prune(self, older_than_s: float) -> int:
        return await self._call(self._prune, older_than_s)

    def _prune(self, older_than_s: float) -> int:
        assert self._db is not None
        cutoff = time.time() - older_than_s
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM outputs WHERE job IN (SELECT id FROM jobs WHERE status IN "
                             "('done','failed','cancelled') AND updated < ?)", (cutoff,))
            cur = self._db.execute("DELETE FROM jobs WHERE status IN ('done','failed','cancelled') "
                                   "AND updated < ?", (cutoff,))
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
        rows = self._db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE {where}", args).fetchall()
        out = []
        for r in rows:
            done = self._db.execute("SELECT idx, artifact FROM outputs WHERE job=?", (r[0],)).fetchall()
            out.append(JournalEntry(
                r[0], r[1], json.loads(r[2]), r[3], json.loads(r[4]), r[5], r[6], r[7],
                tuple(json.loads(r[8])) if r[8] else None, json.loads(r[9]), bool(r[10]), r[11], r[12],
                model=json.loads(r[13]) if r[13] else {}, error=json.loads(r[14]) if r[14] else None,
                started=r[15], finished=r[16], outputs={i: json.loads(a) for i, a in done}))
        return out

    def close(self) -> None:
        def _close() -> None:
            if self._db:
                self._db.close()
        self._pool.submit(_close).result()
        self._pool.shutdown(wait=True)

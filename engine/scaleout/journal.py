"""The job journal in PostgreSQL: the SQLite Journal's API (engine/journal.py), shared by every
API node and worker, so that any node answers any job and a job outlives the node that took it.

Methods a thread calls (``record_outputs``) run on the event loop given at construction."""
from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import asyncpg

from engine.admission import DuplicateKey
from engine.journal import JournalEntry

log = logging.getLogger("aigc.engine.scaleout")
TERMINAL = ("done", "failed", "cancelled")
_COLUMNS = ("id, idempotency_key, request, command, options, seed, count, action, source, "
            "action_options, visible_mark, status, created, model, error, started, finished")


class PgJournal:
    def __init__(self, pool: asyncpg.Pool, loop: asyncio.AbstractEventLoop) -> None:
        self.pool, self.loop = pool, loop
        self._pending: set[asyncio.Task] = set()

    # ---- writes ---------------------------------------------------------------------

    async def accept(self, e: JournalEntry, *, flush: bool = True, conn: asyncpg.Connection | None = None) -> None:
        """Insert a new job. ``flush=False``: commit without waiting for the WAL flush (the row
        is visible at once, durable a moment later); whoever acknowledges the job to a caller
        must then call ``make_durable`` first, unless a later synchronous commit (a worker's
        results, a status change) already happened: the WAL is flushed in order, so that
        commit's flush carries this row too. ``conn``: a connection the caller holds (else one
        from the pool)."""
        if conn is None:
            async with self.pool.acquire() as conn:
                return await self.accept(e, flush=flush, conn=conn)
        # set_config(..., true) holds for this statement's own (implicit) transaction only;
        # PostgreSQL reads synchronous_commit when that transaction commits.
        off = "" if flush else ", (SELECT set_config('synchronous_commit', 'off', true)) AS s"
        done = await conn.fetchval(
            f"INSERT INTO aigc_jobs ({_COLUMNS}, updated) SELECT "
            "$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18 "
            f"FROM (SELECT 1) AS one{off} ON CONFLICT DO NOTHING RETURNING id",
            e.id, e.idempotency_key, json.dumps(e.request), e.command, json.dumps(e.options), e.seed,
            e.count, e.action, json.dumps(e.source) if e.source else None, json.dumps(e.action_options),
            e.visible_mark, e.status, e.created, json.dumps(e.model), json.dumps(e.error) if e.error else None,
            e.started, e.finished, time.time())
        if done is None and e.idempotency_key:
            raise DuplicateKey(e.idempotency_key)

    async def make_durable(self, job_id: str) -> bool:
        """A synchronous commit after the job's own (it touches the job's row, so it also says
        whether the row is there): once it returns True, the job survives a crash of
        PostgreSQL's host. False: the job is not in the journal."""
        async with self.pool.acquire() as conn:
            return await conn.fetchval("UPDATE aigc_jobs SET updated = updated WHERE id=$1 RETURNING id",
                                       job_id) is not None

    async def forget(self, job_id: str) -> None:
        """Remove a job that was never acknowledged to anyone (its queueing failed)."""
        async with self.pool.acquire() as conn:
            await conn.execute("DELETE FROM aigc_jobs WHERE id=$1 AND status='queued'", job_id)

    def set_status(self, job_id: str, status: str, *, error: dict[str, Any] | None = None,
                   started: float | None = None, finished: float | None = None) -> None:
        """Fire and forget (event loop). A finished job's status is never overwritten: the
        first node to finish it (a worker, a cancel) wins."""
        task = self.loop.create_task(self.update_status(job_id, status, error=error, started=started,
                                                        finished=finished))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def update_status(self, job_id: str, status: str, *, error: dict[str, Any] | None = None,
                            started: float | None = None, finished: float | None = None) -> bool:
        """True when this call changed the job (it was not finished yet)."""
        try:
            async with self.pool.acquire() as conn:
                row = await conn.fetchval(
                    "UPDATE aigc_jobs SET status=$2, error=coalesce($3::jsonb, error), "
                    "started=coalesce(started, $4), finished=coalesce(finished, $5), updated=$6 "
                    "WHERE id=$1 AND status NOT IN ('done','failed','cancelled') RETURNING id",
                    job_id, status, json.dumps(error) if error else None, started, finished, time.time())
            return row is not None
        except (OSError, asyncpg.PostgresError):
            log.exception("journal status write failed", extra={"job": job_id})
            return False

    def record_outputs(self, job_id: str, outputs: dict[int, dict[str, Any]]) -> None:
        """Not used on a node of a scaled-out engine: workers record outputs with their files
        (engine/scaleout/worker.py), in one transaction."""
        raise NotImplementedError("outputs are recorded by workers")

    async def prune(self, older_than_s: float) -> int:
        async with self.pool.acquire() as conn:
            n = await conn.fetchval(
                "WITH gone AS (DELETE FROM aigc_jobs WHERE status IN ('done','failed','cancelled') "
                "AND updated < $1 RETURNING 1) SELECT count(*) FROM gone", time.time() - older_than_s)
        return int(n)

    # ---- reads ----------------------------------------------------------------------

    async def get(self, job_id: str) -> JournalEntry | None:
        rows = await self.select("id=$1", job_id)
        return rows[0] if rows else None

    async def many(self, ids: list[str]) -> dict[str, JournalEntry]:
        return {e.id: e for e in await self.select("id = ANY($1::text[])", ids)} if ids else {}

    async def by_idempotency_key(self, key: str) -> JournalEntry | None:
        rows = await self.select("idempotency_key=$1", key)
        return rows[0] if rows else None

    async def unfinished(self) -> list[JournalEntry]:
        return await self.select("status IN ('queued','running') ORDER BY created")

    async def select(self, where: str, *args: Any) -> list[JournalEntry]:
        """Jobs and their recorded outputs in one query (one round trip)."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS}, (SELECT jsonb_object_agg(o.idx, o.artifact) FROM aigc_outputs o "
                f"WHERE o.job = aigc_jobs.id) AS outputs FROM aigc_jobs WHERE {where}", *args)
        return [_entry(r, {int(k): v for k, v in json.loads(r["outputs"]).items()} if r["outputs"] else {})
                for r in rows]

    async def close(self) -> None:
        if self._pending:
            await asyncio.wait(self._pending, timeout=5)


def _entry(r: asyncpg.Record, outputs: dict[int, dict[str, Any]]) -> JournalEntry:
    return JournalEntry(
        r["id"], r["idempotency_key"], json.loads(r["request"]), r["command"], json.loads(r["options"]),
        r["seed"], r["count"], r["action"], tuple(json.loads(r["source"])) if r["source"] else None,
        json.loads(r["action_options"]), r["visible_mark"], r["status"], r["created"],
        model=json.loads(r["model"]) if r["model"] else {}, error=json.loads(r["error"]) if r["error"] else None,
        started=r["started"], finished=r["finished"], outputs=outputs)

"""Job records: who asked what where, the engine's answer, and where the result was posted."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Row

from bot.store.database import Database
from bot.store.records import ArtifactRecord, JobRecord, NewJob
from bot.store.schema import jobs

_UNSET: Any = object()


def _to_record(row: Row[Any]) -> JobRecord:
    m = row._mapping
    return JobRecord(
        id=m["id"], idempotency_key=m["idempotency_key"], engine_url=m["engine_url"],
        guild_id=m["guild_id"], channel_id=m["channel_id"], user_id=m["user_id"], command=m["command"],
        options=dict(m["options"] or {}), seed=m["seed"], count=m["count"], status=m["status"],
        artifacts=tuple(ArtifactRecord.from_dict(a) for a in (m["artifacts"] or [])),
        model=dict(m["model"] or {}), timings=dict(m["timings"] or {}), error=m["error"],
        result_channel_id=m["result_channel_id"], result_message_id=m["result_message_id"],
        parent_job_id=m["parent_job_id"], parent_action=m["parent_action"], parent_index=m["parent_index"],
        created_at=m["created_at"], updated_at=m["updated_at"], action_options=dict(m["action_options"] or {}),
    )


class JobRepository:
    def __init__(self, db: Database):
        self._db = db

    async def create(self, job: NewJob) -> JobRecord:
        """Record an accepted job. Idempotent: the same id or idempotency key returns the
        record already stored (a retried interaction must not make two records)."""
        now = self._db.now()
        values = dict(
            id=job.id, idempotency_key=job.idempotency_key, engine_url=job.engine_url, guild_id=job.guild_id,
            channel_id=job.channel_id, user_id=job.user_id, command=job.command, options=dict(job.options),
            seed=job.seed, count=job.count, status=job.status, artifacts=[], model={}, timings={}, error=None,
            parent_job_id=job.parent_job_id, parent_action=job.parent_action, parent_index=job.parent_index,
            action_options=dict(job.action_options) or None, created_at=now, updated_at=now,
        )
        async with self._db.write() as conn:
            await conn.execute(self._db.insert(jobs).values(values).on_conflict_do_nothing())
            cond = jobs.c.id == job.id
            if job.idempotency_key is not None:
                cond = cond | (jobs.c.idempotency_key == job.idempotency_key)
            row = (await conn.execute(select(jobs).where(cond).limit(1))).one()
        return _to_record(row)

    async def get(self, job_id: str) -> JobRecord | None:
        async with self._db.read() as conn:
            row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).one_or_none()
        return _to_record(row) if row else None

    async def get_by_idempotency_key(self, key: str) -> JobRecord | None:
        async with self._db.read() as conn:
            row = (await conn.execute(select(jobs).where(jobs.c.idempotency_key == key))).one_or_none()
        return _to_record(row) if row else None

    async def get_by_result_message(self, message_id: str) -> JobRecord | None:
        async with self._db.read() as conn:
            row = (await conn.execute(select(jobs).where(jobs.c.result_message_id == message_id).limit(1))).one_or_none()
        return _to_record(row) if row else None

    async def update(
        self, job_id: str, *, status: str | None = None, seed: int | None = None, count: int | None = None,
        artifacts: Iterable[ArtifactRecord | Mapping[str, Any]] | None = None,
        model: Mapping[str, Any] | None = None, timings: Mapping[str, Any] | None = None,
        error: Mapping[str, Any] | None = _UNSET, engine_url: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> JobRecord | None:
        """Apply what the engine reported; only the given fields change. None if unknown."""
        values: dict[str, Any] = {"updated_at": self._db.now()}
        if status is not None:
            values["status"] = status
        if seed is not None:
            values["seed"] = seed
        if count is not None:
            values["count"] = count
        if artifacts is not None:
            values["artifacts"] = [
                (a if isinstance(a, ArtifactRecord) else ArtifactRecord.from_dict(dict(a))).to_dict() for a in artifacts
            ]
        if model is not None:
            values["model"] = dict(model)
        if timings is not None:
            values["timings"] = dict(timings)
        if error is not _UNSET:
            values["error"] = dict(error) if error is not None else None
        if engine_url is not None:
            values["engine_url"] = engine_url
        if options is not None:
            values["options"] = dict(options)
        return await self._update(job_id, values)

    async def set_result_message(self, job_id: str, channel_id: str, message_id: str) -> JobRecord | None:
        return await self._update(job_id, {"result_channel_id": channel_id, "result_message_id": message_id,
                                           "updated_at": self._db.now()})

    async def _update(self, job_id: str, values: dict[str, Any]) -> JobRecord | None:
        async with self._db.write() as conn:
            result = await conn.execute(update(jobs).where(jobs.c.id == job_id).values(values))
            if result.rowcount == 0:
                return None
            row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).one()
        return _to_record(row)

    async def list_for_user(self, user_id: str, *, guild_id: str | None = None, limit: int = 25,
                            before: datetime | None = None) -> list[JobRecord]:
        """Newest first, for `/jobs`."""
        q = select(jobs).where(jobs.c.user_id == user_id)
        if guild_id is not None:
            q = q.where(jobs.c.guild_id == guild_id)
        if before is not None:
            q = q.where(jobs.c.created_at < before)
        q = q.order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit)
        async with self._db.read() as conn:
            rows = (await conn.execute(q)).all()
        return [_to_record(r) for r in rows]

    async def list_unfinished(self, *, limit: int = 1000) -> list[JobRecord]:
        """Jobs not yet done/failed/cancelled: what a restarted bot resumes watching."""
        q = (select(jobs).where(jobs.c.status.in_(("queued", "running")))
             .order_by(jobs.c.created_at).limit(limit))
        async with self._db.read() as conn:
            rows = (await conn.execute(q)).all()
        return [_to_record(r) for r in rows]

    async def delete(self, job_id: str) -> bool:
        async with self._db.write() as conn:
            result = await conn.execute(delete(jobs).where(jobs.c.id == job_id))
        return result.rowcount > 0

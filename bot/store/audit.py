"""The audit log: append and read. There is deliberately no update or delete here; rows leave
only through the erasure and retention functions of ``Store``, which log themselves."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.database import Database
from bot.store.records import AuditEvent, AuditRecord, prompt_hash
from bot.store.schema import audit_log as a


def _to_record(row: Any) -> AuditRecord:
    m = row._mapping
    return AuditRecord(id=m["id"], at=m["at"], action=m["action"], actor_id=m["actor_id"], guild_id=m["guild_id"],
                       channel_id=m["channel_id"], subject_id=m["subject_id"], command=m["command"],
                       job_id=m["job_id"], prompt=m["prompt"], prompt_hash=m["prompt_hash"], verdict=m["verdict"],
                       model_hash=m["model_hash"], output_hash=m["output_hash"], reason=m["reason"],
                       detail=dict(m["detail"] or {}))


async def append_audit(conn: AsyncConnection, at: datetime, event: AuditEvent) -> AuditRecord:
    """Append inside the caller's transaction (so a decision and its record commit together)."""
    if event.prompt_storage not in ("full", "hash"):
        raise ValueError(f"prompt_storage must be 'full' or 'hash', got {event.prompt_storage!r}")
    values = dict(
        at=at, action=event.action, actor_id=event.actor_id, guild_id=event.guild_id, channel_id=event.channel_id,
        subject_id=event.subject_id, command=event.command, job_id=event.job_id,
        prompt=event.prompt if event.prompt_storage == "full" else None,
        prompt_hash=prompt_hash(event.prompt) if event.prompt is not None else None,
        verdict=event.verdict, model_hash=event.model_hash, output_hash=event.output_hash, reason=event.reason,
        detail=dict(event.detail),
    )
    new_id = (await conn.execute(a.insert().values(values).returning(a.c.id))).scalar_one()
    return _to_record(_Row({"id": new_id, **values}))


class AuditLog:
    def __init__(self, db: Database):
        self._db = db
        # Told of every row ``append`` commits (the mod-log mirror); rows appended inside
        # another transaction (append_audit) are announced by whoever made them.
        self.listeners: list[Callable[[AuditRecord], None]] = []

    async def append(self, event: AuditEvent) -> AuditRecord:
        async with self._db.write() as conn:
            record = await append_audit(conn, self._db.now(), event)
        for listener in self.listeners:
            listener(record)
        return record

    async def query(self, *, guild_id: str | None = None, actor_id: str | None = None,
                    subject_id: str | None = None, user_id: str | None = None, action: str | None = None,
                    job_id: str | None = None, since: datetime | None = None, until: datetime | None = None,
                    limit: int = 100) -> list[AuditRecord]:
        """Newest first. ``user_id`` matches rows where the user acted or was acted upon."""
        q = select(a)
        if guild_id is not None:
            q = q.where(a.c.guild_id == guild_id)
        if actor_id is not None:
            q = q.where(a.c.actor_id == actor_id)
        if subject_id is not None:
            q = q.where(a.c.subject_id == subject_id)
        if user_id is not None:
            q = q.where((a.c.actor_id == user_id) | (a.c.subject_id == user_id))
        if action is not None:
            q = q.where(a.c.action == action)
        if job_id is not None:
            q = q.where(a.c.job_id == job_id)
        if since is not None:
            q = q.where(a.c.at >= since)
        if until is not None:
            q = q.where(a.c.at < until)
        q = q.order_by(a.c.id.desc()).limit(limit)
        async with self._db.read() as conn:
            rows = (await conn.execute(q)).all()
        return [_to_record(r) for r in rows]


class _Row:
    def __init__(self, values: dict[str, Any]):
        self._mapping = values

"""Review queue items and bans. Every decision is written to the audit log in the same
transaction, so the log cannot miss one."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from bot.store.audit import append_audit
from bot.store.database import Database
from bot.store.records import AuditEvent, Ban, ReviewDecision, ReviewItem, ReviewStatus
from bot.store.schema import bans as b, review_items as ri


def _to_item(row: Any) -> ReviewItem:
    m = row._mapping
    return ReviewItem(id=m["id"], job_id=m["job_id"], guild_id=m["guild_id"], channel_id=m["channel_id"],
                      requester_id=m["requester_id"], review_channel_id=m["review_channel_id"],
                      review_message_id=m["review_message_id"], status=ReviewStatus(m["status"]),
                      moderator_id=m["moderator_id"], reason=m["reason"], created_at=m["created_at"],
                      decided_at=m["decided_at"])


def _to_ban(row: Any) -> Ban:
    m = row._mapping
    return Ban(guild_id=m["guild_id"], user_id=m["user_id"], moderator_id=m["moderator_id"], reason=m["reason"],
               created_at=m["created_at"], expires_at=m["expires_at"])


class ReviewQueue:
    def __init__(self, db: Database):
        self._db = db

    async def create(self, *, job_id: str, guild_id: str, requester_id: str, channel_id: str | None = None,
                     review_channel_id: str | None = None) -> ReviewItem:
        """Hold a job's output for review; idempotent per job."""
        now = self._db.now()
        async with self._db.write() as conn:
            await conn.execute(self._db.insert(ri).values(
                job_id=job_id, guild_id=guild_id, channel_id=channel_id, requester_id=requester_id,
                review_channel_id=review_channel_id, status=ReviewStatus.pending.value, created_at=now,
            ).on_conflict_do_nothing(index_elements=[ri.c.job_id]))
            row = (await conn.execute(select(ri).where(ri.c.job_id == job_id))).one()
        return _to_item(row)

    async def set_message(self, item_id: int, review_channel_id: str, review_message_id: str) -> ReviewItem | None:
        async with self._db.write() as conn:
            await conn.execute(update(ri).where(ri.c.id == item_id).values(
                review_channel_id=review_channel_id, review_message_id=review_message_id))
            row = (await conn.execute(select(ri).where(ri.c.id == item_id))).one_or_none()
        return _to_item(row) if row else None

    async def decide(self, item_id: int, *, approve: bool, moderator_id: str,
                     reason: str | None = None) -> ReviewDecision | None:
        """Approve or reject a pending item. Two moderators clicking at once: the first wins,
        the second gets ``applied=False`` and the first decision. None if no such item."""
        status = ReviewStatus.approved if approve else ReviewStatus.rejected
        now = self._db.now()
        async with self._db.write() as conn:
            result = await conn.execute(
                update(ri).where(ri.c.id == item_id, ri.c.status == ReviewStatus.pending.value)
                .values(status=status.value, moderator_id=moderator_id, reason=reason, decided_at=now))
            row = (await conn.execute(select(ri).where(ri.c.id == item_id))).one_or_none()
            if row is None:
                return None
            item = _to_item(row)
            applied = result.rowcount > 0
            if applied:
                await append_audit(conn, now, AuditEvent(
                    action=f"review.{status.value}", actor_id=moderator_id, guild_id=item.guild_id,
                    channel_id=item.review_channel_id, subject_id=item.requester_id, job_id=item.job_id,
                    verdict=status.value, reason=reason))
        return ReviewDecision(item=item, applied=applied)

    async def get(self, item_id: int) -> ReviewItem | None:
        return await self._one(ri.c.id == item_id)

    async def get_by_job(self, job_id: str) -> ReviewItem | None:
        return await self._one(ri.c.job_id == job_id)

    async def get_by_message(self, review_message_id: str) -> ReviewItem | None:
        return await self._one(ri.c.review_message_id == review_message_id)

    async def list_pending(self, guild_id: str, *, limit: int = 50) -> list[ReviewItem]:
        q = (select(ri).where(ri.c.guild_id == guild_id, ri.c.status == ReviewStatus.pending.value)
             .order_by(ri.c.id).limit(limit))
        async with self._db.read() as conn:
            return [_to_item(r) for r in (await conn.execute(q)).all()]

    async def _one(self, cond: Any) -> ReviewItem | None:
        async with self._db.read() as conn:
            row = (await conn.execute(select(ri).where(cond).limit(1))).one_or_none()
        return _to_item(row) if row else None


class BanList:
    def __init__(self, db: Database):
        self._db = db

    async def ban(self, guild_id: str, user_id: str, *, moderator_id: str | None, reason: str | None = None,
                  expires_at: datetime | None = None) -> Ban:
        now = self._db.now()
        stmt = self._db.insert(b).values(guild_id=guild_id, user_id=user_id, moderator_id=moderator_id, reason=reason,
                                         created_at=now, expires_at=expires_at)
        stmt = stmt.on_conflict_do_update(index_elements=[b.c.guild_id, b.c.user_id], set_=dict(
            moderator_id=moderator_id, reason=reason, created_at=now, expires_at=expires_at))
        async with self._db.write() as conn:
            await conn.execute(stmt)
            await append_audit(conn, now, AuditEvent(
                action="mod.ban", actor_id=moderator_id, guild_id=guild_id, subject_id=user_id, reason=reason,
                detail={"expires_at": expires_at.isoformat() if expires_at else None}))
        return Ban(guild_id, user_id, moderator_id, reason, now, expires_at)

    async def unban(self, guild_id: str, user_id: str, *, moderator_id: str | None,
                    reason: str | None = None) -> bool:
        async with self._db.write() as conn:
            result = await conn.execute(delete(b).where(b.c.guild_id == guild_id, b.c.user_id == user_id))
            if result.rowcount > 0:
                await append_audit(conn, self._db.now(), AuditEvent(
                    action="mod.unban", actor_id=moderator_id, guild_id=guild_id, subject_id=user_id, reason=reason))
        return result.rowcount > 0

    async def active_ban(self, guild_id: str, user_id: str) -> Ban | None:
        """The ban in force now, if any (an expired ban no longer applies)."""
        now = self._db.now()
        q = select(b).where(b.c.guild_id == guild_id, b.c.user_id == user_id,
                            (b.c.expires_at.is_(None)) | (b.c.expires_at > now))
        async with self._db.read() as conn:
            row = (await conn.execute(q)).one_or_none()
        return _to_ban(row) if row else None

    async def list(self, guild_id: str) -> list[Ban]:
        async with self._db.read() as conn:
            rows = (await conn.execute(select(b).where(b.c.guild_id == guild_id).order_by(b.c.created_at))).all()
        return [_to_ban(r) for r in rows]

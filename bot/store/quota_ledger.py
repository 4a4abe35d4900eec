"""Quota reservations, persisted: the state behind cooldowns, daily quotas and concurrency caps.

A reservation is ``reserved`` while its job runs, then ``committed`` (counts against the daily
quota) or ``refunded`` (counts against nothing). A reservation that is never settled (the bot
died) stops counting as running at ``expires_at`` but still counts for the day.
Days are UTC days.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.database import Database
from bot.store.records import QuotaDenial, QuotaLimits, QuotaUsage, Reservation
from bot.store.schema import quota_locks, quota_reservations as r

_DM = ""  # reservations outside a guild share this guild id


def day_bounds(now: datetime) -> tuple[datetime, datetime]:
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def _to_reservation(row: Any) -> Reservation:
    m = row._mapping
    return Reservation(id=m["id"], guild_id=m["guild_id"] or None, user_id=m["user_id"], channel_id=m["channel_id"],
                       job_id=m["job_id"], cost=m["cost"], status=m["status"], created_at=m["created_at"],
                       expires_at=m["expires_at"], settled_at=m["settled_at"])


class QuotaLedger:
    def __init__(self, db: Database):
        self._db = db

    async def reserve(self, guild_id: str | None, user_id: str, limits: QuotaLimits, *, cost: int = 1,
                      channel_id: str | None = None, ttl_s: float = 900.0) -> Reservation | QuotaDenial:
        """Check every limit and record a reservation, atomically per guild."""
        if cost < 1:
            raise ValueError("cost must be at least 1")
        g = guild_id or _DM
        async with self._db.write() as conn:
            await self._lock_guild(conn, g)
            now = self._db.now()
            usage = await self._usage(conn, g, user_id, now)
            denial = _first_denial(limits, usage, cost, now)
            if denial is not None:
                return denial
            values = dict(id=str(uuid.uuid4()), guild_id=g, user_id=user_id, channel_id=channel_id, job_id=None,
                          cost=cost, status="reserved", created_at=now,
                          expires_at=now + timedelta(seconds=ttl_s), settled_at=None)
            await conn.execute(r.insert().values(values))
        return _to_reservation(_Row(values))

    async def _lock_guild(self, conn: AsyncConnection, g: str) -> None:
        key = f"guild:{g}"
        await conn.execute(self._db.insert(quota_locks).values(key=key).on_conflict_do_nothing())
        # Postgres: concurrent reservations of this guild queue on this row lock until we commit.
        # SQLite: the transaction began IMMEDIATE, so it already holds the database's write lock.
        await conn.execute(select(quota_locks.c.key).where(quota_locks.c.key == key).with_for_update())

    async def _settle(self, reservation_id: str, status: str, job_id: str | None) -> bool:
        values: dict[str, Any] = {"status": status, "settled_at": self._db.now()}
        if job_id is not None:
            values["job_id"] = job_id
        async with self._db.write() as conn:
            result = await conn.execute(
                update(r).where(r.c.id == reservation_id, r.c.status == "reserved").values(values))
        return result.rowcount > 0

    async def commit(self, reservation_id: str, job_id: str | None = None) -> bool:
        """The job ran: the cost stays counted. False if it was already settled."""
        return await self._settle(reservation_id, "committed", job_id)

    async def refund(self, reservation_id: str, job_id: str | None = None) -> bool:
        """The job failed or was refused: nothing counts. False if it was already settled."""
        return await self._settle(reservation_id, "refunded", job_id)

    async def attach_job(self, reservation_id: str, job_id: str) -> bool:
        async with self._db.write() as conn:
            result = await conn.execute(update(r).where(r.c.id == reservation_id).values(job_id=job_id))
        return result.rowcount > 0

    async def get(self, reservation_id: str) -> Reservation | None:
        async with self._db.read() as conn:
            row = (await conn.execute(select(r).where(r.c.id == reservation_id))).one_or_none()
        return _to_reservation(row) if row else None

    async def usage(self, guild_id: str | None, user_id: str) -> QuotaUsage:
        async with self._db.read() as conn:
            return await self._usage(conn, guild_id or _DM, user_id, self._db.now())

    async def _usage(self, conn: AsyncConnection, g: str, user_id: str, now: datetime) -> QuotaUsage:
        day_start, day_end = day_bounds(now)
        mine = (r.c.guild_id == g) & (r.c.user_id == user_id)
        active = (r.c.status == "reserved") & (r.c.expires_at > now)
        daily_used = (await conn.execute(select(func.coalesce(func.sum(r.c.cost), 0)).where(
            mine, r.c.status.in_(("reserved", "committed")), r.c.created_at >= day_start))).scalar_one()
        user_active, next_expiry = (await conn.execute(
            select(func.count(), func.min(r.c.expires_at)).where(mine, active))).one()
        guild_active = (await conn.execute(select(func.count()).where(r.c.guild_id == g, active))).scalar_one()
        last = (await conn.execute(select(func.max(r.c.created_at)).where(mine, r.c.status != "refunded"))).scalar_one()
        return QuotaUsage(daily_used=int(daily_used), user_active=int(user_active), guild_active=int(guild_active),
                          last_reserved_at=last, day_resets_at=day_end, next_active_expiry=next_expiry)


def _first_denial(limits: QuotaLimits, usage: QuotaUsage, cost: int, now: datetime) -> QuotaDenial | None:
    # Most lasting first: "daily quota reached" is more useful than "wait 3 s".
    if limits.daily is not None and usage.daily_used + cost > limits.daily:
        return QuotaDenial("daily", limits.daily, usage.daily_used, usage.day_resets_at)
    if limits.user_concurrent is not None and usage.user_active >= limits.user_concurrent:
        return QuotaDenial("user_concurrent", limits.user_concurrent, usage.user_active, None)
    if limits.guild_concurrent is not None and usage.guild_active >= limits.guild_concurrent:
        return QuotaDenial("guild_concurrent", limits.guild_concurrent, usage.guild_active, None)
    if limits.cooldown_s > 0 and usage.last_reserved_at is not None:
        ready_at = usage.last_reserved_at + timedelta(seconds=limits.cooldown_s)
        if ready_at > now:
            return QuotaDenial("cooldown", limits.cooldown_s, (now - usage.last_reserved_at).total_seconds(), ready_at)
    return None


class _Row:
    """Lets a dict of inserted values go through the same converter as a fetched row."""

    def __init__(self, values: dict[str, Any]):
        self._mapping = values

"""Quotas and rate limits for generations: per-member cooldown, daily quota and concurrent
jobs, per-guild concurrent jobs, each overridable per channel, role and member (see
``bot.scoped_settings``).

The flow: ``reserve`` before submitting (atomic against every other reservation of the
guild, also across bot processes sharing the store), then ``commit`` when the job produced
its outputs or ``refund`` when it failed or was refused. State lives in the store, so limits
hold across restarts.

    async with quota.reservation(ctx, cost=count) as held:
        job = await engine.submit(...)     # an exception refunds
        ...                                # leaving the block commits
"""
from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from bot.scoped_settings import CommunitySettings, ScopedSettings, SettingsContext
from bot.store import QuotaDenial, QuotaLimits, Reservation, Store
from bot.store.records import QuotaLimitName

DEFAULT_RESERVATION_TTL_S = 900.0  # a job not settled within 15 minutes stops counting as running


def _human_duration(seconds: float) -> str:
    seconds = max(0, math.ceil(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {s}s" if s else f"{minutes}m"
    hours, m = divmod(minutes, 60)
    return f"{hours}h {m}m" if m else f"{hours}h"


class QuotaExceeded(Exception):
    """A reservation was refused: ``limit`` names the limit, ``resets_at`` says when it frees
    (None: when one of the running jobs finishes)."""

    def __init__(self, denial: QuotaDenial, now: datetime):
        self.limit: QuotaLimitName = denial.limit
        self.limit_value = denial.limit_value
        self.used = denial.used
        self.resets_at = denial.resets_at
        self.retry_after_s = (denial.resets_at - now).total_seconds() if denial.resets_at else None
        super().__init__(self._describe(now))

    def _describe(self, now: datetime) -> str:
        when = ""
        if self.resets_at is not None:
            when = f"{self.resets_at:%Y-%m-%d %H:%M:%S} UTC (in {_human_duration((self.resets_at - now).total_seconds())})"
        if self.limit == "daily":
            return (f"daily quota reached: {int(self.used)} of {int(self.limit_value)} outputs used today; "
                    f"it resets at {when}")
        if self.limit == "cooldown":
            return f"cooldown: {self.limit_value:g}s between generations; ready at {when}"
        if self.limit == "user_concurrent":
            return (f"concurrent jobs per member: you already have {int(self.used)} running "
                    f"(limit {int(self.limit_value)}); it frees when one finishes")
        return (f"concurrent jobs per server: {int(self.used)} already running (limit {int(self.limit_value)}); "
                "it frees when one finishes")


def quota_message(e: QuotaExceeded, locale: object) -> str:
    """What the member is told, in their language (``str(e)`` is the English audit reason).
    Times are Discord timestamps, which every client shows in its own locale and time zone."""
    from bot.i18n import t

    at = int(e.resets_at.timestamp()) if e.resets_at is not None else 0
    if e.limit == "daily":
        return t(locale, "quota_daily_hit", used=int(e.used), limit=int(e.limit_value), at=at)
    if e.limit == "cooldown":
        return t(locale, "quota_cooldown_hit", seconds=f"{e.limit_value:g}", at=at)
    if e.limit == "user_concurrent":
        return t(locale, "quota_user_busy", used=int(e.used), limit=int(e.limit_value))
    return t(locale, "quota_guild_busy", used=int(e.used), limit=int(e.limit_value))


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    """What `/quota` shows."""

    limits: QuotaLimits
    daily_used: int
    daily_remaining: int | None  # None: unlimited
    day_resets_at: datetime
    cooldown_ready_at: datetime | None  # None: may generate now
    running: int
    guild_running: int


def limits_from(settings: CommunitySettings, *, in_guild: bool) -> QuotaLimits:
    return QuotaLimits(cooldown_s=settings.cooldown_s, daily=settings.daily_quota,
                       user_concurrent=settings.max_concurrent_per_user,
                       guild_concurrent=settings.max_concurrent_per_guild if in_guild else None)


class QuotaService:
    def __init__(self, store: Store, settings: ScopedSettings[CommunitySettings], *,
                 reservation_ttl_s: float = DEFAULT_RESERVATION_TTL_S):
        self._store = store
        self._settings = settings
        self._ttl_s = reservation_ttl_s

    async def limits_for(self, ctx: SettingsContext) -> QuotaLimits:
        return limits_from(await self._settings.resolve(ctx), in_guild=ctx.guild_id is not None)

    async def reserve(self, ctx: SettingsContext, *, cost: int = 1, limits: QuotaLimits | None = None) -> Reservation:
        """Hold ``cost`` outputs of the member's budget, or raise QuotaExceeded."""
        if ctx.user_id is None:
            raise ValueError("a quota reservation needs the member's user id")
        limits = limits or await self.limits_for(ctx)
        result = await self._store.quota.reserve(ctx.guild_id, ctx.user_id, limits, cost=cost,
                                                 channel_id=ctx.channel_id, ttl_s=self._ttl_s)
        if isinstance(result, QuotaDenial):
            raise QuotaExceeded(result, self._store.now())
        return result

    async def commit(self, reservation: Reservation | str, job_id: str | None = None) -> bool:
        return await self._store.quota.commit(_rid(reservation), job_id)

    async def refund(self, reservation: Reservation | str, job_id: str | None = None) -> bool:
        return await self._store.quota.refund(_rid(reservation), job_id)

    @asynccontextmanager
    async def reservation(self, ctx: SettingsContext, *, cost: int = 1) -> AsyncIterator[Reservation]:
        """Reserve; refund if the block raises, commit if it ends (unless settled inside)."""
        held = await self.reserve(ctx, cost=cost)
        try:
            yield held
        except BaseException:
            await self.refund(held)
            raise
        await self.commit(held)

    async def remaining(self, ctx: SettingsContext) -> QuotaStatus:
        if ctx.user_id is None:
            raise ValueError("quota status needs the member's user id")
        limits = await self.limits_for(ctx)
        usage = await self._store.quota.usage(ctx.guild_id, ctx.user_id)
        ready = None
        if limits.cooldown_s > 0 and usage.last_reserved_at is not None:
            at = usage.last_reserved_at.timestamp() + limits.cooldown_s
            if at > self._store.now().timestamp():
                ready = datetime.fromtimestamp(at, tz=usage.last_reserved_at.tzinfo)
        return QuotaStatus(
            limits=limits, daily_used=usage.daily_used,
            daily_remaining=None if limits.daily is None else max(0, limits.daily - usage.daily_used),
            day_resets_at=usage.day_resets_at, cooldown_ready_at=ready, running=usage.user_active,
            guild_running=usage.guild_active)


def _rid(reservation: Reservation | str) -> str:
    return reservation if isinstance(reservation, str) else reservation.id


__all__ = ["DEFAULT_RESERVATION_TTL_S", "QuotaExceeded", "QuotaService", "QuotaStatus", "limits_from",
           "quota_message"]

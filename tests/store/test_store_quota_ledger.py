"""The atomic reservation primitive, on both backends."""
from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.store import QuotaDenial, QuotaLimits, Reservation, Store


async def test_concurrent_reserves_respect_the_user_cap(store: Store) -> None:
    limits = QuotaLimits(user_concurrent=3)
    results = await asyncio.gather(*(store.quota.reserve("g1", "u1", limits) for _ in range(20)))
    granted = [r for r in results if isinstance(r, Reservation)]
    denied = [r for r in results if isinstance(r, QuotaDenial)]
    assert len(granted) == 3 and len(denied) == 17
    assert {d.limit for d in denied} == {"user_concurrent"}
    assert (await store.quota.usage("g1", "u1")).user_active == 3


async def test_concurrent_reserves_respect_the_guild_cap_across_users(store: Store) -> None:
    limits = QuotaLimits(guild_concurrent=3, user_concurrent=5)
    results = await asyncio.gather(*(store.quota.reserve("g1", f"u{i}", limits) for i in range(20)))
    assert sum(isinstance(r, Reservation) for r in results) == 3
    other_guild = await store.quota.reserve("g2", "u1", limits)
    assert isinstance(other_guild, Reservation)


async def test_concurrent_reserves_respect_the_daily_quota(store: Store) -> None:
    results = await asyncio.gather(*(store.quota.reserve("g1", "u1", QuotaLimits(daily=7), cost=2)
                                     for _ in range(10)))
    assert sum(isinstance(r, Reservation) for r in results) == 3  # 3*2 = 6 <= 7 < 8


async def test_settle_refund_commit_and_expiry(store: Store, clock) -> None:
    limits = QuotaLimits(user_concurrent=1, daily=2)
    first = await store.quota.reserve("g1", "u1", limits, ttl_s=60)
    assert isinstance(first, Reservation)
    assert isinstance(await store.quota.reserve("g1", "u1", limits), QuotaDenial)
    assert await store.quota.refund(first.id, job_id="j1")
    assert not await store.quota.commit(first.id)  # already settled
    assert (await store.quota.get(first.id)).status == "refunded"
    second = await store.quota.reserve("g1", "u1", limits, ttl_s=60)
    assert isinstance(second, Reservation)
    clock.advance(seconds=61)  # the bot died: the reservation stops counting as running ...
    third = await store.quota.reserve("g1", "u1", limits)
    assert isinstance(third, Reservation)
    assert await store.quota.commit(third.id, job_id="j3")
    usage = await store.quota.usage("g1", "u1")
    assert usage.daily_used == 2 and usage.user_active == 0  # ... but still counts for the day
    denial = await store.quota.reserve("g1", "u1", limits)
    assert isinstance(denial, QuotaDenial) and denial.limit == "daily"
    assert denial.resets_at == clock.now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    clock.now = denial.resets_at
    assert isinstance(await store.quota.reserve("g1", "u1", limits), Reservation)


async def test_cooldown_counts_from_the_last_unrefunded_reservation(store: Store, clock) -> None:
    limits = QuotaLimits(cooldown_s=30)
    r1 = await store.quota.reserve(None, "u1", limits)
    assert isinstance(r1, Reservation) and r1.guild_id is None
    clock.advance(seconds=10)
    denial = await store.quota.reserve(None, "u1", limits)
    assert isinstance(denial, QuotaDenial) and denial.limit == "cooldown"
    assert denial.resets_at == r1.created_at + timedelta(seconds=30)
    await store.quota.refund(r1.id)  # a failed job does not hold the user back
    assert isinstance(await store.quota.reserve(None, "u1", limits), Reservation)


async def test_reservations_persist_across_restart(open_store) -> None:
    s1 = await open_store()
    r = await s1.quota.reserve("g1", "u1", QuotaLimits(user_concurrent=1))
    await s1.close()
    s2 = await open_store()
    assert isinstance(await s2.quota.reserve("g1", "u1", QuotaLimits(user_concurrent=1)), QuotaDenial)
    assert await s2.quota.commit(r.id)


async def test_two_processes_sharing_the_database_still_hold_the_cap(open_store) -> None:
    """Two Store objects (two engines, two pools, as two bot processes would have)."""
    s1, s2 = await open_store(), await open_store()
    limits = QuotaLimits(user_concurrent=3)
    results = await asyncio.gather(*(s.quota.reserve("g1", "u1", limits) for s in (s1, s2) * 10))
    assert sum(isinstance(r, Reservation) for r in results) == 3

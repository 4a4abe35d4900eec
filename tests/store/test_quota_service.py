from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.quota import QuotaExceeded, QuotaService
from bot.scoped_settings import Scope, ScopedSettings, SettingsContext
from bot.store import Reservation, Store

CTX = SettingsContext(guild_id="1", channel_id="10", user_id="100", role_ids=("7",))


def service(store: Store) -> QuotaService:
    return QuotaService(store, ScopedSettings(store))


async def test_twenty_concurrent_reserves_against_a_cap_of_three(store: Store) -> None:
    settings = ScopedSettings(store)
    await settings.set("max_concurrent_per_user", 3, guild_id="1")
    await settings.set("cooldown_s", 0, guild_id="1")
    quota = QuotaService(store, settings)
    results = await asyncio.gather(*(quota.reserve(CTX) for _ in range(20)), return_exceptions=True)
    assert sum(isinstance(r, Reservation) for r in results) == 3
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert len(refused) == 17 and {r.limit for r in refused} == {"user_concurrent"}
    assert "you already have 3 running (limit 3)" in str(refused[0])


async def test_guild_cap_holds_across_members(store: Store) -> None:
    settings = ScopedSettings(store)
    await settings.set("max_concurrent_per_guild", 3, guild_id="1")
    await settings.set("cooldown_s", 0, guild_id="1")
    quota = QuotaService(store, settings)
    ctxs = [SettingsContext(guild_id="1", user_id=str(200 + i)) for i in range(20)]
    results = await asyncio.gather(*(quota.reserve(c) for c in ctxs), return_exceptions=True)
    assert sum(isinstance(r, Reservation) for r in results) == 3
    assert all(r.limit == "guild_concurrent" for r in results if isinstance(r, QuotaExceeded))


async def test_refusals_name_the_limit_and_the_reset(store: Store, clock) -> None:
    settings = ScopedSettings(store)
    await settings.set("daily_quota", 2, guild_id="1")
    await settings.set("cooldown_s", 30, guild_id="1")
    quota = QuotaService(store, settings)
    first = await quota.reserve(CTX)
    await quota.commit(first, job_id="j1")
    with pytest.raises(QuotaExceeded) as cooldown:
        await quota.reserve(CTX)
    assert cooldown.value.limit == "cooldown" and cooldown.value.retry_after_s == 30
    assert str(cooldown.value) == "cooldown: 30s between generations; ready at 2026-03-14 12:00:30 UTC (in 30s)"
    clock.advance(seconds=31)
    await quota.commit(await quota.reserve(CTX))
    clock.advance(minutes=5)
    with pytest.raises(QuotaExceeded) as daily:
        await quota.reserve(CTX)
    assert daily.value.limit == "daily"
    assert str(daily.value) == ("daily quota reached: 2 of 2 outputs used today; it resets at "
                                "2026-03-15 00:00:00 UTC (in 11h 54m)")


async def test_role_override_lifts_the_limit(store: Store) -> None:
    settings = ScopedSettings(store)
    await settings.set("daily_quota", 1, guild_id="1")
    await settings.set("cooldown_s", 0, guild_id="1")
    await settings.set("daily_quota", 3, guild_id="1", scope=Scope.role, scope_id="7")
    quota = QuotaService(store, settings)
    plain = SettingsContext(guild_id="1", user_id="300")
    await quota.commit(await quota.reserve(plain))
    with pytest.raises(QuotaExceeded):
        await quota.reserve(plain)
    for _ in range(3):
        await quota.commit(await quota.reserve(CTX))
    with pytest.raises(QuotaExceeded, match="3 of 3"):
        await quota.reserve(CTX)


async def test_refund_gives_budget_back_and_remaining_reports(store: Store, clock) -> None:
    settings = ScopedSettings(store)
    await settings.set("daily_quota", 4, guild_id="1")
    await settings.set("cooldown_s", 10, guild_id="1")
    quota = QuotaService(store, settings)
    held = await quota.reserve(CTX, cost=3)
    status = await quota.remaining(CTX)
    assert (status.daily_used, status.daily_remaining, status.running) == (3, 1, 1)
    assert status.cooldown_ready_at == clock.now + timedelta(seconds=10)
    assert await quota.refund(held, job_id="failed-job")
    status = await quota.remaining(CTX)
    assert (status.daily_used, status.daily_remaining, status.running, status.cooldown_ready_at) == (0, 4, 0, None)
    assert status.day_resets_at.isoformat() == "2026-03-15T00:00:00+00:00"


async def test_reservation_context_commits_or_refunds(store: Store) -> None:
    settings = ScopedSettings(store)
    await settings.set("cooldown_s", 0, guild_id="1")
    quota = QuotaService(store, settings)
    async with quota.reservation(CTX, cost=2) as ok:
        pass
    assert (await store.quota.get(ok.id)).status == "committed"
    with pytest.raises(RuntimeError):
        async with quota.reservation(CTX) as failed:
            raise RuntimeError("engine failed")
    assert (await store.quota.get(failed.id)).status == "refunded"
    assert (await quota.remaining(CTX)).daily_used == 2


async def test_limits_persist_across_restart(open_store) -> None:
    s1 = await open_store()
    await ScopedSettings(s1).set("max_concurrent_per_user", 1, guild_id="1")
    await service(s1).reserve(CTX)
    await s1.close()
    s2 = await open_store()
    with pytest.raises(QuotaExceeded, match="limit 1"):
        await service(s2).reserve(CTX)


async def test_direct_messages_have_no_guild_cap(store: Store) -> None:
    quota = service(store)
    dm = SettingsContext(guild_id=None, user_id="100")
    assert (await quota.limits_for(dm)).guild_concurrent is None
    assert (await quota.reserve(dm)).guild_id is None

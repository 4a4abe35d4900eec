from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.store import ReviewStatus, Scope, Store


async def test_review_flow_and_first_decision_wins(store: Store) -> None:
    item = await store.reviews.create(job_id="j1", guild_id="g1", requester_id="u1", channel_id="c1")
    assert item.status is ReviewStatus.pending and item.review_message_id is None
    assert await store.reviews.create(job_id="j1", guild_id="g1", requester_id="u1") == item  # idempotent
    await store.reviews.set_message(item.id, "modchan", "rm1")
    assert (await store.reviews.get_by_message("rm1")).id == item.id
    assert [i.id for i in await store.reviews.list_pending("g1")] == [item.id]

    decisions = await asyncio.gather(
        store.reviews.decide(item.id, approve=True, moderator_id="modA"),
        store.reviews.decide(item.id, approve=False, moderator_id="modB", reason="nope"),
    )
    assert sum(d.applied for d in decisions) == 1
    final = await store.reviews.get_by_job("j1")
    assert final.status in (ReviewStatus.approved, ReviewStatus.rejected) and final.decided_at is not None
    assert all(d.item == final for d in decisions)  # the loser sees the winner's decision
    assert await store.reviews.list_pending("g1") == []
    logged = await store.audit.query(guild_id="g1", job_id="j1")
    assert len(logged) == 1 and logged[0].action == f"review.{final.status.value}"
    assert logged[0].actor_id == final.moderator_id and logged[0].subject_id == "u1"
    assert await store.reviews.decide(999, approve=True, moderator_id="m") is None


async def test_bans_expire_and_are_audited(store: Store, clock) -> None:
    await store.bans.ban("g1", "u1", moderator_id="m1", reason="spam")
    await store.bans.ban("g1", "u2", moderator_id="m1", expires_at=clock.now + timedelta(hours=1))
    assert (await store.bans.active_ban("g1", "u1")).reason == "spam"
    assert await store.bans.active_ban("g2", "u1") is None
    assert await store.bans.active_ban("g1", "u2") is not None
    clock.advance(hours=2)
    assert await store.bans.active_ban("g1", "u2") is None
    assert await store.bans.unban("g1", "u1", moderator_id="m2") and not await store.bans.unban("g1", "u1", moderator_id="m2")
    assert await store.bans.active_ban("g1", "u1") is None
    actions = [r.action for r in await store.audit.query(guild_id="g1")]
    assert actions == ["mod.unban", "mod.ban", "mod.ban"]


async def test_scoped_values_upsert_and_lookup(store: Store) -> None:
    await store.settings.set("g1", Scope.guild, "g1", "daily_quota", 10)
    await store.settings.set("g1", Scope.guild, "g1", "daily_quota", 20)
    await store.settings.set("g1", Scope.role, "r1", "daily_quota", 50)
    await store.settings.set("g1", Scope.channel, "c1", "commands", {"imagine": False})
    await store.settings.set("g2", Scope.guild, "g2", "daily_quota", 1)
    got = await store.settings.get_many("g1", [(Scope.guild, "g1"), (Scope.role, "r1")], keys=["daily_quota"])
    assert sorted((v.scope.value, v.value) for v in got) == [("guild", 20), ("role", 50)]
    assert (await store.settings.get_many("g1", [(Scope.channel, "c1")]))[0].value == {"imagine": False}
    assert len(await store.settings.list_guild("g1")) == 3
    assert await store.settings.delete("g1", Scope.role, "r1", "daily_quota")
    assert not await store.settings.delete("g1", Scope.role, "r1", "daily_quota")
    assert await store.settings.get_many("g1", []) == []

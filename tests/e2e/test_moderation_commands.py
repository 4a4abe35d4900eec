"""`/mod ban|unban|limits|audit|purge` and `/quota` through the emulator, error paths included."""
from __future__ import annotations

from bot.store import AuditEvent
from tests.e2e.test_moderation import mod, reply


async def test_ban_with_duration_refuses_then_unban(world):
    out = await mod(world, "mod ban", {"user": world.alice, "duration": "2 fortnights"})
    assert "Not changed: duration: use a number and a unit" in out
    assert await world.bot.store.bans.active_ban(str(world.guild), str(world.alice)) is None
    out = await mod(world, "mod ban", {"user": world.alice, "duration": "2h", "reason": "spam"})
    assert f"<@{world.alice}> is blocked from generating here until <t:" in out
    err = await world.error(await world.slash("emoji", {"prompt": "cat"}))
    assert "You are blocked from generating here until" in err
    ban = await world.bot.store.bans.active_ban(str(world.guild), str(world.alice))
    assert ban.reason == "spam" and 7100 < (ban.expires_at - ban.created_at).total_seconds() <= 7200
    assert "may generate here again" in await mod(world, "mod unban", {"user": world.alice})
    assert "was not blocked" in await mod(world, "mod unban", {"user": world.alice})
    await world.result(await world.slash("emoji", {"prompt": "cat", "seed": 1}))
    acts = await world.audit_actions("job.done")
    assert {"mod.ban", "mod.unban", "job.refused"} <= set(acts)


async def test_limits_view_set_override_and_errors(world):
    out = await mod(world, "mod limits")
    assert "daily_quota**: 100" in out and "max_concurrent_per_guild**: 10" in out
    assert "Not changed: daily_quota: expected a number or none" in await mod(
        world, "mod limits", {"setting": "daily_quota", "value": "lots"})
    out = await mod(world, "mod limits", {"setting": "cooldown_s", "value": "-5"})
    assert "Not changed: cooldown_s" in out and "greater than or equal to 0" in out
    out = await mod(world, "mod limits", {"setting": "max_concurrent_per_guild", "value": "3",
                                          "member": world.alice})
    assert "Not changed: max_concurrent_per_guild: can be set for the server only" in out
    patrons = world.emu.create_role(world.guild, "patrons", 0)
    out = await mod(world, "mod limits", {"setting": "daily_quota", "value": "500", "role": patrons.id})
    assert f"`daily_quota` = 500 for <@&{patrons.id}>" in out
    assert "role/member/channel: give at most one" in await mod(
        world, "mod limits", {"setting": "daily_quota", "value": "5", "role": patrons.id, "member": world.alice})
    out = await mod(world, "mod limits", {"setting": "daily_quota", "value": "1", "member": world.alice})
    assert f"`daily_quota` = 1 for <@{world.alice}>" in out
    assert f"<@{world.alice}> daily_quota = 1" in await mod(world, "mod limits")
    err = await world.error(await world.slash("emoji", {"prompt": "cat", "count": 2}))
    assert "daily quota reached" in err
    await world.result(await world.slash("emoji", {"prompt": "cat", "seed": 2}))  # one output fits
    quota = await reply(world, await world.slash("quota"))
    assert "Today: 0 of 1 outputs left (1 used)" in quota
    await mod(world, "mod limits", {"setting": "daily_quota", "value": "reset", "member": world.alice})
    quota = await reply(world, await world.slash("quota"))
    assert "Today: 99 of 100 outputs left (1 used)" in quota and "Running in this server: 0" in quota
    rows = await world.bot.store.audit.query(guild_id=str(world.guild), action="mod.limits")
    assert [r.detail["value"] for r in rows] == ["reset", 1, 500]
    assert rows[-1].detail["scope"] == "role" and rows[-1].detail["scope_id"] == str(patrons.id)
    assert await world.bot.store.audit.query(guild_id=str(world.guild), action="mod.limits.view")


async def test_audit_is_filtered_and_truncated(world):
    await world.result(await world.slash("emoji", {"prompt": "cat face", "seed": 3}))
    await world.audit_actions("job.done")
    out = await mod(world, "mod audit", {"user": world.alice})
    assert "`job.done`" in out and f"<@{world.alice}>" in out and "cat face" not in out
    assert "since: use a span" in await mod(world, "mod audit", {"since": "last tuesday"})
    for i in range(20):
        await world.bot.store.audit.append(AuditEvent(action="test.row", guild_id=str(world.guild),
                                                      actor_id=str(world.mod), reason=f"row {i}"))
    out = await mod(world, "mod audit", {"since": "1h"})
    assert "Showing the 15 newest" in out and out.count("`test.row`") == 15
    out = await mod(world, "mod audit", {"user": world.alice, "since": "2020-01-01"})
    assert "`test.row`" not in out and "`job.done`" in out


async def test_purge_deletes_a_members_messages_and_records(world):
    first = await world.result(await world.slash("emoji", {"prompt": "cat", "seed": 4}))
    second = await world.result(await world.slash("emoji", {"prompt": "dog", "seed": 5}))
    other = await world.result(await world.slash("emoji", {"prompt": "sun", "seed": 6}, user=world.mod))
    out = await mod(world, "mod purge", {"user": world.alice, "reason": "spam"})
    assert f"Purged <@{world.alice}>: 2 messages and 2 job records deleted" in out
    assert world.emu.message(int(first["id"])).deleted and world.emu.message(int(second["id"])).deleted
    assert not world.emu.message(int(other["id"])).deleted
    assert await world.bot.store.jobs.list_for_user(str(world.alice)) == []
    assert len(await world.bot.store.jobs.list_for_user(str(world.mod))) == 1
    (row,) = await world.bot.store.audit.query(guild_id=str(world.guild), action="mod.purge")
    assert (row.actor_id, row.subject_id, row.reason) == (str(world.mod), str(world.alice), "spam")


async def test_every_moderation_interaction_is_acknowledged_in_time(world):
    for command, options in (("mod limits", {}), ("mod rules list", {}), ("mod audit", {}),
                             ("mod ban", {"user": world.alice}), ("mod unban", {"user": world.alice}),
                             ("mod review off", {}), ("mod modlog", {})):
        rec = await world.slash(command, options, user=world.mod)
        await world.emu.wait_messages(rec, 1, timeout=15)
        assert rec.response_type == 5 and rec.ack_ms < 1000, (command, rec.response_type, rec.ack_ms)
    for command in ("quota", "privacy", "forget-me"):
        rec = await world.slash(command)
        await world.emu.wait_messages(rec, 1, timeout=15)
    assert world.emu.ack_stats()["missed_deadlines"] == 0


async def test_a_failing_subgroup_command_answers_once(world, monkeypatch):
    """discord.py calls the error handler of every enclosing group (`/mod rules list`: the
    `rules` group's, then `/mod`'s); the member must see one reply, not one per level."""
    import asyncio

    async def broken(guild_id):
        raise RuntimeError("automod rules unavailable")

    monkeypatch.setattr(world.bot.services.moderation.policy, "automod_rules", broken)
    rec = await world.slash("mod rules list", {}, user=world.mod)
    (msg, *_) = await world.emu.wait_messages(rec, 1, timeout=15)
    assert "That did not work (RuntimeError)" in msg["content"]
    await asyncio.sleep(0.5)  # a second handler would have answered by now
    ids = world.emu.record(rec).message_ids()
    assert len([m for m in ids if m in world.emu.world.messages]) == 1

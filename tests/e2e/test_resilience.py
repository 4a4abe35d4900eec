"""Buttons after a restart, catalog changes, a burst of interactions, Discord's 429s."""
from __future__ import annotations

import asyncio


def job_of(msg: dict) -> str:
    return msg["components"][0]["components"][0]["custom_id"].split(":")[2]


async def test_buttons_keep_working_after_a_bot_restart(world):
    msg = await world.result(await world.slash("emoji", {"prompt": "cat face", "seed": 3}))
    await world.stop_bot()
    await world.start_bot()
    rec = await world.emu.click(int(msg["id"]), f"aigc:reroll:{job_of(msg)}", world.alice)
    rerolled = await world.result(rec)
    assert rerolled["attachments"]
    rec = await world.emu.click(int(msg["id"]), f"aigc:details:{job_of(msg)}", world.alice)
    (details,) = await world.emu.wait_messages(rec, 1)
    assert job_of(msg) in details["embeds"][0]["title"]


async def test_a_sync_happens_only_when_commands_change(world):
    puts = lambda: len(world.emu.calls("PUT"))
    before = puts()
    await world.stop_bot()
    await world.start_bot()
    assert puts() == before  # same commands: no sync on restart


async def test_catalog_change_appears_as_a_new_command(world):
    from tests.engine.probe_plugin import make_probe_plugin

    assert "probe" not in {c["name"] for c in world.emu.commands(world.guild)}
    await world.engine.stop()
    plugin, _ = make_probe_plugin()
    world.engine.extra_plugins.append(plugin)
    world.engine.settings["plugins_enabled"] = ["emoji", "probe"]
    await world.engine.start()
    rec = await world.slash("aigc reload", user=world.mod)
    (reply,) = await world.emu.wait_messages(rec, 1)
    assert "synced" in reply["content"]
    assert "probe" in {c["name"] for c in world.emu.commands(world.guild)}
    msg = await world.result(await world.slash("probe", {"text": "hello"}))
    assert msg["attachments"][0]["filename"].startswith("probe-")
    # Members without Manage Server do not even see /aigc (default_member_permissions).
    import pytest
    from emulator import InjectError

    with pytest.raises(InjectError, match="cannot see /aigc"):
        await world.slash("aigc reload", user=world.alice)


async def test_fifty_concurrent_interactions_are_all_acknowledged_in_time(world):
    await world.bot.scoped.set("max_concurrent_per_guild", 100, guild_id=str(world.guild))
    await world.bot.scoped.set("max_concurrent_per_user", 10, guild_id=str(world.guild))
    users = []
    for i in range(10):
        u = world.emu.create_user(f"user{i}")
        world.emu.add_member(world.guild, u.id)
        users.append(u.id)
    recs = await asyncio.gather(*(world.slash("emoji", {"prompt": f"thing {i}", "seed": i},
                                              user=users[i % 10]) for i in range(50)))
    await asyncio.gather(*(world.emu.wait_ack(r, timeout=10) for r in recs))
    assert all(r.ack_ms is not None and r.ack_ms < 3000 for r in recs)
    stats = world.emu.ack_stats()
    assert stats["missed_deadlines"] == 0
    finals = await asyncio.gather(*(world.final(r, timeout=120) for r in recs))
    published = [m for ms in finals for m in ms if m["embeds"]]
    assert len(published) == 50


async def test_discords_429_is_honoured(world):
    world.emu.limiter.force(1, retry_after=0.3, path=r"/webhooks/\d+/[^/]+/messages/@original", method="PATCH")
    rec = await world.slash("emoji", {"prompt": "cat face"})
    msg = await world.result(rec)
    assert msg["attachments"] and world.emu.limiter.count_429 == 1
    assert [c for c in world.emu.calls("PATCH") if c.status == 429]

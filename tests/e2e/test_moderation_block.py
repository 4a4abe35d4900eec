"""Repeated refused prompts through the emulator: a warning on the refusal before the block,
the block is a per-server ban that `/mod unban` lifts, members with Manage Server are never
blocked (their prompts are still refused), and moderators get a notice in the mod-log."""
from __future__ import annotations

from tests.e2e.test_moderation import mod


async def test_warning_before_the_block_and_a_mod_log_notice(world):
    modlog = world.emu.create_channel(world.guild, "mod-log").id
    await mod(world, "mod modlog", {"channel": modlog})
    first = await world.error(await world.slash("emoji", {"prompt": "gore 1"}))
    assert "global.violence" in first and "One more" not in first
    second = await world.error(await world.slash("emoji", {"prompt": "gore 2"}))
    assert "global.violence" in second
    assert "One more refused prompt blocks you from generating here for 15 minutes" in second
    third = await world.error(await world.slash("emoji", {"prompt": "gore 3"}))
    assert "global.violence" in third and "blocked from generating here for 15 minutes" in third
    posted = await world.emu.wait_for_message(modlog, lambda m: "blocked from generating" in m["content"], 10)
    assert f"<@{world.alice}>" in posted["content"] and "15 min" in posted["content"]
    ban = await world.bot.store.bans.active_ban(str(world.guild), str(world.alice))
    assert ban is not None and ban.moderator_id is None
    assert 890 < (ban.expires_at - ban.created_at).total_seconds() <= 900
    assert "blocked from generating for about 15 min" in await world.error(
        await world.slash("emoji", {"prompt": "a cat"}))


async def test_zh_cn_member_is_warned_in_chinese(world):
    zh = world.emu.create_user("li", locale="zh-CN")
    world.emu.add_member(world.guild, zh.id)
    await world.error(await world.slash("emoji", {"prompt": "gore"}, user=zh.id))
    second = await world.error(await world.slash("emoji", {"prompt": "gore"}, user=zh.id))
    assert "再有一次提示词被拒绝" in second


async def test_mod_unban_lifts_the_block_for_real(world):
    for i in range(3):
        await world.error(await world.slash("emoji", {"prompt": f"gore {i}"}))
    assert "blocked from generating" in await world.error(await world.slash("emoji", {"prompt": "a cat"}))
    assert "may generate here again" in await mod(world, "mod unban", {"user": world.alice})
    await world.result(await world.slash("emoji", {"prompt": "a cat", "seed": 3}))
    # Counting starts afresh after the unban: the next refusal is not a block (nor a warning).
    again = await world.error(await world.slash("emoji", {"prompt": "gore 4"}))
    assert "global.violence" in again and "blocked" not in again and "One more" not in again
    await world.result(await world.slash("emoji", {"prompt": "a dog", "seed": 4}))


async def test_server_managers_are_never_blocked_but_still_refused(world):
    for i in range(5):
        err = await world.error(await world.slash("emoji", {"prompt": f"gore {i}"}, user=world.mod))
        assert "global.violence" in err and "blocked" not in err and "One more" not in err
    await world.result(await world.slash("emoji", {"prompt": "a cat", "seed": 5}, user=world.mod))
    assert await world.bot.store.bans.active_ban(str(world.guild), str(world.mod)) is None
    # The engine refused each prompt but left the blocking to the bot.
    assert world.engine.engine.gate.near_misses.blocked_until(f"discord:{world.mod}") is None
    refused = await world.bot.store.audit.query(guild_id=str(world.guild), action="job.refused")
    assert len(refused) == 5 and {r.verdict for r in refused} == {"refused"}

"""Cooldown defaults and replies through the emulator: a cooldown hit is audited as
`job.throttled` (not a refusal), is answered in the member's language, and does not refuse a
reroll of the member's own result."""
from __future__ import annotations

from tests.e2e.test_actions import job_of


async def _cooldown(world, seconds: float) -> None:
    await world.bot.scoped.set("cooldown_s", seconds, guild_id=str(world.guild))


async def test_cooldown_hit_is_audited_as_throttled_not_as_a_refusal(world):
    await _cooldown(world, 60)
    await world.result(await world.slash("emoji", {"prompt": "cat", "seed": 1}))
    err = await world.error(await world.slash("emoji", {"prompt": "dog", "seed": 2}))
    assert "Please wait 60s between generations" in err and "<t:" in err
    (row,) = await world.bot.store.audit.query(guild_id=str(world.guild), action="job.throttled")
    assert (row.actor_id, row.verdict, row.command) == (str(world.alice), "throttled", "emoji")
    assert row.reason.startswith("cooldown: 60s between generations")
    assert await world.bot.store.audit.query(guild_id=str(world.guild), action="job.refused") == []


async def test_zh_cn_member_gets_the_cooldown_reply_in_chinese(world):
    zh = world.emu.create_user("li", locale="zh-CN")
    world.emu.add_member(world.guild, zh.id)
    await _cooldown(world, 60)
    await world.result(await world.slash("emoji", {"prompt": "cat", "seed": 1}, user=zh.id))
    err = await world.error(await world.slash("emoji", {"prompt": "dog", "seed": 2}, user=zh.id))
    assert "请稍候" in err and "60 秒" in err
    assert "cooldown" not in err.lower() and "between" not in err


async def test_reroll_right_after_a_result_is_not_refused_by_the_default_cooldown(world):
    await world.bot.scoped.clear("cooldown_s", guild_id=str(world.guild))  # the shipped default
    assert (await world.bot.scoped.resolve(_ctx(world))).cooldown_s == 5
    msg = await world.result(await world.slash("emoji", {"prompt": "cat face", "seed": 7}))
    rec = await world.emu.click(int(msg["id"]), f"aigc:reroll:{job_of(msg)}", world.alice)
    rerolled = await world.result(rec)  # own result: no cooldown
    assert job_of(rerolled) != job_of(msg)
    # A new prompt right away still waits for the cooldown.
    err = await world.error(await world.slash("emoji", {"prompt": "dog"}))
    assert "Please wait 5s" in err


def _ctx(world):
    from bot.scoped_settings import SettingsContext

    return SettingsContext(guild_id=str(world.guild))

"""Errors reach the user ephemeral, specific and localized; nothing is charged for them."""
from __future__ import annotations


async def test_engine_down_says_so_with_a_retry(world):
    await world.engine.stop()
    rec = await world.slash("emoji", {"prompt": "cat face"})
    text = await world.error(rec)
    assert "unreachable" in text and "try again in" in text
    assert rec.ack_ms is not None and rec.ack_ms < 3000
    # Back up: the same command works again.
    await world.engine.start()
    msg = await world.result(await world.slash("emoji", {"prompt": "cat face"}))
    assert msg["attachments"]


async def test_queue_full_gives_the_retry_after(world):
    await world.engine.stop()
    world.engine.settings["queue_max"] = 2
    await world.engine.start()
    rec = await world.slash("emoji", {"prompt": "cat face", "count": 4})
    text = await world.error(rec)
    assert "queue is full" in text and "try again in" in text


async def test_bad_option_names_the_field_and_rule(world):
    # Discord enforces ranges client-side (the emulator too); rules it cannot express, such
    # as a blank prompt, come back from the engine's validation.
    rec = await world.slash("emoji", {"prompt": "   "})
    assert await world.error(rec) == "`prompt` is required and must not be empty."


async def test_refused_prompt_names_the_rule_and_is_not_charged(world):
    before = await world.bot.quota.remaining(_ctx(world))
    rec = await world.slash("emoji", {"prompt": "n u d e beach"})
    text = await world.error(rec)
    assert "content policy" in text and "global.sexual" in text and "nude" not in text
    after = await world.bot.quota.remaining(_ctx(world))
    assert after.daily_used == before.daily_used
    assert "job.refused" in await world.audit_actions("job.refused")


async def test_errors_are_localized(world):
    world.emu.world.user(world.alice).locale = "zh-CN"
    rec = await world.slash("emoji", {"prompt": "   "})
    assert await world.error(rec) == "`prompt` is required and must not be empty。"
    await world.engine.stop()
    rec = await world.slash("emoji", {"prompt": "cat face"})
    assert "生成服务暂时无法连接" in await world.error(rec)


def _ctx(world):
    from bot.scoped_settings import SettingsContext

    return SettingsContext(guild_id=str(world.guild), channel_id=str(world.channel), user_id=str(world.alice))

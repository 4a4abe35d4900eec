"""Delivery limits: the interaction's attachment size limit; refunds when delivery fails."""
from __future__ import annotations


async def test_outputs_larger_than_the_attachment_limit_are_refused_and_refunded(world):
    from bot.scoped_settings import SettingsContext

    ctx = SettingsContext(guild_id=str(world.guild), channel_id=str(world.channel), user_id=str(world.alice))
    before = (await world.bot.quota.remaining(ctx)).daily_used
    world.emu.config.attachment_size_limit = 300  # bytes: smaller than any PNG we make
    rec = await world.slash("emoji", {"prompt": "cat face"})
    text = await world.error(rec)
    assert "larger than this channel accepts" in text and "300" in text
    assert (await world.bot.quota.remaining(ctx)).daily_used == before
    world.emu.config.attachment_size_limit = 10 * 2**20
    msg = await world.result(await world.slash("emoji", {"prompt": "cat face"}))
    assert msg["attachments"]
    assert (await world.bot.quota.remaining(ctx)).daily_used == before + 1

"""A job that outlives the 15-minute interaction token is delivered with the bot token."""
from __future__ import annotations

import asyncio


async def test_result_after_token_expiry_is_posted_to_the_channel(world):
    from tests.engine.probe_plugin import make_probe_plugin

    await world.engine.stop()
    plugin, gen = make_probe_plugin()
    world.engine.extra_plugins.append(plugin)
    world.engine.settings["plugins_enabled"] = ["emoji", "probe"]
    await world.engine.start()
    await world.stop_bot()
    await world.start_bot()
    gen.gate.clear()
    rec = await world.slash("probe", {"text": "slow"})
    await world.emu.wait_ack(rec)
    await asyncio.get_running_loop().run_in_executor(None, gen.entered.wait, 10)
    world.emu.clock.advance(16 * 60)  # the interaction token is now dead
    gen.gate.set()
    msg = await world.emu.wait_for_message(world.channel, lambda m: bool(m["embeds"]), timeout=30)
    assert "webhook_id" not in msg and f"<@{world.alice}>" in msg["content"]
    assert msg["attachments"][0]["filename"].startswith("probe-")
    # The expired token was really refused on the way.
    assert any(c.status == 401 for c in world.emu.calls("PATCH"))

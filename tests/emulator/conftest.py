"""Fixtures: an emulator on 127.0.0.1:0 with discord.py pointed at it, and a small world."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from emulator import Emulator, EmulatorConfig, point_discordpy_at


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    emulator = Emulator(EmulatorConfig())
    await emulator.start()
    restore = point_discordpy_at(emulator.api_base, emulator.gateway_url)
    try:
        yield emulator
    finally:
        restore()
        await emulator.stop()


@pytest.fixture
def world(emu: Emulator) -> dict[str, Any]:
    """A guild with #general, a regular user and a moderator."""
    guild = emu.create_guild("Test Guild")
    alice = emu.create_user("alice")
    mod = emu.create_user("mod")
    emu.add_member(guild.id, alice.id)
    emu.add_member(guild.id, mod.id, permissions=1 << 3)
    return {"guild": guild, "channel": guild.channel_ids[0], "alice": alice, "mod": mod}

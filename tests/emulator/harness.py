"""Helpers for driving real discord.py clients against the emulator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import discord
from discord import app_commands

from emulator import Emulator

READY_TIMEOUT = 10.0


class FastIdentify:
    """discord.py sleeps 5 s before every non-initial IDENTIFY; tests skip that."""

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None


class BotClient(FastIdentify, discord.Client):
    """A plain client with a command tree (what most tests need)."""

    def __init__(self, **kw: Any) -> None:
        kw.setdefault("intents", discord.Intents.default())
        kw.setdefault("guild_ready_timeout", 0.05)
        super().__init__(**kw)
        self.tree = app_commands.CommandTree(self)
        self.sync_guild: int | None = None

    async def setup_hook(self) -> None:
        if self.sync_guild is not None:
            await self.tree.sync(guild=discord.Object(self.sync_guild))
        else:
            await self.tree.sync()


@contextlib.asynccontextmanager
async def running(client: discord.Client, emulator: Emulator, token: str | None = None) -> AsyncIterator[discord.Client]:
    """Start ``client`` against the emulator and wait for on_ready; close it afterwards."""
    task = asyncio.create_task(client.start(token or emulator.token))
    ready = asyncio.create_task(client.wait_until_ready())
    done, _ = await asyncio.wait({task, ready}, timeout=READY_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        await client.close()
        if task.done():
            task.result()  # surface the client's exception
        raise AssertionError("client did not become ready")
    try:
        yield client
    finally:
        await client.close()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)

"""End-to-end harness: the real engine (emoji plugin), the Discord emulator and the real bot,
all on loopback in one event loop; the bot's store is a real SQLite file."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from aiohttp import web

from tests.conftest import TOKEN


@dataclass
class EngineProcess:
    """An engine served on a fixed loopback port, so it can be stopped and started again."""

    data_dir: Path
    settings: dict = field(default_factory=dict)
    extra_plugins: list = field(default_factory=list)
    port: int = 0
    runner: web.AppRunner | None = None
    engine: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        from engine.config import load_engine_settings
        from engine.server import build_app
        from engine.service import Engine

        s = {"data_dir": self.data_dir, "warmup": False, "plugins_enabled": ["emoji"], **self.settings}
        self.engine = Engine(load_engine_settings(**s), extra_plugins=self.extra_plugins)
        self.runner = web.AppRunner(build_app(self.engine, TOKEN), access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@dataclass
class World:
    emu: Any
    engine: EngineProcess
    guild: int
    channel: int
    alice: int  # a regular member
    mod: int  # a moderator (Manage Server, Manage Expressions)
    bot_settings: Any
    running: Any = None

    @property
    def bot(self):
        return self.running.bot

    async def start_bot(self) -> None:
        from bot.runner import start_bot

        self.running = await start_bot(self.bot_settings, ready_timeout=20, guild_ready_timeout=0.05)
        await self.bot.scoped.set("cooldown_s", 0, guild_id=str(self.guild))

    async def stop_bot(self) -> None:
        if self.running is not None:
            await self.running.stop()
            self.running = None

    async def slash(self, command: str, options: dict | None = None, *, user: int | None = None,
                    channel: int | None = None):
        return await self.emu.slash(self.guild, channel or self.channel, user or self.alice, command, options or {})

    async def final(self, rec, timeout: float = 30.0) -> list[dict]:
        """The interaction's messages once one is final: a result (embeds) or an ephemeral
        reply; progress edits ("Queued #n…") do not count."""
        emu = self.emu

        def ready():
            msgs = [emu.world.messages[m] for m in emu.record(rec).message_ids() if m in emu.world.messages]
            msgs = [emu.world.message_payload(m) for m in msgs if not m.deleted]
            done = [m for m in msgs if not m["flags"] & 128 and (m["embeds"] or m["flags"] & 64)]
            return msgs if done else None

        return await emu.wait_for(ready, timeout)

    async def result(self, rec, timeout: float = 30.0) -> dict:
        """The public result message of a generation (fails on an ephemeral error)."""
        msgs = await self.final(rec, timeout)
        results = [m for m in msgs if m["embeds"] and not m["flags"] & 64]
        assert results, f"no result; messages: {[m['content'] for m in msgs]}"
        return results[-1]

    async def eventually(self, check, timeout: float = 10.0):
        """Poll an async check (store reads) until it returns something truthy."""
        import asyncio

        end = asyncio.get_running_loop().time() + timeout
        while True:
            got = await check()
            if got or asyncio.get_running_loop().time() > end:
                return got
            await asyncio.sleep(0.05)

    async def audit_actions(self, expect: str | None = None) -> list[str]:
        async def actions():
            acts = [a.action for a in await self.bot.store.audit.query(guild_id=str(self.guild))]
            return acts if expect is None or expect in acts else None
        return await self.eventually(actions) or []

    async def error(self, rec, timeout: float = 30.0) -> str:
        """The ephemeral error text an interaction produced."""
        msgs = await self.final(rec, timeout)
        errors = [m for m in msgs if m["flags"] & 64]
        assert errors, f"no ephemeral reply; messages: {msgs}"
        return errors[-1]["content"]


@pytest.fixture
async def world(tmp_path, request) -> AsyncIterator[World]:
    from bot.config import load_bot_settings
    from emulator import Emulator, EmulatorConfig

    # @pytest.mark.engine_plugins("name", ...): the plugins the engine serves (default: emoji)
    marker = request.node.get_closest_marker("engine_plugins")
    engine = EngineProcess(tmp_path / "engine", settings={"plugins_enabled": list(marker.args)} if marker else {})
    await engine.start()
    emu = Emulator(EmulatorConfig())
    await emu.start()
    guild = emu.create_guild("E2E Guild", channels=("general", "review"))
    alice, mod = emu.create_user("alice"), emu.create_user("mod")
    emu.add_member(guild.id, alice.id)
    emu.add_member(guild.id, mod.id, permissions=(1 << 5) | (1 << 13) | (1 << 30))
    emu.set_bot_permissions(guild.id, (1 << 30) | (1 << 11) | (1 << 15) | (1 << 13))
    settings = load_bot_settings(
        discord_token=emu.token, engine_url=[engine.url], engine_token=TOKEN,
        data_dir=tmp_path / "bot", discord_api_base=emu.api_base, discord_gateway=emu.gateway_url,
        catalog_poll_s=0, engine_health_s=0, http_port=0)  # test_health.py turns HTTP on
    w = World(emu, engine, guild.id, guild.channel_ids[0], alice.id, mod.id, settings)
    await w.start_bot()
    try:
        yield w
    finally:
        await w.stop_bot()
        await emu.stop()
        with contextlib.suppress(Exception):
            await engine.stop()

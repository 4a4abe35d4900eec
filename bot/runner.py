"""Run the bot against Discord, or, with no token, against the local emulator."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from bot.app import AigcBot
from bot.config import BotSettings
from bot.health import HealthServer
from bot.services import Services

log = logging.getLogger("aigc.bot.runner")
DISCORD_API = "https://discord.com/api/v10"


@dataclass
class Running:
    bot: AigcBot
    task: asyncio.Task
    services: Services | None = None
    emulator: Any | None = None
    restore: Any | None = None
    http: HealthServer | None = None  # /healthz and /metrics

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.stop()
        await self.bot.close()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(self.task, 10)
        if self.services is not None:
            await self.services.close()
        if self.restore:
            self.restore()
        if self.emulator is not None:
            await self.emulator.stop()


async def start_bot(settings: BotSettings, *, emulator_port: int | None = None,
                    ready_timeout: float = 60, **bot_kw: Any) -> Running:
    """Log in and wait until the bot is ready and its commands are synced."""
    from emulator import Emulator, EmulatorConfig, point_discordpy_at

    emulator = restore = None
    if settings.discord_token is not None:
        token = settings.discord_token.get_secret_value()
        if settings.discord_api_base != DISCORD_API:
            restore = point_discordpy_at(settings.discord_api_base, settings.discord_gateway)
    else:
        port = settings.emulator_port if emulator_port is None else emulator_port
        config = EmulatorConfig(host=settings.emulator_host, port=port)
        token = config.token
        if settings.discord_api_base == DISCORD_API:
            # No token and no Discord of our own: run the local emulator in this process.
            emulator = Emulator(config)
            await emulator.start()
            emulator.seed_demo()
            restore = point_discordpy_at(emulator.api_base, emulator.gateway_url)
        else:
            restore = point_discordpy_at(settings.discord_api_base, settings.discord_gateway)
    if settings.shard_ids is not None and "shard_count" not in bot_kw:  # AIGC_SHARDS: a range of them
        bot_kw["shard_ids"], bot_kw["shard_count"] = settings.shard_ids
    bot = AigcBot(settings, **bot_kw)
    services = http = None
    try:
        services = await Services.open(settings, bot)  # the store, and every part wired once
        bot.attach(services)
        if settings.http_port:  # first, so /healthz says 503 while the bot starts
            http = await HealthServer(services, settings.http_host, settings.http_port).start()
        await bot.login(token)  # REST handshake and setup_hook (engine, commands, command sync)
    except BaseException:
        await Running(bot, asyncio.create_task(asyncio.sleep(0)), services, emulator, restore, http).stop()
        raise
    task = asyncio.create_task(bot.connect(), name="discord-bot")
    running = Running(bot, task, services, emulator, restore, http)
    ready = asyncio.create_task(_ready(bot))
    done, _ = await asyncio.wait({task, ready}, timeout=ready_timeout, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        await running.stop()
        if task.done() and task.exception():
            raise task.exception()  # type: ignore[misc]
        raise TimeoutError("the bot did not become ready")
    return running


async def _ready(bot: AigcBot) -> None:
    await bot.wait_until_ready()
    await bot.synced.wait()

"""The moderation parts the rest of the bot uses, built once by bot.services: the guild's
prompt rules (``policy``), the review queue (``review``), the mod-log mirror (``mirror``) and
the periodic retention task."""
from __future__ import annotations

import asyncio
from typing import Any

import discord

from bot import engine_client as ec
from bot.catalog_commands import CatalogState
from bot.moderation import privacy
from bot.moderation.audit_mirror import AuditMirror
from bot.moderation.review import ReviewQueue
from bot.moderation.rules import GuildPolicy
from bot.results import Renderer
from bot.scoped_settings import CommunitySettings, ScopedSettings
from bot.store import Store


class Moderation:
    def __init__(self, client: discord.Client, store: Store, scoped: ScopedSettings[CommunitySettings],
                 engine: ec.EngineClient, catalog: CatalogState, renderer: Renderer):
        self.client, self.store, self.scoped = client, store, scoped
        self.policy = GuildPolicy(client, engine)
        self.mirror = AuditMirror(client, store, scoped)
        self.review = ReviewQueue(client, store, engine, catalog, renderer, self.mirror)
        self._retention: asyncio.Task[Any] | None = None

    def start(self, retention_interval_s: float | None = None) -> None:
        """Mirror audit appends and run the retention task (once the gateway is ready)."""
        self.mirror.install()
        interval = retention_interval_s or privacy.RETENTION_INTERVAL_S
        self._retention = asyncio.get_running_loop().create_task(
            privacy.retention_loop(self.client, self.apply_retention, interval))

    async def apply_retention(self) -> Any:
        return await privacy.apply_retention(self.client, self.store, self.scoped, self.mirror)

    async def stop(self) -> None:
        if self._retention is not None:
            self._retention.cancel()
        await self.mirror.drain()

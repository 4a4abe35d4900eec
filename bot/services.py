"""The bot's services: one typed object, built once by the runner (``Services.open``) and
handed to the Discord application and its command groups. Nothing in it refers back to the
bot class; the Discord connection is held as a plain ``discord.Client`` (REST calls, the
gateway's caches).

Who uses what: the generation pipeline (``generation``) gates through ``community``, submits
to and follows ``engine``, records in ``store``, charges ``quota`` and delivers directly or
through ``moderation.review``; command groups read ``catalog`` and ``scoped`` settings.
"""
from __future__ import annotations

from dataclasses import dataclass

import discord

from bot.catalog_commands import CatalogState
from bot.community import Community
from bot.config import BotSettings
from bot.engine_client import EngineClient
from bot.generation import Generation
from bot.metrics import BotMetrics
from bot.moderation.service import Moderation
from bot.quota import QuotaService
from bot.results import Renderer
from bot.scoped_settings import CommunitySettings, ScopedSettings
from bot.store import Store


@dataclass
class Services:
    config: BotSettings
    client: discord.Client
    engine: EngineClient
    metrics: BotMetrics
    store: Store
    scoped: ScopedSettings[CommunitySettings]
    quota: QuotaService
    catalog: CatalogState
    renderer: Renderer
    moderation: Moderation
    community: Community
    generation: Generation

    @classmethod
    async def open(cls, settings: BotSettings, client: discord.Client) -> Services:
        """Open the store and wire every part (no network: the engine client starts with
        ``start``)."""
        token = settings.engine_token.get_secret_value() if settings.engine_token else None
        engine = EngineClient([str(u) for u in settings.engine_url], token, health_interval_s=settings.engine_health_s)
        metrics = BotMetrics(lambda: client.latency)
        engine.on_error = metrics.engine_error
        store = await Store.open(settings.store_url or "")
        scoped = ScopedSettings(store)
        quota = QuotaService(store, scoped)
        catalog = CatalogState()
        renderer = Renderer(engine)
        moderation = Moderation(client, store, scoped, engine, catalog, renderer)
        community = Community(store, scoped, quota, moderation.policy, moderation.mirror)
        generation = Generation(client, engine, store, quota, community, moderation.review, renderer)
        return cls(settings, client, engine, metrics, store, scoped, quota, catalog, renderer, moderation,
                   community, generation)

    async def start(self) -> None:
        """Start what runs in the background: the engine client's health checks, the audit
        mirror and the retention task."""
        await self.engine.start()
        self.moderation.start()

    async def close(self) -> None:
        await self.moderation.stop()
        await self.engine.close()
        await self.store.close()

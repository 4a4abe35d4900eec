"""The Discord application: an AutoShardedBot whose slash commands come from the engine's catalog.

Catalog commands are synced as raw payloads next to the bot's own app_commands and dispatched
by name to the generic generation flow; nothing here knows any plugin.
"""
from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import actions, builtin_commands, generation, moderation
from bot.catalog_commands import catalog_commands, command_payload, interaction_options, payload_hash
from bot.community import Community
from bot.config import BotSettings
from bot.custom_ids import ButtonId
from bot.engine_client import EngineClient, EngineClientError
from bot.metrics import BotMetrics
from bot.quota import QuotaService
from bot.rendering import result_buttons
from bot.scoped_settings import CommunitySettings, ScopedSettings
from bot.store import Store
from bot.views import ActionButton, buttons_view
from engine.protocol import AutocompleteRequest, Catalog, CommandSpec, JobView

log = logging.getLogger("aigc.bot")


class Translator(app_commands.Translator):
    """The bot's own commands carry their zh-CN text as `locale_str(..., zh=...)`."""

    async def translate(self, string: app_commands.locale_str, locale: discord.Locale,
                        context: app_commands.TranslationContext) -> str | None:
        if locale is discord.Locale.chinese:
            return string.extras.get("zh")
        if locale is discord.Locale.american_english:
            return string.message
        return None


class CatalogTree(app_commands.CommandTree):
    """Routes catalog commands (and their autocomplete) to the bot; the rest to discord.py."""

    def _from_interaction(self, interaction: discord.Interaction) -> None:
        bot: AigcBot = self.client  # type: ignore[assignment]
        data: dict[str, Any] = interaction.data or {}  # type: ignore[assignment]
        if data.get("type", 1) == 1 and data.get("name") in bot.catalog_specs:
            if interaction.type is discord.InteractionType.autocomplete:
                bot.loop.create_task(bot.on_catalog_autocomplete(interaction))
            else:
                bot.loop.create_task(bot.on_catalog_command(interaction))
            return
        super()._from_interaction(interaction)

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        bot: AigcBot = self.client  # type: ignore[assignment]
        command = interaction.command.qualified_name if interaction.command else "unknown"
        bot.metrics.interaction(command, "denied" if isinstance(error, app_commands.CheckFailure) else "error")
        await super().on_error(interaction, error)


class AigcBot(commands.AutoShardedBot):
    def __init__(self, settings: BotSettings, *, shard_count: int | None = None, **kw: Any):
        intents = discord.Intents.default()
        intents.message_content = False
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, tree_cls=CatalogTree,
                         help_command=None, shard_count=shard_count, **kw)
        self.config = settings
        token = settings.engine_token.get_secret_value() if settings.engine_token else None
        self.engine = EngineClient([str(u) for u in settings.engine_url], token,
                                   health_interval_s=settings.engine_health_s)
        self.metrics = BotMetrics(lambda: self.latency)
        self.engine.on_error = self.metrics.engine_error
        self.store: Store = None  # type: ignore[assignment]  # opened in setup_hook
        self.scoped: ScopedSettings[CommunitySettings] = None  # type: ignore[assignment]
        self.quota: QuotaService = None  # type: ignore[assignment]
        self.community = Community(self)
        self.catalog: Catalog | None = None
        self.catalog_specs: dict[str, CommandSpec] = {}
        self._poller: asyncio.Task | None = None
        self.synced = asyncio.Event()
        self.admission = asyncio.Semaphore(4)  # flows in their gate/submit phase at once

    # ---- start-up -------------------------------------------------------------------

    async def setup_hook(self) -> None:
        self.store = await Store.open(self.config.store_url or "")
        self.scoped = ScopedSettings(self.store)
        self.quota = QuotaService(self.store, self.scoped)
        await self.engine.start()
        await self.tree.set_translator(Translator())
        self.add_dynamic_items(ActionButton)
        builtin_commands.register(self)
        await moderation.register(self)
        try:
            await self.refresh_catalog()
        except EngineClientError as e:  # the engine may start later; polling picks it up
            log.warning("engine catalog unavailable at start-up", extra={"error": str(e)})
            await self.sync_commands()
        if self.config.catalog_poll_s > 0:
            self._poller = self.loop.create_task(self._poll_catalog())

    async def close(self) -> None:
        if self._poller:
            self._poller.cancel()
        await super().close()
        await self.engine.close()
        if self.store is not None:
            await self.store.close()

    # ---- catalog and sync -------------------------------------------------------------

    async def refresh_catalog(self) -> bool:
        """Fetch the catalog; sync commands when their content changed. True if synced."""
        catalog = await self.engine.catalog()
        self.catalog = catalog
        self.catalog_specs = catalog_commands(catalog)
        return await self.sync_commands()

    async def command_payload(self) -> list[dict[str, Any]]:
        translator = self.tree.translator
        own = []
        for cmd in self.tree.get_commands():
            own.append(await cmd.get_translated_payload(self.tree, translator) if translator
                       else cmd.to_dict(self.tree))
        return own + [command_payload(c) for c in self.catalog_specs.values()]

    async def sync_commands(self) -> bool:
        payload = await self.command_payload()
        digest = payload_hash(payload)
        state_file = Path(self.config.data_dir) / "command-sync.json"
        state = json.loads(state_file.read_text()) if state_file.exists() else {}
        app_id = self.application_id
        assert app_id is not None
        scopes = [str(g) for g in self.config.test_guilds] or ["global"]
        changed = False
        for scope in scopes:
            key = f"{app_id}:{scope}"
            if state.get(key) == digest:
                continue
            if scope == "global":
                await self.http.bulk_upsert_global_commands(app_id, payload)
            else:
                await self.http.bulk_upsert_guild_commands(app_id, int(scope), payload)
            state[key] = digest
            changed = True
            log.info("commands synced", extra={"scope": scope, "commands": len(payload)})
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(json.dumps(state))
        self.synced.set()
        return changed

    async def _poll_catalog(self) -> None:
        while True:
            await asyncio.sleep(self.config.catalog_poll_s)
            try:
                old = self.catalog.hash if self.catalog else None
                catalog = await self.engine.catalog()
                if catalog.hash != old:
                    self.catalog = catalog
                    self.catalog_specs = catalog_commands(catalog)
                    await self.sync_commands()
            except EngineClientError as e:
                log.warning("catalog poll failed", extra={"error": str(e)})
            except Exception:
                log.exception("catalog poll failed")

    # ---- interactions ------------------------------------------------------------------

    async def on_catalog_command(self, it: discord.Interaction) -> None:
        data: dict[str, Any] = it.data  # type: ignore[assignment]
        spec = self.catalog_specs[data["name"]]
        # First, long before Discord's 3 s; ephemeral where outputs are held for review.
        await it.response.defer(thinking=True, ephemeral=await self.community.holds_for_review(it))
        values, _ = interaction_options(data)
        req = generation.Request(it, spec, values)
        try:
            await generation.run(self, req)
        finally:
            self.metrics.interaction(spec.name, req.outcome)

    async def on_app_command_completion(self, it: discord.Interaction, command: Any) -> None:
        self.metrics.interaction(command.qualified_name, "ok")

    async def on_catalog_autocomplete(self, it: discord.Interaction) -> None:
        data: dict[str, Any] = it.data  # type: ignore[assignment]
        values, focused = interaction_options(data)
        choices: list[app_commands.Choice] = []
        if focused:
            try:
                resp = await self.engine.autocomplete(AutocompleteRequest(
                    command=data["name"], option=focused, value=str(values.get(focused) or "")[:100],
                    options={k: v for k, v in values.items() if k != focused}))
                choices = [app_commands.Choice(name=c.name[:100], value=c.value) for c in resp.choices[:25]]
            except EngineClientError as e:
                log.warning("autocomplete failed", extra={"error": str(e)})
        await it.response.autocomplete(choices)

    async def on_action(self, it: discord.Interaction, bid: ButtonId) -> None:
        try:
            await actions.handle(self, it, bid)
            self.metrics.interaction(f"button:{bid.action}", "ok")
        except Exception as e:
            self.metrics.interaction(f"button:{bid.action}", "error")
            log.exception("action failed", extra={"action": bid.action, "job": bid.job})
            await generation.send_error(it, generation.error_message(e, it.locale))

    def result_view(self, view: JobView, spec: CommandSpec) -> discord.ui.View:
        savable = any(a.presentation.value == "image" for a in view.artifacts)
        return buttons_view(result_buttons(view, spec, savable=savable))

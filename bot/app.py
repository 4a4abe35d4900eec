"""The Discord application: an AutoShardedBot whose slash commands come from the engine's catalog.

Catalog commands are synced as raw payloads next to the bot's own app_commands. The tree
declines them through its public global check (``AigcTree.interaction_check``) and the bot's
``on_interaction`` event routes them, by name, to the generation pipeline; result buttons are
routed there by custom_id. Nothing here knows any plugin. Everything the bot does goes through
the services (bot.services) handed to it by the runner.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import actions, generation_commands, jobs_commands, member_commands
from bot.catalog_commands import command_payload, interaction_options, payload_hash
from bot.community import Community
from bot.config import BotSettings
from bot.custom_ids import ButtonId
from bot.engine_client import EngineClient, EngineClientError
from bot.generation import Request
from bot.metrics import BotMetrics
from bot.output_picker import picked
from bot.moderation import commands as moderation_commands
from bot.moderation.service import Moderation
from bot.quota import QuotaService
from bot.results import error_message, send_error
from bot.scoped_settings import CommunitySettings, ScopedSettings
from bot.services import Services
from bot.store import Store
from engine.protocol import AutocompleteRequest, CommandSpec, OptionSpec, ordered_choices

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


def locale_choices(option: OptionSpec, locale: str, typed: str) -> list[app_commands.Choice]:
    """An option's fixed choices as autocomplete: named and ordered for ``locale``, those matching
    what was typed (in either language, or the value) first."""
    needle = typed.strip().casefold()
    out = []
    for c in ordered_choices(option, locale):
        name = c.name_localizations.get(locale, c.name)
        if needle and not any(needle in s.casefold() for s in (name, c.name, str(c.value))):
            continue
        out.append(app_commands.Choice(name=name[:100], value=c.value))
    return out[:25]


def catalog_command_of(it: discord.Interaction, catalog: Mapping[str, CommandSpec]) -> CommandSpec | None:
    """The catalog command a slash command (or its autocomplete) interaction is for, if any."""
    if it.type not in (discord.InteractionType.application_command, discord.InteractionType.autocomplete):
        return None
    data: dict[str, Any] = it.data or {}  # type: ignore[assignment]
    return catalog.get(data.get("name", "")) if data.get("type", 1) == 1 else None


class AigcTree(app_commands.CommandTree):
    """The bot's own commands. Catalog commands are not the tree's: its global check declines
    them (the bot's ``on_interaction`` answers them), so they never reach command lookup."""

    catalog: Mapping[str, CommandSpec] = {}
    metrics: BotMetrics | None = None

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return catalog_command_of(interaction, self.catalog) is None

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        command = interaction.command.qualified_name if interaction.command else "unknown"
        if self.metrics is not None:
            self.metrics.interaction(command, "denied" if isinstance(error, app_commands.CheckFailure) else "error")
        await super().on_error(interaction, error)


class AigcBot(commands.AutoShardedBot):
    def __init__(self, settings: BotSettings, *, shard_count: int | None = None, **kw: Any):
        intents = discord.Intents.default()
        intents.message_content = False
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, tree_cls=AigcTree,
                         help_command=None, shard_count=shard_count, **kw)
        self.config = settings
        self._services: Services | None = None
        self._poller: asyncio.Task | None = None
        self.synced = asyncio.Event()

    def attach(self, services: Services) -> None:
        """Hand the bot its services (built by the runner for this client) before login."""
        self._services = services

    @property
    def services(self) -> Services:
        if self._services is None:
            raise RuntimeError("AigcBot.attach(services) must come before login")
        return self._services

    # The services most often reached from outside (tests, tools), under their old names.
    @property
    def engine(self) -> EngineClient:
        return self.services.engine

    @property
    def store(self) -> Store:
        return self.services.store

    @property
    def scoped(self) -> ScopedSettings[CommunitySettings]:
        return self.services.scoped

    @property
    def quota(self) -> QuotaService:
        return self.services.quota

    @property
    def community(self) -> Community:
        return self.services.community

    @property
    def moderation(self) -> Moderation:
        return self.services.moderation

    @property
    def metrics(self) -> BotMetrics:
        return self.services.metrics

    # ---- start-up -------------------------------------------------------------------

    async def setup_hook(self) -> None:
        s = self.services
        await s.start()
        tree = self.tree
        assert isinstance(tree, AigcTree)
        tree.catalog, tree.metrics = s.catalog, s.metrics
        await tree.set_translator(Translator())
        await self.add_cog(jobs_commands.JobCommands(s))
        generation_commands.install(tree, s, self.refresh_catalog)
        await moderation_commands.install(self, s)
        await member_commands.install(self, s)
        try:
            await self.refresh_catalog()
        except EngineClientError as e:  # the engine may start later; polling picks it up
            log.warning("engine catalog unavailable at start-up", extra={"error": str(e)})
            await self.sync_commands()
        if self.config.catalog_poll_s > 0:
            self._poller = self.loop.create_task(self._poll_catalog())

    async def close(self) -> None:
        """Disconnect; the services are closed by whoever built them (bot.runner)."""
        if self._poller:
            self._poller.cancel()
        await super().close()

    # ---- catalog and sync -------------------------------------------------------------

    async def refresh_catalog(self) -> bool:
        """Fetch the catalog; sync commands when their content changed. True if synced."""
        self.services.catalog.update(await self.engine.catalog())
        return await self.sync_commands()

    async def command_payload(self) -> list[dict[str, Any]]:
        translator = self.tree.translator
        own = []
        for cmd in self.tree.get_commands():
            own.append(await cmd.get_translated_payload(self.tree, translator) if translator
                       else cmd.to_dict(self.tree))
        return own + [command_payload(c) for c in self.services.catalog.values()]

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
        catalog = self.services.catalog
        while True:
            await asyncio.sleep(self.config.catalog_poll_s)
            try:
                fetched = await self.engine.catalog()
                if fetched.hash != catalog.hash:
                    catalog.update(fetched)
                    await self.sync_commands()
            except EngineClientError as e:
                log.warning("catalog poll failed", extra={"error": str(e)})
            except Exception:
                log.exception("catalog poll failed")

    # ---- interactions ------------------------------------------------------------------

    async def on_interaction(self, it: discord.Interaction) -> None:
        """Catalog commands and their autocomplete (declined by the tree), and result buttons."""
        spec = catalog_command_of(it, self.services.catalog)
        if spec is not None:
            if it.type is discord.InteractionType.autocomplete:
                await self.on_catalog_autocomplete(it)
            else:
                await self.on_catalog_command(it, spec)
            return
        if it.type is discord.InteractionType.component:
            data: dict[str, Any] = it.data or {}  # type: ignore[assignment]
            bid = ButtonId.decode(str(data.get("custom_id", "")))
            if bid is not None:
                await self.on_action(it, picked(bid, data))

    async def on_catalog_command(self, it: discord.Interaction, spec: CommandSpec) -> None:
        data: dict[str, Any] = it.data  # type: ignore[assignment]
        s = self.services
        # First, long before Discord's 3 s; ephemeral where outputs are held for review.
        await it.response.defer(thinking=True, ephemeral=await s.community.holds_for_review(it))
        values, _ = interaction_options(data)
        req = Request(it, spec, values)
        try:
            await s.generation.run(req)
        finally:
            s.metrics.interaction(spec.name, req.outcome)

    async def on_app_command_completion(self, it: discord.Interaction, command: Any) -> None:
        self.metrics.interaction(command.qualified_name, "ok")

    async def on_catalog_autocomplete(self, it: discord.Interaction) -> None:
        data: dict[str, Any] = it.data  # type: ignore[assignment]
        values, focused = interaction_options(data)
        choices: list[app_commands.Choice] = []
        spec = catalog_command_of(it, self.services.catalog)
        option = next((o for o in spec.options if o.name == focused), None) if spec else None
        if option is not None and option.choices:  # fixed choices, ordered for the member's locale
            await it.response.autocomplete(locale_choices(option, str(it.locale), str(values.get(focused) or "")))
            return
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
            await actions.handle(self.services, it, bid)
            self.metrics.interaction(f"button:{bid.action}", "ok")
        except Exception as e:
            self.metrics.interaction(f"button:{bid.action}", "error")
            log.exception("action failed", extra={"action": bid.action, "job": bid.job})
            await send_error(it, error_message(e, it.locale))

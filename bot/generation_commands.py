"""The generation area's own commands (the catalog's commands are synced as raw payloads, see
bot/catalog_commands.py): `/aigc reload` (Manage Server), which reloads the generator catalog,
and the "Make variations" and "Blend" message context menus. ``install`` adds both to the tree."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

import discord
from discord import app_commands

from bot.actions import parent_ref
from bot.animation import BlendMenu
from bot.generation import Request
from bot.i18n import t
from bot.results import send_error
from bot.services import Services

_ = app_commands.locale_str


def install(tree: app_commands.CommandTree, services: Services,
            refresh_catalog: Callable[[], Awaitable[bool]]) -> None:
    """``refresh_catalog``: fetch the engine's catalog and sync the commands (True if synced)."""
    tree.add_command(AigcCommands(services, refresh_catalog))
    # Context menus cannot be methods of a group or a Cog (discord.py): a bound method it is.
    tree.add_command(app_commands.ContextMenu(name=_("Make variations", zh="生成变体"),
                                              callback=Variations(services).make_variations))
    tree.add_command(app_commands.ContextMenu(name=_("Blend", zh="融合"), callback=BlendMenu(services).blend))


class AigcCommands(app_commands.Group, name="aigc", description=_("Bot administration", zh="机器人管理"),
                   default_permissions=discord.Permissions(manage_guild=True)):

    def __init__(self, services: Services, refresh_catalog: Callable[[], Awaitable[bool]]) -> None:
        super().__init__()
        self.services = services
        self.refresh_catalog = refresh_catalog

    @app_commands.command(name="reload", description=_("Reload the generator catalog", zh="重新加载生成器目录"))
    async def reload(self, it: discord.Interaction) -> None:
        await it.response.defer(ephemeral=True, thinking=True)
        if not it.permissions.manage_guild:
            await it.followup.send(t(it.locale, "admin_only"), ephemeral=True)
            return
        changed = await self.refresh_catalog()
        await it.followup.send(t(it.locale, "reloaded", commands=len(self.services.catalog),
                                 changed=t(it.locale, "changed" if changed else "unchanged")), ephemeral=True)


class Variations:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def make_variations(self, it: discord.Interaction, message: discord.Message) -> None:
        s = self.services
        await it.response.defer(thinking=True, ephemeral=await s.community.holds_for_review(it))
        record = await s.store.jobs.get_by_result_message(str(message.id))
        spec = s.catalog.get(record.command) if record else None
        if record is None or spec is None or not any(a.name == "variations" for a in spec.actions):
            await send_error(it, t(it.locale, "not_a_result"))
            return
        await s.generation.run(Request(it, spec, {}, parent=parent_ref(record, "variations", 0)))

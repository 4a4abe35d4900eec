"""Moderated community use: the guild's prompt rules and AutoMod import (``rules``), the
review queue (``review``), moderator and member commands (``commands``), privacy and
retention (``privacy``) and the mod-log mirror of the audit log (``audit_mirror``).

``register(bot)`` is called once from ``AigcBot.setup_hook`` (after the store is open) and
sets ``bot.moderation``.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands as ext_commands

from bot.moderation.audit_mirror import AuditMirror
from bot.moderation.review import ReviewButton, ReviewQueue
from bot.moderation.rules import GuildPolicy

if TYPE_CHECKING:
    from bot.app import AigcBot


class Moderation(ext_commands.Cog):
    """A cog so that ``bot.close()`` unloads it (and stops the retention task)."""

    def __init__(self, bot: "AigcBot"):
        self.bot = bot
        self.policy = GuildPolicy(bot)
        self.review = ReviewQueue(bot)
        self.mirror = AuditMirror(bot)
        self._retention: asyncio.Task[Any] | None = None

    async def apply_retention(self) -> Any:
        from bot.moderation.privacy import apply_retention

        return await apply_retention(self.bot)

    async def cog_unload(self) -> None:
        if self._retention is not None:
            self._retention.cancel()
        await self.mirror.drain()


async def register(bot: "AigcBot") -> Moderation:
    from bot.moderation import commands, privacy

    m = Moderation(bot)
    bot.moderation = m  # type: ignore[attr-defined]
    m.mirror.install()
    bot.add_dynamic_items(ReviewButton)
    commands.register(bot)
    privacy.register(bot)

    async def on_interaction(it: discord.Interaction) -> None:
        if it.type is discord.InteractionType.modal_submit:
            await m.review.on_modal(it)

    async def on_automod_rule_change(rule: Any) -> None:
        guild_id = getattr(rule, "guild_id", None) or getattr(getattr(rule, "guild", None), "id", None)
        if guild_id is not None:
            m.policy.invalidate(int(guild_id))

    bot.add_listener(on_interaction, "on_interaction")
    for event in ("on_automod_rule_create", "on_automod_rule_update", "on_automod_rule_delete"):
        bot.add_listener(on_automod_rule_change, event)
    interval = getattr(bot.config, "retention_interval_s", None) or privacy.RETENTION_INTERVAL_S
    m._retention = bot.loop.create_task(privacy.retention_loop(bot, interval))
    await bot.add_cog(m)
    return m


__all__ = ["Moderation", "register"]

"""`/mod review on` and `off`: hold outputs for moderator review in a channel the bot can post to,
or publish them directly (the queue itself is bot/moderation/review.py)."""
from __future__ import annotations

import discord
from discord import app_commands

from bot.i18n import t
from bot.moderation.base import ModGroup, reply
from bot.scoped_settings import SettingsContext

_ = app_commands.locale_str


class ReviewCommands(ModGroup, name="review", description=_("Hold outputs for review", zh="输出先审核后发布")):

    @app_commands.command(name="on", description=_("Hold outputs for moderator review", zh="开启输出审核"))
    @app_commands.describe(channel=_("Where moderators review (kept if not given)", zh="审核频道（不填则沿用）"))
    async def review_on(self, it: discord.Interaction, channel: discord.TextChannel | None = None) -> None:
        s = self.services
        await it.response.defer(ephemeral=True, thinking=True)  # first: acknowledge
        g = str(it.guild_id)
        current = await s.scoped.get("review_channel", SettingsContext(guild_id=g))
        target = str(channel.id) if channel else current
        if target is None:
            await reply(it, t(it.locale, "review_needs_channel"))
            return
        try:  # the queue is useless if the bot cannot post there: find out now, not with a job
            await s.client.get_partial_messageable(int(target), guild_id=it.guild_id).send(
                t(it.guild_locale or "en-US", "review_hello", moderator=it.user.mention),
                allowed_mentions=discord.AllowedMentions.none())
        except discord.HTTPException as e:
            await reply(it, t(it.locale, "review_channel_closed", channel=f"<#{target}>", error=e.text or e.status))
            return
        await s.scoped.set("review_channel", target, guild_id=g)
        await s.scoped.set("review_enabled", True, guild_id=g)
        s.community.forget_review_cache(it.guild_id)
        await self.audit(it, "mod.review.on", detail={"command": "/mod review on", "review_channel": target})
        await reply(it, t(it.locale, "review_on", channel=f"<#{target}>"))

    @app_commands.command(name="off", description=_("Publish outputs directly", zh="关闭输出审核"))
    async def review_off(self, it: discord.Interaction) -> None:
        s = self.services
        await it.response.defer(ephemeral=True, thinking=True)  # first: acknowledge
        await s.scoped.set("review_enabled", False, guild_id=str(it.guild_id))
        s.community.forget_review_cache(it.guild_id)
        await self.audit(it, "mod.review.off", detail={"command": "/mod review off"})
        pending = await s.store.reviews.list_pending(str(it.guild_id))
        await reply(it, t(it.locale, "review_off", pending=len(pending)))

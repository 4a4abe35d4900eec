"""Privacy: `/privacy` (what is stored and for how long), `/forget-me` (erase the caller's
data after a confirmation button), a guild's data purged when the bot leaves it, and the
periodic retention task.

Erasure and logs pull in opposite directions: the GDPR (Art. 17) gives people the right to
have their data erased, while other rules require keeping logs (e.g. China's Cybersecurity
Law: network logs for at least six months; the GDPR itself lets a controller keep what a
legal obligation requires, Art. 17(3)(b)). `/forget-me` therefore deletes the member's jobs,
prompts, review items, quota records and personal settings everywhere, and keeps the audit
rows that involve them with the prompt text removed (the sha256 stays); those rows leave
with the server's retention period. Bans stay (an erasure must not lift a moderation
measure). The engine's provenance ledger keeps file hashes, job, model and time (no user id,
no prompt), because proving that a file is AI-generated must outlive the chat.
"""
from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.i18n import t
from bot.scoped_settings import SettingsContext

if TYPE_CHECKING:
    from bot.app import AigcBot

log = logging.getLogger("aigc.bot.moderation.privacy")
_ = app_commands.locale_str
FORGET_PATTERN = r"aigc-forget:(?P<user>[0-9]{1,20})"
RETENTION_INTERVAL_S = 6 * 3600.0
RETENTION_FIRST_AFTER_S = 120.0


class ForgetButton(discord.ui.DynamicItem[discord.ui.Button], template=FORGET_PATTERN):
    def __init__(self, user_id: int, locale: Any = "en-US"):
        super().__init__(discord.ui.Button(label=t(locale, "forget_confirm"), emoji="🧹",
                                           style=discord.ButtonStyle.danger, custom_id=f"aigc-forget:{user_id}"))
        self.user_id = user_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> "ForgetButton":
        return cls(int(match["user"]))

    async def callback(self, it: discord.Interaction) -> None:  # type: ignore[override]
        bot: AigcBot = it.client  # type: ignore[assignment]
        if it.user.id != self.user_id:
            await it.response.send_message(t(it.locale, "not_yours"), ephemeral=True)
            return
        await it.response.defer()
        report = await forget_user(bot, str(self.user_id))
        await it.edit_original_response(content=t(it.locale, "forgotten", jobs=report.deleted.get("jobs", 0),
                                                   messages=report.deleted.get("messages", 0)), view=None)


async def forget_user(bot: "AigcBot", user_id: str) -> Any:
    from bot.moderation.commands import _all_jobs, delete_messages

    records = await _all_jobs(bot, user_id, None)
    messages = await delete_messages(bot, records)
    report = await bot.store.forget_user(user_id, requested_by=user_id, keep_audit=True)
    report.deleted["messages"] = messages
    return report


async def privacy_text(bot: "AigcBot", it: discord.Interaction) -> discord.Embed:
    settings = await bot.scoped.resolve(SettingsContext(guild_id=str(it.guild_id) if it.guild_id else None))
    days = settings.retention_days
    embed = discord.Embed(title=t(it.locale, "privacy_title"), colour=0x5865F2)
    embed.description = t(it.locale, "privacy_stored")
    embed.add_field(name=t(it.locale, "privacy_retention_title"), inline=False, value=t(
        it.locale, "privacy_retention", days=days if days is not None else "∞",
        prompts=t(it.locale, "privacy_prompts_full" if settings.prompt_storage == "full" else "privacy_prompts_hash")))
    embed.add_field(name=t(it.locale, "privacy_erasure_title"), value=t(it.locale, "privacy_erasure"), inline=False)
    embed.add_field(name=t(it.locale, "privacy_tradeoff_title"), value=t(it.locale, "privacy_tradeoff"), inline=False)
    return embed


def register(bot: "AigcBot") -> None:
    tree = bot.tree
    bot.add_dynamic_items(ForgetButton)

    @tree.command(name="privacy", description=_("What this bot stores about you", zh="本机器人存储了你的哪些数据"))
    async def privacy(it: discord.Interaction) -> None:
        await it.response.defer(ephemeral=True, thinking=True)
        await it.followup.send(embed=await privacy_text(bot, it), ephemeral=True)

    @tree.command(name="forget-me", description=_("Erase your data (asks to confirm)", zh="删除你的数据（需确认）"))
    async def forget_me(it: discord.Interaction) -> None:
        view = discord.ui.View(timeout=None)
        view.add_item(ForgetButton(it.user.id, it.locale))
        await it.response.send_message(t(it.locale, "forget_ask"), view=view, ephemeral=True)

    async def on_guild_remove(guild: discord.Guild) -> None:
        report = await bot.store.purge_guild(str(guild.id))
        bot.moderation.policy.invalidate(guild.id)
        bot.community.forget_review_cache(guild.id)
        log.info("guild data purged", extra={"guild": guild.id, "deleted": report.deleted})

    bot.add_listener(on_guild_remove, "on_guild_remove")


async def apply_retention(bot: "AigcBot") -> dict[str | None, Any]:
    """One pass: each guild the store knows of (and direct messages) under its own settings."""
    guild_ids = {str(g.id) for g in bot.guilds}
    out: dict[str | None, Any] = {}
    for gid in sorted(guild_ids) + [None]:  # type: ignore[operator]
        settings = await bot.scoped.resolve(SettingsContext(guild_id=gid))
        out[gid] = await bot.store.apply_retention(gid, older_than_days=settings.retention_days,
                                                   prompt_storage=settings.prompt_storage)
        if gid is not None and out[gid].total:
            await bot.moderation.mirror.mirror_latest(gid, "retention.applied")  # type: ignore[attr-defined]
    return out


async def retention_loop(bot: "AigcBot", interval_s: float = RETENTION_INTERVAL_S,
                         first_after_s: float = RETENTION_FIRST_AFTER_S) -> None:
    """A pass shortly after start-up (not during it), then every ``interval_s``."""
    await bot.wait_until_ready()
    await asyncio.sleep(first_after_s)
    while True:
        try:
            await apply_retention(bot)  # each guild's pass is one transaction: a shutdown loses nothing
        except Exception:
            log.exception("retention pass failed")
        await asyncio.sleep(interval_s)

"""Privacy: what `/privacy` says is stored and for how long, what `/forget-me` erases (after a
confirmation button), and the periodic retention task. The commands, and the guild purge when
the bot leaves a guild, are in bot/member_commands.py.

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
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from bot.i18n import t
from bot.moderation.audit_mirror import AuditMirror
from bot.scoped_settings import CommunitySettings, ScopedSettings, SettingsContext
from bot.store import JobRecord, Store

log = logging.getLogger("aigc.bot.moderation.privacy")
FORGET_PATTERN = r"aigc-forget:(?P<user>[0-9]{1,20})"
_FORGET = re.compile(FORGET_PATTERN + r"\Z")
RETENTION_INTERVAL_S = 6 * 3600.0
RETENTION_FIRST_AFTER_S = 120.0


def forget_button(user_id: int, locale: Any = "en-US") -> discord.ui.Button[Any]:
    """The confirmation under `/forget-me`; the member commands' listener answers the click."""
    return discord.ui.Button(label=t(locale, "forget_confirm"), emoji="🧹", style=discord.ButtonStyle.danger,
                             custom_id=f"aigc-forget:{user_id}")


def forget_target(custom_id: str) -> int | None:
    """The user id a forget button is for, or None if the custom_id is not one."""
    m = _FORGET.match(custom_id)
    return int(m["user"]) if m else None


async def all_jobs(store: Store, user_id: str, guild_id: str | None) -> list[JobRecord]:
    out: list[JobRecord] = []
    before = None
    while True:
        page = await store.jobs.list_for_user(user_id, guild_id=guild_id, limit=200, before=before)
        out += page
        if len(page) < 200:
            return out
        before = page[-1].created_at


async def delete_messages(client: discord.Client, store: Store, records: list[JobRecord]) -> int:
    """Delete the posted results (and review posts) of these jobs; gone ones count as done."""
    deleted = 0
    targets = [(r.result_channel_id, r.result_message_id) for r in records if r.result_message_id]
    for r in records:
        item = await store.reviews.get_by_job(r.id)
        if item and item.review_message_id:
            targets.append((item.review_channel_id, item.review_message_id))
    for channel_id, message_id in targets:
        if not channel_id or not message_id:
            continue
        try:
            await client.get_partial_messageable(int(channel_id)).get_partial_message(int(message_id)).delete()
            deleted += 1
        except discord.NotFound:
            deleted += 1
        except discord.HTTPException as e:
            log.warning("could not delete a result message", extra={"message": message_id, "error": repr(e)})
    return deleted


async def forget_user(client: discord.Client, store: Store, user_id: str) -> Any:
    records = await all_jobs(store, user_id, None)
    messages = await delete_messages(client, store, records)
    report = await store.forget_user(user_id, requested_by=user_id, keep_audit=True)
    report.deleted["messages"] = messages
    return report


async def privacy_text(scoped: ScopedSettings[CommunitySettings], it: discord.Interaction) -> discord.Embed:
    settings = await scoped.resolve(SettingsContext(guild_id=str(it.guild_id) if it.guild_id else None))
    days = settings.retention_days
    embed = discord.Embed(title=t(it.locale, "privacy_title"), colour=0x5865F2)
    embed.description = t(it.locale, "privacy_stored")
    embed.add_field(name=t(it.locale, "privacy_retention_title"), inline=False, value=t(
        it.locale, "privacy_retention", days=days if days is not None else "∞",
        prompts=t(it.locale, "privacy_prompts_full" if settings.prompt_storage == "full" else "privacy_prompts_hash")))
    embed.add_field(name=t(it.locale, "privacy_erasure_title"), value=t(it.locale, "privacy_erasure"), inline=False)
    embed.add_field(name=t(it.locale, "privacy_tradeoff_title"), value=t(it.locale, "privacy_tradeoff"), inline=False)
    return embed


async def apply_retention(client: discord.Client, store: Store, scoped: ScopedSettings[CommunitySettings],
                          mirror: AuditMirror) -> dict[str | None, Any]:
    """One pass: each guild the bot is in (and direct messages) under its own settings."""
    guild_ids = {str(g.id) for g in client.guilds}
    out: dict[str | None, Any] = {}
    for gid in sorted(guild_ids) + [None]:  # type: ignore[operator]
        settings = await scoped.resolve(SettingsContext(guild_id=gid))
        out[gid] = await store.apply_retention(gid, older_than_days=settings.retention_days,
                                                   prompt_storage=settings.prompt_storage)
        if gid is not None and out[gid].total:
            await mirror.mirror_latest(gid, "retention.applied")
    return out


async def retention_loop(client: discord.Client, apply: Callable[[], Awaitable[Any]],
                         interval_s: float = RETENTION_INTERVAL_S,
                         first_after_s: float = RETENTION_FIRST_AFTER_S) -> None:
    """A pass (``apply``) shortly after start-up (not during it), then every ``interval_s``."""
    await client.wait_until_ready()
    await asyncio.sleep(first_after_s)
    while True:
        try:
            await apply()  # each guild's pass is one transaction: a shutdown loses nothing
        except Exception:
            log.exception("retention pass failed")
        await asyncio.sleep(interval_s)

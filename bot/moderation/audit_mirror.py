"""Optional mirror of a guild's audit log to its mod-log channel (the ``modlog_channel``
setting). The store stays the record; the mirror is best effort, in the background, and
never shows prompt text (the channel may be readable by more people than the log)."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord

from bot.scoped_settings import CommunitySettings, ScopedSettings, SettingsContext
from bot.store import AuditRecord, Store

log = logging.getLogger("aigc.bot.moderation.audit_mirror")
NOT_MIRRORED = frozenset({"policy.blocked",  # posted by the notifier itself, worded for people
                          "job.throttled"})  # cooldown and quota hits: in /mod audit, not the channel

ICONS = {"job.done": "🎨", "job.refused": "🚫", "job.failed": "⚠️", "job.deleted": "🗑️", "review.approved": "✅",
         "review.rejected": "⛔", "mod.ban": "🔨", "mod.unban": "🕊️", "mod.purge": "🧹"}


def describe(r: AuditRecord) -> str:
    """One line per audit row: action, who, about whom, what, verdict, hashes; no prompt."""
    parts = [f"{ICONS.get(r.action, '🧾')} `{r.action}`"]
    if r.actor_id:
        parts.append(f"by <@{r.actor_id}>")
    if r.subject_id:
        parts.append(f"about <@{r.subject_id}>")
    if r.command:
        parts.append(f"/{r.command}")
    if r.channel_id:
        parts.append(f"in <#{r.channel_id}>")
    if r.verdict:
        parts.append(f"verdict {r.verdict}")
    if r.job_id:
        parts.append(f"job `{r.job_id}`")
    if r.prompt_hash:
        parts.append(f"prompt sha256 `{r.prompt_hash[:12]}`")
    if r.model_hash:
        parts.append(f"model `{r.model_hash[:12]}`")
    if r.output_hash:
        parts.append(f"output `{r.output_hash[:12]}`")
    if r.detail.get("command"):
        parts.append(f"`{r.detail['command']}`")
    line = " · ".join(parts)
    if r.reason:
        line += f"\n> {r.reason[:300]}"
    return line[:1900]


class AuditMirror:
    def __init__(self, client: discord.Client, store: Store, scoped: ScopedSettings[CommunitySettings]):
        self.client, self.store, self.scoped = client, store, scoped
        self._tasks: set[asyncio.Task[Any]] = set()

    def install(self) -> None:
        """Every row appended through ``store.audit.append`` is mirrored (the bot's own flows
        append there); appends the store makes inside its own transactions (review decisions,
        bans, purges) are mirrored with ``mirror_latest``."""
        if self.schedule not in self.store.audit.listeners:
            self.store.audit.listeners.append(self.schedule)

    def schedule(self, record: AuditRecord) -> None:
        if record.guild_id is None or record.action in NOT_MIRRORED:
            return
        task = asyncio.get_running_loop().create_task(self._mirror(record))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def mirror_latest(self, guild_id: str, action: str) -> None:
        rows = await self.store.audit.query(guild_id=guild_id, action=action, limit=1)
        if rows:
            self.schedule(rows[0])

    async def _mirror(self, record: AuditRecord) -> None:
        try:
            channel = await self.scoped.get("modlog_channel", SettingsContext(guild_id=record.guild_id))
            if channel:
                await self.post(channel, describe(record))
        except Exception:
            log.exception("audit mirror failed", extra={"audit_id": record.id})

    async def post(self, channel_id: str | int, text: str) -> discord.Message | None:
        try:
            return await self.client.get_partial_messageable(int(channel_id)).send(
                text[:2000], allowed_mentions=discord.AllowedMentions.none())
        except discord.HTTPException as e:
            log.warning("cannot post to the mod-log channel", extra={"channel": channel_id, "error": repr(e)})
            return None

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

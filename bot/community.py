"""The community workflow around a generation: who may run what where (gate), and how a
finished result reaches the channel (deliver). Settings come from the scoped settings store."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord

from bot import engine_client as ec
from bot.generation import TOKEN_SAFE_S, Refused, audit_event, result_files
from bot.i18n import t
from bot.quota import QuotaExceeded
from bot.rendering import result_buttons, result_embed
from bot.scoped_settings import CommunitySettings, SettingsContext
from bot.store import AuditEvent, Reservation
from engine.protocol import CommandSpec, JobView

if TYPE_CHECKING:
    from bot.app import AigcBot

log = logging.getLogger("aigc.bot.community")
DEFAULT_ATTACHMENT_LIMIT = 10 * 2**20


@dataclass
class GateResult:
    reservation: Reservation | None
    visible_mark: bool
    settings: CommunitySettings


def settings_context(it: discord.Interaction) -> SettingsContext:
    roles: tuple[str, ...] = ()
    if isinstance(it.user, discord.Member):
        roles = tuple(str(r.id) for r in sorted(it.user.roles, key=lambda r: r.position, reverse=True))
    return SettingsContext(guild_id=str(it.guild_id) if it.guild_id else None,
                           channel_id=str(it.channel_id) if it.channel_id else None,
                           user_id=str(it.user.id), role_ids=roles)


def is_moderator(it: discord.Interaction) -> bool:
    perms = it.permissions
    return bool(perms.manage_guild or perms.manage_messages or perms.administrator)


class Community:
    def __init__(self, bot: "AigcBot"):
        self.bot = bot

    async def resolve(self, it: discord.Interaction) -> CommunitySettings:
        return await self.bot.scoped.resolve(settings_context(it))

    async def gate(self, it: discord.Interaction, spec: CommandSpec, *, cost: int) -> GateResult:
        """Checks before anything is submitted; raises Refused with a localized reason."""
        ctx = settings_context(it)
        settings = await self.bot.scoped.resolve(ctx)
        if it.guild_id is not None:
            ban = await self.bot.store.bans.active_ban(str(it.guild_id), str(it.user.id))
            if ban is not None:
                until = f" until <t:{int(ban.expires_at.timestamp())}:f>" if ban.expires_at else ""
                raise Refused(t(it.locale, "blocked", until=until))
        if not settings.command_enabled(spec.name):
            raise Refused(t(it.locale, "command_disabled", command=spec.name))
        if it.guild_id is not None and not settings.role_allowed(ctx.role_ids):
            raise Refused(t(it.locale, "role_not_allowed", command=spec.name))
        if spec.nsfw and not _is_nsfw(it.channel):
            raise Refused(t(it.locale, "nsfw_only", command=spec.name))
        reservation = None
        if cost > 0:
            try:
                reservation = await self.bot.quota.reserve(ctx, cost=cost)
            except QuotaExceeded as e:
                raise Refused(t(it.locale, "quota", message=str(e))) from None
        return GateResult(reservation, settings.ai_mark_visible, settings)

    async def deliver(self, it: discord.Interaction, spec: CommandSpec, view: JobView, *,
                      started: float) -> discord.Message | None:
        """Post the result where the interaction was (with the bot token past 14 minutes)."""
        limit = getattr(it, "filesize_limit", None) or DEFAULT_ATTACHMENT_LIMIT
        files, image_name = await result_files(self.bot, view, limit)
        embed = result_embed(view, it.locale, image_name=image_name, requester_mention=it.user.mention)
        buttons = self.bot.result_view(view, spec)
        if time.monotonic() - started < TOKEN_SAFE_S:
            msg = await it.edit_original_response(content=None, embed=embed, attachments=files, view=buttons)
        else:
            channel = it.channel if isinstance(it.channel, discord.abc.Messageable) else None
            if channel is None:
                channel = await self.bot.fetch_channel(it.channel_id)  # type: ignore[arg-type]
            msg = await channel.send(content=it.user.mention, embed=embed, files=files, view=buttons)  # type: ignore[union-attr]
        await self.bot.store.jobs.set_result_message(view.id, str(msg.channel.id), str(msg.id))
        settings = await self.resolve(it)
        await self.bot.store.audit.append(audit_event(it, spec, view, action="job.done",
                                                      prompt_storage=settings.prompt_storage))
        return msg

    async def on_refused(self, it: discord.Interaction, spec: CommandSpec, options: dict[str, Any],
                         error: Exception) -> None:
        """Audit refusals (the prompt policy's, the gate's) with the rule, never the hidden term."""
        if isinstance(error, ec.PromptRefused):
            verdict, reason = "refused", f"{error.category or '?'}:{error.rule or '?'}"
        elif isinstance(error, Refused):
            verdict, reason = "gated", error.message[:200]
        else:
            return
        prompt = next((v for v in options.values() if isinstance(v, str)), None)
        settings = await self.resolve(it)
        await self.bot.store.audit.append(AuditEvent(
            action="job.refused", actor_id=str(it.user.id),
            guild_id=str(it.guild_id) if it.guild_id else None,
            channel_id=str(it.channel_id) if it.channel_id else None, command=spec.name,
            prompt=prompt, prompt_storage=settings.prompt_storage, verdict=verdict, reason=reason))


def _is_nsfw(channel: Any) -> bool:
    try:
        return bool(channel.is_nsfw())
    except AttributeError:
        return False

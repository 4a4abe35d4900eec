"""What every `/mod` command group shares: the group class (the services, the run-time
permission check, the audit row), the ephemeral reply, and the option parsers (errors name the
option)."""
from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import discord
from discord import app_commands

from bot.i18n import t
from bot.services import Services
from bot.store import AuditEvent

log = logging.getLogger("aigc.bot.moderation.base")
_DURATION = re.compile(r"(\d+)\s*([smhdw])", re.I)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class InputError(ValueError):
    """A moderator's option value cannot be used; the message names the option."""


def parse_duration(value: str, field: str) -> timedelta:
    """`90m`, `2h`, `1d12h`, `1w` → timedelta; anything else names the option."""
    text = value.strip().lower().replace(" ", "")
    parts = _DURATION.findall(text)
    if not parts or "".join(f"{n}{u}" for n, u in parts) != text:
        raise InputError(f"{field}: use a number and a unit (s, m, h, d, w), e.g. 30m, 2h, 7d; got {value!r}")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if not 0 < seconds <= 366 * 86400:
        raise InputError(f"{field}: must be between 1 second and 366 days; got {value!r}")
    return timedelta(seconds=seconds)


def parse_since(value: str, now: datetime) -> datetime:
    """`24h`, `7d` (ago) or a date `2026-11-01` (UTC)."""
    try:
        return now - parse_duration(value, "since")
    except InputError:
        pass
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InputError(f"since: use a span such as 24h or 7d, or a date such as 2026-11-01; got {value!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def parse_limit(name: str, value: str) -> Any:
    text = value.strip().lower()
    if name == "daily_quota" and text in ("none", "unlimited", "off"):
        return None
    try:
        return float(text) if name == "cooldown_s" else int(text)
    except ValueError:
        raise InputError(f"{name}: expected a number{' or none' if name == 'daily_quota' else ''}; got {value!r}") from None


class ModGroup(app_commands.Group):
    """`/mod` and its subgroups, each a subclass naming itself in its class arguments
    (``class RuleCommands(ModGroup, name="rules", description=...)``) with
    ``@app_commands.command`` methods. discord.py asks a command's own group
    (``interaction_check``): the run-time check repeats the default permission, since server
    admins can widen who sees a command."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services

    async def audit(self, it: discord.Interaction, action: str, **kw: Any) -> None:
        """An audit row for a moderator's action here (actor, guild, channel from ``it``)."""
        await self.services.store.audit.append(AuditEvent(
            action=action, actor_id=str(it.user.id), guild_id=str(it.guild_id), channel_id=str(it.channel_id), **kw))

    async def interaction_check(self, it: discord.Interaction) -> bool:  # type: ignore[override]
        if it.guild_id is None or not (it.permissions.manage_guild or it.permissions.administrator):
            await it.response.send_message(t(it.locale, "admin_only"), ephemeral=True)
            return False
        return True

    async def on_error(self, it: discord.Interaction, error: app_commands.AppCommandError) -> None:  # type: ignore[override]
        if isinstance(error, app_commands.CheckFailure):
            return  # already answered by interaction_check
        if getattr(it.command, "parent", None) is not self:
            return  # discord.py calls every enclosing group's handler: the innermost one answers
        log.error("moderator command failed", exc_info=error)
        await reply(it, t(it.locale, "command_failed", message=type(getattr(error, "original", error)).__name__))


async def reply(it: discord.Interaction, content: str | None = None, **kw: Any) -> None:
    if it.response.is_done():
        await it.followup.send(content, ephemeral=True, **kw)  # type: ignore[arg-type]
    else:
        await it.response.send_message(content, ephemeral=True, **kw)  # type: ignore[arg-type]

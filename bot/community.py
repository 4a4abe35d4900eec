"""The community workflow around a generation: who may run what where (gate), whether a
channel holds outputs for review, and what a refusal costs (audit, warnings, automatic
blocks). Settings come from the scoped settings store."""
from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import discord

from bot import engine_client as ec
from bot.i18n import t
from bot.moderation.audit_mirror import AuditMirror
from bot.moderation.rules import GuildPolicy
from bot.quota import QuotaExceeded, QuotaService, limits_from, quota_message
from bot.results import Refused
from bot.scoped_settings import CommunitySettings, ScopedSettings, SettingsContext
from bot.store import AuditEvent, Reservation, Store
from engine.protocol import CommandSpec, JobView, PolicyContext

log = logging.getLogger("aigc.bot.community")
REVIEW_CACHE_S = 30.0  # how long "does this channel hold outputs for review" is remembered
REVIEW_LOOKUP_S = 0.5  # the defer waits at most this long for it (Discord allows 3 s in all)
# Repeated refused prompts: this many within the window block the member in this server
# (a ban row: /mod unban lifts it), with a warning on the refusal before. Members with
# Manage Server (or Administrator) are never blocked; their prompts are still refused.
BLOCK_AFTER = 3
BLOCK_WINDOW_S = 600.0
BLOCK_S = 900.0
AUTO_BLOCK_REASON = "automatic: repeated refused prompts"


@dataclass
class GateResult:
    reservation: Reservation | None
    visible_mark: bool
    settings: CommunitySettings
    policy: PolicyContext | None = None


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
    def __init__(self, store: Store, scoped: ScopedSettings[CommunitySettings], quota: QuotaService,
                 policy: GuildPolicy, mirror: AuditMirror):
        self.store, self.scoped, self.quota, self.policy, self.mirror = store, scoped, quota, policy, mirror
        self._review_cache: dict[tuple[int, int | None], tuple[float, asyncio.Future[bool]]] = {}
        self._blocked_notified: dict[str, float] = {}  # user id -> end of an engine block moderators know of

    async def resolve(self, it: discord.Interaction) -> CommunitySettings:
        return await self.scoped.resolve(settings_context(it))

    # ---- review queue ---------------------------------------------------------------

    async def holds_for_review(self, it: discord.Interaction) -> bool:
        """Whether outputs asked for here go to moderators first (then the deferral is
        ephemeral). Cached briefly, looked up once for a burst (every interaction arriving
        meanwhile awaits the same lookup) and bounded in time: the defer comes first."""
        if it.guild_id is None:
            return False
        key = (it.guild_id, it.channel_id)
        hit = self._review_cache.get(key)
        if hit is None or hit[0] <= time.monotonic():
            lookup = asyncio.ensure_future(self._review_lookup(it))
            hit = self._review_cache[key] = (time.monotonic() + REVIEW_CACHE_S, lookup)
        try:
            return await asyncio.wait_for(asyncio.shield(hit[1]), REVIEW_LOOKUP_S)
        except asyncio.TimeoutError:
            log.warning("review setting lookup was slow; deferring publicly", extra={"guild": it.guild_id})
            return False
        except Exception:
            self._review_cache.pop(key, None)  # look again next time
            raise

    async def _review_lookup(self, it: discord.Interaction) -> bool:
        ctx = SettingsContext(guild_id=str(it.guild_id), channel_id=str(it.channel_id) if it.channel_id else None)
        settings = await self.scoped.resolve(ctx)
        return bool(settings.review_enabled and settings.review_channel)

    async def may_republish(self, job_id: str) -> bool:
        """A job that went through review may be posted again only if it was approved."""
        item = await self.store.reviews.get_by_job(job_id)
        return item is None or item.status.value == "approved"

    def forget_review_cache(self, guild_id: int | None = None) -> None:
        for key in [k for k in self._review_cache if guild_id is None or k[0] == guild_id]:
            del self._review_cache[key]

    async def gate(self, it: discord.Interaction, spec: CommandSpec, *, cost: int,
                   cooldown: bool = True) -> GateResult:
        """Checks before anything is submitted; raises Refused with a localized reason.
        ``cooldown=False``: a follow-up on the member's own result (reroll, variations...),
        which the cooldown does not apply to; the daily quota and concurrency caps do."""
        ctx = settings_context(it)
        settings = await self.scoped.resolve(ctx)
        if it.guild_id is not None:
            ban = await self.store.bans.active_ban(str(it.guild_id), str(it.user.id))
            if ban is not None and ban.moderator_id is None and ban.reason == AUTO_BLOCK_REASON and ban.expires_at:
                left = (ban.expires_at - self.store.now()).total_seconds()
                raise Refused(t(it.locale, "requester_blocked", minutes=max(1, round(left / 60))),
                              verdict="blocked", reason=f"blocked after repeated refused prompts, {left:.0f}s left")
            if ban is not None:
                until = f" until <t:{int(ban.expires_at.timestamp())}:f>" if ban.expires_at else ""
                raise Refused(t(it.locale, "blocked", until=until))
        if not settings.command_enabled(spec.name):
            raise Refused(t(it.locale, "command_disabled", command=spec.name))
        if it.guild_id is not None:
            if not (settings.role_allowed(ctx.role_ids) and settings.command_role_allowed(spec.name, ctx.role_ids)):
                raise Refused(t(it.locale, "role_not_allowed", command=spec.name))
            if not settings.channel_allowed(spec.name, ctx.channel_id):
                raise Refused(t(it.locale, "channel_not_allowed", command=spec.name))
        if (spec.nsfw or settings.nsfw_only(spec.name)) and not _is_nsfw(it.channel):
            raise Refused(t(it.locale, "nsfw_only", command=spec.name))
        policy = await self.policy.context(it, settings)
        reservation = None
        if cost > 0:
            limits = limits_from(settings, in_guild=it.guild_id is not None)
            if not cooldown:
                limits = dataclasses.replace(limits, cooldown_s=0.0)
            try:
                reservation = await self.quota.reserve(ctx, cost=cost, limits=limits)
            except QuotaExceeded as e:
                raise Refused(quota_message(e, it.locale), verdict="throttled", reason=str(e)) from None
        return GateResult(reservation, settings.ai_mark_visible, settings, policy)

    async def on_refused(self, it: discord.Interaction, spec: CommandSpec, options: dict[str, Any],
                         error: Exception) -> str | None:
        """Audit every job that did not produce a result (refused by the prompt policy, blocked
        by the engine, gated here, failed) with the rule, never the hidden term. Returns the
        user's message where it knows better than the generic one (the rule's name)."""
        settings = await self.resolve(it)
        message = None
        blocked_for = None
        if isinstance(error, ec.PromptRefused):
            verdict, reason = "refused", f"{error.category or '?'}:{error.rule or '?'}"
            label = self.policy.rule_label(error.rule, it.guild_id, settings)
            message = t(it.locale, "prompt_refused", rule=label)
            blocked_for = error.blocked_for_s
        elif isinstance(error, ec.RequesterBlocked):
            verdict, reason = "blocked", f"engine block, {error.retry_after_s:.0f}s left"
            message = t(it.locale, "requester_blocked", minutes=max(1, round(error.retry_after_s / 60)))
            blocked_for = error.retry_after_s
        elif isinstance(error, Refused):
            verdict, reason = error.verdict, error.reason[:200]
        elif isinstance(error, ec.EngineClientError) and not isinstance(error, ec.InvalidOption):
            verdict, reason = "failed", str(error)[:200]
        else:
            verdict, reason = ("invalid", str(error)[:200]) if isinstance(error, ec.InvalidOption) else ("error", type(error).__name__)
        prompt = next((v for v in options.values() if isinstance(v, str)), None)
        # A quota limit (cooldown, daily quota, concurrency) is not a refusal: its own action.
        action = ("job.failed" if verdict in ("failed", "error")
                  else "job.throttled" if verdict == "throttled" else "job.refused")
        await self.store.audit.append(AuditEvent(
            action=action, actor_id=str(it.user.id),
            guild_id=str(it.guild_id) if it.guild_id else None,
            channel_id=str(it.channel_id) if it.channel_id else None, command=spec.name,
            job_id=error.job.id if isinstance(error, ec.JobFailed) else None,
            prompt=prompt, prompt_storage=settings.prompt_storage, verdict=verdict, reason=reason))
        if isinstance(error, ec.PromptRefused) and it.guild_id is not None and blocked_for is None:
            message, blocked_for = await self._escalate(it, message or "")
        if blocked_for is not None:
            await self._blocked(it, blocked_for, getattr(error, "rule", None), settings)
        return message

    async def _escalate(self, it: discord.Interaction, message: str) -> tuple[str, float | None]:
        """Count this member's refused prompts in this server (the audit log is the record:
        refusals since the window began and since their last ban or unban) and warn on the
        one before the block, block on the last. Returns the reply and the block's length."""
        if it.permissions.manage_guild or it.permissions.administrator:
            return message, None  # server managers are never blocked (the prompt is still refused)
        guild, user = str(it.guild_id), str(it.user.id)
        now = self.store.now()
        rows = await self.store.audit.query(guild_id=guild, user_id=user, limit=BLOCK_AFTER * 4,
                                                since=now - timedelta(seconds=BLOCK_WINDOW_S))
        count = 0
        for row in rows:  # newest first
            if row.action in ("mod.ban", "mod.unban") and row.subject_id == user:
                break
            if row.action == "job.refused" and row.verdict == "refused" and row.actor_id == user:
                count += 1
        minutes = max(1, round(BLOCK_S / 60))
        if count >= BLOCK_AFTER:
            await self.store.bans.ban(guild, user, moderator_id=None, reason=AUTO_BLOCK_REASON,
                                          expires_at=now + timedelta(seconds=BLOCK_S))
            return f"{message}\n{t(it.locale, 'refusal_blocked_now', minutes=minutes)}", BLOCK_S
        if count == BLOCK_AFTER - 1:
            return f"{message}\n{t(it.locale, 'refusal_warning', minutes=minutes)}", None
        return message, None

    async def _blocked(self, it: discord.Interaction, seconds: float, rule: str | None,
                       settings: CommunitySettings) -> None:
        """This member is now blocked after repeated refused prompts (by this bot's ban, or by
        the engine): tell moderators once per block (in the mod-log channel) and record it."""
        user = str(it.user.id)
        now = time.time()
        if self._blocked_notified.get(user, 0) > now:
            return  # an engine block (other fronts, or an engine run with escalation "engine")
        self._blocked_notified[user] = now + seconds
        minutes = max(1, round(seconds / 60))
        await self.store.audit.append(AuditEvent(
            action="policy.blocked", actor_id=None, subject_id=user,
            guild_id=str(it.guild_id) if it.guild_id else None,
            channel_id=str(it.channel_id) if it.channel_id else None, verdict="blocked",
            reason=f"repeated refused prompts; blocked {minutes} min", detail={"seconds": round(seconds),
                                                                                "last_rule": rule}))
        notify = settings.modlog_channel or settings.review_channel  # moderators read one of them
        if it.guild_id is not None and notify:
            label = self.policy.rule_label(rule, it.guild_id, settings) if rule else "—"
            await self.mirror.post(notify, t(
                it.guild_locale or "en-US", "modlog_blocked", user=it.user.mention, minutes=minutes,
                channel=f"<#{it.channel_id}>", rule=label))


def job_audit(it: discord.Interaction, spec: CommandSpec, view: JobView, *, action: str,
              verdict: str = "allowed", prompt_storage: str = "full") -> AuditEvent:
    """The audit row of a finished job: who, where, what (prompt or its hash), which model made
    which outputs. Several outputs: output_hash is the sha256 of their hashes, each listed in detail."""
    prompt = next((v for k, v in view.options.items() if isinstance(v, str)), None)
    hashes = [a.sha256 for a in view.artifacts]
    output = hashes[0] if len(hashes) == 1 else (hashlib.sha256(",".join(hashes).encode()).hexdigest()
                                                 if hashes else None)
    return AuditEvent(action=action, actor_id=str(it.user.id),
                      guild_id=str(it.guild_id) if it.guild_id else None,
                      channel_id=str(it.channel_id) if it.channel_id else None, command=spec.name,
                      job_id=view.id, prompt=prompt, prompt_storage=prompt_storage,  # type: ignore[arg-type]
                      verdict=verdict, model_hash=(view.model.get("sha256") or "")[:64] or None,
                      output_hash=output, detail={"outputs": hashes, "model": view.model.get("name")})


def _is_nsfw(channel: Any) -> bool:
    try:
        return bool(channel.is_nsfw())
    except AttributeError:
        return False

"""Moderator commands (`/mod ...`, Manage Server: set as the commands' default permissions
AND checked at run time, since server admins can widen who sees a command), and the members'
`/quota` and `/verify`."""
from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import app_commands

from bot import engine_client as ec
from bot.community import settings_context
from bot.i18n import t
from bot.moderation.rules import RuleDefinitionError, build_rule, engine_error_field
from bot.scoped_settings import SettingError, SettingsContext
from bot.store import AuditEvent, JobRecord, Scope

if TYPE_CHECKING:
    from bot.app import AigcBot

log = logging.getLogger("aigc.bot.moderation.commands")
_ = app_commands.locale_str
MANAGE_GUILD = discord.Permissions(manage_guild=True)
LIMIT_SETTINGS = ("cooldown_s", "daily_quota", "max_concurrent_per_user", "max_concurrent_per_guild")
VERIFY_MAX_BYTES = 32 * 2**20
AUDIT_PAGE = 15
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
    """`/mod` and its subgroups (discord.py asks only a command's direct parent): the run-time
    check repeats the default permission (server admins can widen who sees a command)."""

    async def interaction_check(self, it: discord.Interaction) -> bool:  # type: ignore[override]
        if it.guild_id is None or not (it.permissions.manage_guild or it.permissions.administrator):
            await it.response.send_message(t(it.locale, "admin_only"), ephemeral=True)
            return False
        return True

    async def on_error(self, it: discord.Interaction, error: app_commands.AppCommandError) -> None:  # type: ignore[override]
        if isinstance(error, app_commands.CheckFailure):
            return  # already answered by interaction_check
        log.error("moderator command failed", exc_info=error)
        await _reply(it, t(it.locale, "job_failed", message=type(getattr(error, "original", error)).__name__))


async def _reply(it: discord.Interaction, content: str | None = None, **kw: Any) -> None:
    if it.response.is_done():
        await it.followup.send(content, ephemeral=True, **kw)  # type: ignore[arg-type]
    else:
        await it.response.send_message(content, ephemeral=True, **kw)  # type: ignore[arg-type]


def register(bot: "AigcBot") -> None:
    tree = bot.tree
    mod = ModGroup(name="mod", description=_("Moderation", zh="审核管理"), default_permissions=MANAGE_GUILD,
                   guild_only=True)
    rules = ModGroup(name="rules", description=_("Prompt rules of this server", zh="本服务器的提示词规则"),
                               parent=mod)
    review = ModGroup(name="review", description=_("Hold outputs for review", zh="输出先审核后发布"),
                                parent=mod)

    async def audit(it: discord.Interaction, action: str, **kw: Any) -> None:
        await bot.store.audit.append(AuditEvent(action=action, actor_id=str(it.user.id), guild_id=str(it.guild_id),
                                                channel_id=str(it.channel_id), **kw))

    # ---- /mod rules ---------------------------------------------------------------

    @rules.command(name="add", description=_("Add a prompt rule", zh="添加提示词规则"))
    @app_commands.describe(
        id=_("Rule id (letters, digits, _ . : -)", zh="规则编号（字母、数字、_ . : -）"),
        keywords=_("Comma-separated keywords; * at the start or end is a wildcard", zh="逗号分隔的关键词；* 可作前后缀通配"),
        regex=_("A regular expression (RE2)", zh="正则表达式（RE2）"),
        allow=_("Comma-separated allowed phrases", zh="逗号分隔的允许短语"),
        name=_("A name shown when the rule refuses a prompt", zh="拒绝时显示的规则名称"),
        category=_("Category (e.g. spoilers)", zh="类别（如 剧透）"))
    async def rules_add(it: discord.Interaction, id: str, keywords: str | None = None, regex: str | None = None,
                        allow: str | None = None, name: str | None = None, category: str | None = None) -> None:
        await it.response.defer(ephemeral=True, thinking=True)
        ctx = SettingsContext(guild_id=str(it.guild_id))
        existing = list(await bot.scoped.get("prompt_rules", ctx))
        try:
            rule = build_rule(id, keywords=keywords, regex=regex, allow=allow, name=name, category=category,
                              existing=existing)
            await bot.engine.moderate("", guild=str(it.guild_id), rules={"rules": [rule]})
        except RuleDefinitionError as e:
            await it.followup.send(t(it.locale, "rule_invalid", error=str(e)), ephemeral=True)
            return
        except ec.InvalidOption as e:
            await it.followup.send(t(it.locale, "rule_invalid", error=engine_error_field(e.rule)), ephemeral=True)
            return
        await bot.scoped.set("prompt_rules", existing + [rule], guild_id=str(it.guild_id))
        await audit(it, "mod.rules.add", reason=rule.get("name"),
                    detail={"command": "/mod rules add", "rule": rule["id"], "keywords": len(rule["keywords"]),
                            "regex": len(rule["regex"]), "allow": len(rule["allow"])})
        await it.followup.send(t(it.locale, "rule_added", id=rule["id"]), ephemeral=True)

    @rules.command(name="remove", description=_("Remove a prompt rule", zh="删除提示词规则"))
    @app_commands.describe(id=_("Rule id", zh="规则编号"))
    async def rules_remove(it: discord.Interaction, id: str) -> None:
        await it.response.defer(ephemeral=True, thinking=True)  # first: acknowledge
        ctx = SettingsContext(guild_id=str(it.guild_id))
        existing = list(await bot.scoped.get("prompt_rules", ctx))
        kept = [r for r in existing if r.get("id") != id.strip()]
        if len(kept) == len(existing):
            await _reply(it, t(it.locale, "rule_unknown", id=id))
            return
        await bot.scoped.set("prompt_rules", kept, guild_id=str(it.guild_id))
        await audit(it, "mod.rules.remove", detail={"command": "/mod rules remove", "rule": id.strip()})
        await _reply(it, t(it.locale, "rule_removed", id=id.strip()))

    @rules.command(name="list", description=_("List the prompt rules in force here", zh="列出生效的提示词规则"))
    async def rules_list(it: discord.Interaction) -> None:
        await it.response.defer(ephemeral=True, thinking=True)
        own = await bot.scoped.get("prompt_rules", SettingsContext(guild_id=str(it.guild_id)))
        automod = await bot.moderation.policy.automod_rules(it.guild_id)  # type: ignore[arg-type]
        lines = [f"**{r['id']}**{' — ' + r['name'] if r.get('name') else ''} ({r.get('category', 'custom')}): "
                 + ", ".join(f"||{k}||" for k in r.get("keywords", []))
                 + (f" · regex ||{r['regex'][0]}||" if r.get("regex") else "") for r in own]
        embed = discord.Embed(title=t(it.locale, "rules_title"), colour=0xED4245)
        embed.description = ("\n".join(lines) or t(it.locale, "rules_none"))[:4000]
        am = "\n".join(f"AutoMod: {r.get('name') or r.get('id')} ({len((r.get('trigger_metadata') or {}).get('keyword_filter', []))} keywords)"
                       for r in automod.rules) or "—"
        embed.add_field(name=t(it.locale, "rules_automod"), value=(am + (f"\n*{automod.note}*" if automod.note else ""))[:1024],
                        inline=False)
        embed.set_footer(text=t(it.locale, "rules_global"))
        await it.followup.send(embed=embed, ephemeral=True)
        await audit(it, "mod.rules.list", detail={"command": "/mod rules list"})

    @rules.command(name="test", description=_("Check a text against the rules in force here", zh="用生效规则检查一段文字"))
    @app_commands.describe(text=_("The text to check", zh="要检查的文字"))
    async def rules_test(it: discord.Interaction, text: str) -> None:
        await it.response.defer(ephemeral=True, thinking=True)
        settings = await bot.scoped.resolve(settings_context(it))
        policy = await bot.moderation.policy.context(it, settings)
        verdict = await bot.engine.moderate(text, guild=str(it.guild_id), rules=policy.rules if policy else None,
                                            automod=policy.automod if policy else None)
        if verdict.allowed:
            msg = t(it.locale, "rule_test_allowed", normalized=verdict.normalized[:500])
        else:
            label = bot.moderation.policy.rule_label(verdict.rule, it.guild_id, settings)
            msg = t(it.locale, "rule_test_refused", rule=label, category=verdict.category or "?",
                    normalized=verdict.normalized[:500])
        await it.followup.send(msg, ephemeral=True)
        await audit(it, "mod.rules.test", prompt=text, prompt_storage=settings.prompt_storage,
                    verdict="allowed" if verdict.allowed else "refused", reason=verdict.rule,
                    detail={"command": "/mod rules test"})

    # ---- /mod review ----------------------------------------------------------------

    @review.command(name="on", description=_("Hold outputs for moderator review", zh="开启输出审核"))
    @app_commands.describe(channel=_("Where moderators review (kept if not given)", zh="审核频道（不填则沿用）"))
    async def review_on(it: discord.Interaction, channel: discord.TextChannel | None = None) -> None:
        await it.response.defer(ephemeral=True, thinking=True)  # first: acknowledge
        g = str(it.guild_id)
        current = await bot.scoped.get("review_channel", SettingsContext(guild_id=g))
        target = str(channel.id) if channel else current
        if target is None:
            await _reply(it, t(it.locale, "review_needs_channel"))
            return
        try:  # the queue is useless if the bot cannot post there: find out now, not with a job
            await bot.get_partial_messageable(int(target), guild_id=it.guild_id).send(
                t(it.guild_locale or "en-US", "review_hello", moderator=it.user.mention),
                allowed_mentions=discord.AllowedMentions.none())
        except discord.HTTPException as e:
            await _reply(it, t(it.locale, "review_channel_closed", channel=f"<#{target}>", error=e.text or e.status))
            return
        await bot.scoped.set("review_channel", target, guild_id=g)
        await bot.scoped.set("review_enabled", True, guild_id=g)
        bot.community.forget_review_cache(it.guild_id)
        await audit(it, "mod.review.on", detail={"command": "/mod review on", "review_channel": target})
        await _reply(it, t(it.locale, "review_on", channel=f"<#{target}>"))

    @review.command(name="off", description=_("Publish outputs directly", zh="关闭输出审核"))
    async def review_off(it: discord.Interaction) -> None:
        await it.response.defer(ephemeral=True, thinking=True)  # first: acknowledge
        await bot.scoped.set("review_enabled", False, guild_id=str(it.guild_id))
        bot.community.forget_review_cache(it.guild_id)
        await audit(it, "mod.review.off", detail={"command": "/mod review off"})
        pending = await bot.store.reviews.list_pending(str(it.guild_id))
        await _reply(it, t(it.locale, "review_off", pending=len(pending)))

    @mod.command(name="modlog", description=_("Mirror the audit log to a channel", zh="把审计日志同步到频道"))
    @app_commands.describe(channel=_("The mod-log channel (empty: stop mirroring)", zh="日志频道（留空：停止同步）"))
    async def modlog(it: discord.Interaction, channel: discord.TextChannel | None = None) -> None:
        await it.response.defer(ephemeral=True, thinking=True)  # first: acknowledge
        g = str(it.guild_id)
        if channel is None:
            await bot.scoped.clear("modlog_channel", guild_id=g)
        else:
            await bot.scoped.set("modlog_channel", str(channel.id), guild_id=g)
        await audit(it, "mod.modlog", detail={"command": "/mod modlog",
                                              "modlog_channel": str(channel.id) if channel else None})
        await _reply(it, t(it.locale, "modlog_on", channel=channel.mention) if channel else t(it.locale, "modlog_off"))

    # ---- /mod limits ----------------------------------------------------------------

    @mod.command(name="limits", description=_("View or set cooldown, daily quota and concurrency caps",
                                              zh="查看或设置冷却、每日额度和并发上限"))
    @app_commands.describe(
        setting=_("The limit to change (leave empty to view)", zh="要修改的限制（留空则查看）"),
        value=_("A number; 'none' for an unlimited daily quota; 'reset' to remove the override",
                zh="数字；每日额度可填 none 表示不限；reset 表示移除覆盖"),
        role=_("Set it for this role only", zh="仅对该身份组设置"),
        member=_("Set it for this member only", zh="仅对该成员设置"),
        channel=_("Set it for this channel only", zh="仅对该频道设置"))
    async def limits(it: discord.Interaction,
                     setting: Literal["cooldown_s", "daily_quota", "max_concurrent_per_user",
                                      "max_concurrent_per_guild"] | None = None,
                     value: str | None = None, role: discord.Role | None = None,
                     member: discord.User | None = None, channel: discord.TextChannel | None = None) -> None:
        await it.response.defer(ephemeral=True, thinking=True)  # first: acknowledge
        g = str(it.guild_id)
        if setting is None:
            await _reply(it, embed=await _limits_embed(bot, it))
            await audit(it, "mod.limits.view", detail={"command": "/mod limits"})
            return
        targets = [(Scope.role, role), (Scope.user, member), (Scope.channel, channel)]
        chosen = [(s, x) for s, x in targets if x is not None]
        if len(chosen) > 1:
            await _reply(it, t(it.locale, "setting_invalid", error="role/member/channel: give at most one"))
            return
        scope, target = chosen[0] if chosen else (Scope.guild, None)
        scope_id = str(target.id) if target is not None else None
        if value is None:
            await _reply(it, t(it.locale, "setting_invalid", error="value: give a value (or 'reset')"))
            return
        try:
            if value.strip().lower() == "reset":
                await bot.scoped.clear(setting, guild_id=g, scope=scope, scope_id=scope_id)
                shown = "reset"
            else:
                shown = await bot.scoped.set(setting, parse_limit(setting, value), guild_id=g, scope=scope,
                                             scope_id=scope_id)
        except (InputError, SettingError) as e:
            await _reply(it, t(it.locale, "setting_invalid", error=str(e)))
            return
        where = target.mention if target is not None else t(it.locale, "the_server")
        await audit(it, "mod.limits", subject_id=str(member.id) if member else None,
                    detail={"command": "/mod limits", "setting": setting, "value": shown, "scope": scope.value,
                            "scope_id": scope_id})
        await _reply(it, t(it.locale, "limit_set", setting=setting, value=shown, where=where))

    # ---- /mod ban, unban, audit, purge ------------------------------------------------

    @mod.command(name="ban", description=_("Block a member from generating", zh="禁止成员生成"))
    @app_commands.describe(user=_("The member", zh="成员"), duration=_("e.g. 30m, 2h, 7d (empty: until unbanned)",
                                                                      zh="如 30m、2h、7d（留空：直到解除）"),
                           reason=_("Why", zh="原因"))
    async def ban(it: discord.Interaction, user: discord.User, duration: str | None = None,
                  reason: str | None = None) -> None:
        await it.response.defer(ephemeral=True, thinking=True)  # first: acknowledge
        try:
            expires = bot.store.now() + parse_duration(duration, "duration") if duration else None
        except InputError as e:
            await _reply(it, t(it.locale, "setting_invalid", error=str(e)))
            return
        await bot.store.bans.ban(str(it.guild_id), str(user.id), moderator_id=str(it.user.id), reason=reason,
                                 expires_at=expires)
        await bot.moderation.mirror.mirror_latest(str(it.guild_id), "mod.ban")
        until = f" until <t:{int(expires.timestamp())}:f>" if expires else ""
        await _reply(it, t(it.locale, "banned", user=user.mention, until=until))

    @mod.command(name="unban", description=_("Let a member generate again", zh="解除生成禁令"))
    @app_commands.describe(user=_("The member", zh="成员"))
    async def unban(it: discord.Interaction, user: discord.User) -> None:
        await it.response.defer(ephemeral=True, thinking=True)  # first: acknowledge
        lifted = await bot.store.bans.unban(str(it.guild_id), str(user.id), moderator_id=str(it.user.id))
        if lifted:
            await bot.moderation.mirror.mirror_latest(str(it.guild_id), "mod.unban")
        await _reply(it, t(it.locale, "unbanned" if lifted else "not_banned", user=user.mention))

    @mod.command(name="audit", description=_("Read this server's audit log", zh="查看本服务器的审计日志"))
    @app_commands.describe(user=_("Only rows by or about this member", zh="仅该成员相关的记录"),
                           since=_("e.g. 24h, 7d or 2026-11-01", zh="如 24h、7d 或 2026-11-01"))
    async def audit_cmd(it: discord.Interaction, user: discord.User | None = None, since: str | None = None) -> None:
        await it.response.defer(ephemeral=True, thinking=True)
        try:
            start = parse_since(since, bot.store.now()) if since else None
        except InputError as e:
            await it.followup.send(t(it.locale, "setting_invalid", error=str(e)), ephemeral=True)
            return
        rows = await bot.store.audit.query(guild_id=str(it.guild_id), user_id=str(user.id) if user else None,
                                           since=start, limit=AUDIT_PAGE + 1)
        more = len(rows) > AUDIT_PAGE
        from bot.moderation.audit_mirror import describe

        lines = [f"<t:{int(r.at.timestamp())}:f> {describe(r).splitlines()[0]}" for r in rows[:AUDIT_PAGE]]
        body, shown = "", 0
        for line in lines:
            if len(body) + len(line) + 1 > 3800:
                more = True
                break
            body += line + "\n"
            shown += 1
        embed = discord.Embed(title=t(it.locale, "audit_title"), description=body or t(it.locale, "audit_none"))
        if more:
            embed.set_footer(text=t(it.locale, "audit_more", shown=shown))
        await it.followup.send(embed=embed, ephemeral=True)
        await audit(it, "mod.audit.read", subject_id=str(user.id) if user else None,
                    detail={"command": "/mod audit", "since": since})

    @mod.command(name="purge", description=_("Delete a member's generated messages and records",
                                             zh="删除成员生成的消息和记录"))
    @app_commands.describe(user=_("The member", zh="成员"), reason=_("Why", zh="原因"))
    async def purge(it: discord.Interaction, user: discord.User, reason: str | None = None) -> None:
        await it.response.defer(ephemeral=True, thinking=True)
        g, u = str(it.guild_id), str(user.id)
        records = await _all_jobs(bot, u, g)
        messages = await delete_messages(bot, records)
        report = await bot.store.purge_member(g, u, actor_id=str(it.user.id), reason=reason)
        await bot.moderation.mirror.mirror_latest(g, "mod.purge")
        await it.followup.send(t(it.locale, "purged", user=user.mention, messages=messages,
                                 jobs=report.deleted.get("jobs", 0)), ephemeral=True)

    from bot.moderation import settings_commands

    settings_commands.register(bot, mod)
    tree.add_command(mod)

    # ---- members: /quota, /verify -----------------------------------------------------------

    @tree.command(name="quota", description=_("Your remaining generation budget", zh="你剩余的生成额度"))
    async def quota(it: discord.Interaction) -> None:
        await it.response.defer(ephemeral=True, thinking=True)
        status = await bot.quota.remaining(settings_context(it))
        lim = status.limits
        lines = [t(it.locale, "quota_daily", remaining="∞" if status.daily_remaining is None else status.daily_remaining,
                   limit="∞" if lim.daily is None else lim.daily, used=status.daily_used,
                   reset=int(status.day_resets_at.timestamp())),
                 t(it.locale, "quota_running", running=status.running, limit=lim.user_concurrent or "∞"),
                 t(it.locale, "quota_cooldown", seconds=f"{lim.cooldown_s:g}")
                 + (t(it.locale, "quota_ready_at", at=int(status.cooldown_ready_at.timestamp()))
                    if status.cooldown_ready_at else "")]
        if it.guild_id is not None:
            lines.append(t(it.locale, "quota_guild", running=status.guild_running, limit=lim.guild_concurrent or "∞"))
        await it.followup.send(embed=discord.Embed(title=t(it.locale, "quota_title"), description="\n".join(lines)),
                               ephemeral=True)

    @tree.command(name="verify", description=_("Check whether a file was made here", zh="检查文件是否由本服务生成"))
    @app_commands.describe(file=_("The file to check", zh="要检查的文件"))
    async def verify(it: discord.Interaction, file: discord.Attachment) -> None:
        await it.response.defer(ephemeral=True, thinking=True)
        if file.size > VERIFY_MAX_BYTES:
            await it.followup.send(t(it.locale, "verify_too_large", size=file.size, limit=VERIFY_MAX_BYTES),
                                   ephemeral=True)
            return
        try:
            data = await file.read()
            report = await bot.engine.verify(data)
        except discord.HTTPException as e:
            await it.followup.send(t(it.locale, "verify_failed", error=f"download: HTTP {e.status}"), ephemeral=True)
            return
        except ec.EngineClientError as e:
            await it.followup.send(t(it.locale, "verify_failed", error=e.message[:300]), ephemeral=True)
            return
        embed = discord.Embed(title=t(it.locale, "verify_title", name=file.filename[:200]),
                              description=report.summary[:4000],
                              colour=0x57F287 if report.made_here else (0xFEE75C if report.ai_generated else 0x99AAB5))
        embed.add_field(name=t(it.locale, "verify_made_here"), value="✅" if report.made_here else "—")
        embed.add_field(name=t(it.locale, "verify_labels"), value="✅" if report.labels.get("ai_generated") else "—")
        embed.add_field(name="sha256", value=f"`{report.sha256[:16]}…`")
        if report.ledger:
            first = report.ledger[0]
            embed.add_field(name=t(it.locale, "verify_record"), inline=False,
                            value=f"job `{first.get('job')}` · {first.get('command')} · {first.get('model')} · "
                                  f"<t:{int(first.get('created') or 0)}:f>")
        await it.followup.send(embed=embed, ephemeral=True)


async def _limits_embed(bot: "AigcBot", it: discord.Interaction) -> discord.Embed:
    g = str(it.guild_id)
    resolved = await bot.scoped.resolve(SettingsContext(guild_id=g))
    lines = [f"**{name}**: {getattr(resolved, name) if getattr(resolved, name) is not None else 'none'}"
             for name in LIMIT_SETTINGS]
    mention = {Scope.role: "<@&{}>", Scope.user: "<@{}>", Scope.channel: "<#{}>"}
    overrides = [f"{mention[v.scope].format(v.scope_id)} {v.key} = {v.value}"
                 for v in await bot.store.settings.list_guild(g) if v.key in LIMIT_SETTINGS and v.scope is not Scope.guild]
    embed = discord.Embed(title=t(it.locale, "limits_title"), description="\n".join(lines))
    embed.add_field(name=t(it.locale, "limits_overrides"), value="\n".join(overrides)[:1024] or "—", inline=False)
    return embed


async def _all_jobs(bot: "AigcBot", user_id: str, guild_id: str | None) -> list[JobRecord]:
    out: list[JobRecord] = []
    before = None
    while True:
        page = await bot.store.jobs.list_for_user(user_id, guild_id=guild_id, limit=200, before=before)
        out += page
        if len(page) < 200:
            return out
        before = page[-1].created_at


async def delete_messages(bot: "AigcBot", records: list[JobRecord]) -> int:
    """Delete the posted results (and review posts) of these jobs; gone ones count as done."""
    deleted = 0
    targets = [(r.result_channel_id, r.result_message_id) for r in records if r.result_message_id]
    for r in records:
        item = await bot.store.reviews.get_by_job(r.id)
        if item and item.review_message_id:
            targets.append((item.review_channel_id, item.review_message_id))
    for channel_id, message_id in targets:
        if not channel_id or not message_id:
            continue
        try:
            await bot.get_partial_messageable(int(channel_id)).get_partial_message(int(message_id)).delete()
            deleted += 1
        except discord.NotFound:
            deleted += 1
        except discord.HTTPException as e:
            log.warning("could not delete a result message", extra={"message": message_id, "error": repr(e)})
    return deleted

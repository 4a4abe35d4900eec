"""Moderator commands (`/mod ...`, Manage Server: set as the commands' default permissions
AND checked at run time, since server admins can widen who sees a command), and the listeners
of moderation (review buttons and reason form, AutoMod rule changes). The members' commands
are in bot/member_commands.py."""
from __future__ import annotations

import logging
from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands as ext_commands

from bot import engine_client as ec
from bot.community import settings_context
from bot.i18n import t
from bot.moderation import settings_commands
from bot.moderation.audit_mirror import describe
from bot.moderation.base import InputError, ModGroup, parse_duration, parse_limit, parse_since, reply
from bot.moderation.privacy import all_jobs, delete_messages
from bot.moderation.rules import RuleDefinitionError, build_rule, engine_error_field
from bot.scoped_settings import SettingError, SettingsContext
from bot.services import Services
from bot.store import AuditEvent, Scope

log = logging.getLogger("aigc.bot.moderation.commands")
_ = app_commands.locale_str
MANAGE_GUILD = discord.Permissions(manage_guild=True)
LIMIT_SETTINGS = ("cooldown_s", "daily_quota", "max_concurrent_per_user", "max_concurrent_per_guild")
AUDIT_PAGE = 15
__all__ = ["InputError", "parse_duration", "parse_limit", "parse_since", "register"]


def register(services: Services, bot: ext_commands.Bot) -> None:
    """`/mod` and its groups, and the listeners of moderation: review buttons and the reject
    reason's modal (by custom_id, so they work after a restart), AutoMod rule changes."""
    s = services
    tree = bot.tree

    async def on_interaction(it: discord.Interaction) -> None:
        if it.type is discord.InteractionType.modal_submit:
            await s.moderation.review.on_modal(it)
        elif it.type is discord.InteractionType.component:
            await s.moderation.review.on_component(it)

    async def on_automod_rule_change(rule: Any) -> None:
        guild_id = getattr(rule, "guild_id", None) or getattr(getattr(rule, "guild", None), "id", None)
        if guild_id is not None:
            s.moderation.policy.invalidate(int(guild_id))

    bot.add_listener(on_interaction, "on_interaction")
    for event in ("on_automod_rule_create", "on_automod_rule_update", "on_automod_rule_delete"):
        bot.add_listener(on_automod_rule_change, event)
    mod = ModGroup(name="mod", description=_("Moderation", zh="审核管理"), default_permissions=MANAGE_GUILD,
                   guild_only=True)
    rules = ModGroup(name="rules", description=_("Prompt rules of this server", zh="本服务器的提示词规则"),
                               parent=mod)
    review = ModGroup(name="review", description=_("Hold outputs for review", zh="输出先审核后发布"),
                                parent=mod)

    async def audit(it: discord.Interaction, action: str, **kw: Any) -> None:
        await s.store.audit.append(AuditEvent(action=action, actor_id=str(it.user.id), guild_id=str(it.guild_id),
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
        existing = list(await s.scoped.get("prompt_rules", ctx))
        try:
            rule = build_rule(id, keywords=keywords, regex=regex, allow=allow, name=name, category=category,
                              existing=existing)
            await s.engine.moderate("", guild=str(it.guild_id), rules={"rules": [rule]})
        except RuleDefinitionError as e:
            await it.followup.send(t(it.locale, "rule_invalid", error=str(e)), ephemeral=True)
            return
        except ec.InvalidOption as e:
            await it.followup.send(t(it.locale, "rule_invalid", error=engine_error_field(e.rule)), ephemeral=True)
            return
        await s.scoped.set("prompt_rules", existing + [rule], guild_id=str(it.guild_id))
        await audit(it, "mod.rules.add", reason=rule.get("name"),
                    detail={"command": "/mod rules add", "rule": rule["id"], "keywords": len(rule["keywords"]),
                            "regex": len(rule["regex"]), "allow": len(rule["allow"])})
        await it.followup.send(t(it.locale, "rule_added", id=rule["id"]), ephemeral=True)

    @rules.command(name="remove", description=_("Remove a prompt rule", zh="删除提示词规则"))
    @app_commands.describe(id=_("Rule id", zh="规则编号"))
    async def rules_remove(it: discord.Interaction, id: str) -> None:
        await it.response.defer(ephemeral=True, thinking=True)  # first: acknowledge
        ctx = SettingsContext(guild_id=str(it.guild_id))
        existing = list(await s.scoped.get("prompt_rules", ctx))
        kept = [r for r in existing if r.get("id") != id.strip()]
        if len(kept) == len(existing):
            await reply(it, t(it.locale, "rule_unknown", id=id))
            return
        await s.scoped.set("prompt_rules", kept, guild_id=str(it.guild_id))
        await audit(it, "mod.rules.remove", detail={"command": "/mod rules remove", "rule": id.strip()})
        await reply(it, t(it.locale, "rule_removed", id=id.strip()))

    @rules.command(name="list", description=_("List the prompt rules in force here", zh="列出生效的提示词规则"))
    async def rules_list(it: discord.Interaction) -> None:
        await it.response.defer(ephemeral=True, thinking=True)
        own = await s.scoped.get("prompt_rules", SettingsContext(guild_id=str(it.guild_id)))
        automod = await s.moderation.policy.automod_rules(it.guild_id or 0)
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
        settings = await s.scoped.resolve(settings_context(it))
        policy = await s.moderation.policy.context(it, settings)
        verdict = await s.engine.moderate(text, guild=str(it.guild_id), rules=policy.rules if policy else None,
                                            automod=policy.automod if policy else None)
        if verdict.allowed:
            msg = t(it.locale, "rule_test_allowed", normalized=verdict.normalized[:500])
        else:
            label = s.moderation.policy.rule_label(verdict.rule, it.guild_id, settings)
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
        await audit(it, "mod.review.on", detail={"command": "/mod review on", "review_channel": target})
        await reply(it, t(it.locale, "review_on", channel=f"<#{target}>"))

    @review.command(name="off", description=_("Publish outputs directly", zh="关闭输出审核"))
    async def review_off(it: discord.Interaction) -> None:
        await it.response.defer(ephemeral=True, thinking=True)  # first: acknowledge
        await s.scoped.set("review_enabled", False, guild_id=str(it.guild_id))
        s.community.forget_review_cache(it.guild_id)
        await audit(it, "mod.review.off", detail={"command": "/mod review off"})
        pending = await s.store.reviews.list_pending(str(it.guild_id))
        await reply(it, t(it.locale, "review_off", pending=len(pending)))

    @mod.command(name="modlog", description=_("Mirror the audit log to a channel", zh="把审计日志同步到频道"))
    @app_commands.describe(channel=_("The mod-log channel (empty: stop mirroring)", zh="日志频道（留空：停止同步）"))
    async def modlog(it: discord.Interaction, channel: discord.TextChannel | None = None) -> None:
        await it.response.defer(ephemeral=True, thinking=True)  # first: acknowledge
        g = str(it.guild_id)
        if channel is None:
            await s.scoped.clear("modlog_channel", guild_id=g)
        else:
            await s.scoped.set("modlog_channel", str(channel.id), guild_id=g)
        await audit(it, "mod.modlog", detail={"command": "/mod modlog",
                                              "modlog_channel": str(channel.id) if channel else None})
        await reply(it, t(it.locale, "modlog_on", channel=channel.mention) if channel else t(it.locale, "modlog_off"))

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
            await reply(it, embed=await _limits_embed(s, it))
            await audit(it, "mod.limits.view", detail={"command": "/mod limits"})
            return
        targets = [(Scope.role, role), (Scope.user, member), (Scope.channel, channel)]
        chosen = [(scope_, x) for scope_, x in targets if x is not None]
        if len(chosen) > 1:
            await reply(it, t(it.locale, "setting_invalid", error="role/member/channel: give at most one"))
            return
        scope, target = chosen[0] if chosen else (Scope.guild, None)
        scope_id = str(target.id) if target is not None else None
        if value is None:
            await reply(it, t(it.locale, "setting_invalid", error="value: give a value (or 'reset')"))
            return
        try:
            if value.strip().lower() == "reset":
                await s.scoped.clear(setting, guild_id=g, scope=scope, scope_id=scope_id)
                shown = "reset"
            else:
                shown = await s.scoped.set(setting, parse_limit(setting, value), guild_id=g, scope=scope,
                                             scope_id=scope_id)
        except (InputError, SettingError) as e:
            await reply(it, t(it.locale, "setting_invalid", error=str(e)))
            return
        where = target.mention if target is not None else t(it.locale, "the_server")
        await audit(it, "mod.limits", subject_id=str(member.id) if member else None,
                    detail={"command": "/mod limits", "setting": setting, "value": shown, "scope": scope.value,
                            "scope_id": scope_id})
        await reply(it, t(it.locale, "limit_set", setting=setting, value=shown, where=where))

    # ---- /mod ban, unban, audit, purge ------------------------------------------------

    @mod.command(name="ban", description=_("Block a member from generating", zh="禁止成员生成"))
    @app_commands.describe(user=_("The member", zh="成员"), duration=_("e.g. 30m, 2h, 7d (empty: until unbanned)",
                                                                      zh="如 30m、2h、7d（留空：直到解除）"),
                           reason=_("Why", zh="原因"))
    async def ban(it: discord.Interaction, user: discord.User, duration: str | None = None,
                  reason: str | None = None) -> None:
        await it.response.defer(ephemeral=True, thinking=True)  # first: acknowledge
        try:
            expires = s.store.now() + parse_duration(duration, "duration") if duration else None
        except InputError as e:
            await reply(it, t(it.locale, "setting_invalid", error=str(e)))
            return
        await s.store.bans.ban(str(it.guild_id), str(user.id), moderator_id=str(it.user.id), reason=reason,
                                 expires_at=expires)
        await s.moderation.mirror.mirror_latest(str(it.guild_id), "mod.ban")
        until = f" until <t:{int(expires.timestamp())}:f>" if expires else ""
        await reply(it, t(it.locale, "banned", user=user.mention, until=until))

    @mod.command(name="unban", description=_("Let a member generate again", zh="解除生成禁令"))
    @app_commands.describe(user=_("The member", zh="成员"))
    async def unban(it: discord.Interaction, user: discord.User) -> None:
        await it.response.defer(ephemeral=True, thinking=True)  # first: acknowledge
        lifted = await s.store.bans.unban(str(it.guild_id), str(user.id), moderator_id=str(it.user.id))
        if lifted:
            await s.moderation.mirror.mirror_latest(str(it.guild_id), "mod.unban")
        await reply(it, t(it.locale, "unbanned" if lifted else "not_banned", user=user.mention))

    @mod.command(name="audit", description=_("Read this server's audit log", zh="查看本服务器的审计日志"))
    @app_commands.describe(user=_("Only rows by or about this member", zh="仅该成员相关的记录"),
                           since=_("e.g. 24h, 7d or 2026-11-01", zh="如 24h、7d 或 2026-11-01"))
    async def audit_cmd(it: discord.Interaction, user: discord.User | None = None, since: str | None = None) -> None:
        await it.response.defer(ephemeral=True, thinking=True)
        try:
            start = parse_since(since, s.store.now()) if since else None
        except InputError as e:
            await it.followup.send(t(it.locale, "setting_invalid", error=str(e)), ephemeral=True)
            return
        rows = await s.store.audit.query(guild_id=str(it.guild_id), user_id=str(user.id) if user else None,
                                           since=start, limit=AUDIT_PAGE + 1)
        more = len(rows) > AUDIT_PAGE
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
        records = await all_jobs(s.store, u, g)
        messages = await delete_messages(s.client, s.store, records)
        report = await s.store.purge_member(g, u, actor_id=str(it.user.id), reason=reason)
        await s.moderation.mirror.mirror_latest(g, "mod.purge")
        await it.followup.send(t(it.locale, "purged", user=user.mention, messages=messages,
                                 jobs=report.deleted.get("jobs", 0)), ephemeral=True)

    settings_commands.register(services, mod)
    tree.add_command(mod)


async def _limits_embed(s: Services, it: discord.Interaction) -> discord.Embed:
    g = str(it.guild_id)
    resolved = await s.scoped.resolve(SettingsContext(guild_id=g))
    lines = [f"**{name}**: {getattr(resolved, name) if getattr(resolved, name) is not None else 'none'}"
             for name in LIMIT_SETTINGS]
    mention = {Scope.role: "<@&{}>", Scope.user: "<@{}>", Scope.channel: "<#{}>"}
    overrides = [f"{mention[v.scope].format(v.scope_id)} {v.key} = {v.value}"
                 for v in await s.store.settings.list_guild(g) if v.key in LIMIT_SETTINGS and v.scope is not Scope.guild]
    embed = discord.Embed(title=t(it.locale, "limits_title"), description="\n".join(lines))
    embed.add_field(name=t(it.locale, "limits_overrides"), value="\n".join(overrides)[:1024] or "—", inline=False)
    return embed

"""`/mod`: moderator commands (Manage Server: set as the commands' default permissions AND
checked at run time, since server admins can widen who sees a command), one group class per area:
``ModCommands`` here holds `/mod`'s own commands (modlog, limits, ban, unban, audit, purge) and
nests `/mod rules` (rule_commands.py), `/mod review` (review_commands.py) and `/mod settings`
(settings_commands.py). ``ModerationListeners`` answers the review buttons and the reject
reason's modal (by custom_id, so they work after a restart) and AutoMod rule changes.
``install`` adds both. The members' commands are in bot/member_commands.py."""
from __future__ import annotations

import logging
from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands as ext_commands

from bot.i18n import t
from bot.moderation.audit_mirror import describe
from bot.moderation.base import InputError, ModGroup, parse_duration, parse_limit, parse_since, reply
from bot.moderation.privacy import all_jobs, delete_messages
from bot.moderation.review_commands import ReviewCommands
from bot.moderation.rule_commands import RuleCommands
from bot.moderation.settings_commands import SettingsCommands
from bot.scoped_settings import SettingError, SettingsContext
from bot.services import Services
from bot.store import Scope

log = logging.getLogger("aigc.bot.moderation.commands")
_ = app_commands.locale_str
LIMIT_SETTINGS = ("cooldown_s", "daily_quota", "max_concurrent_per_user", "max_concurrent_per_guild")
AUDIT_PAGE = 15
__all__ = ["InputError", "ModCommands", "ModerationListeners", "install", "parse_duration", "parse_limit",
           "parse_since"]


async def install(bot: ext_commands.Bot, services: Services) -> None:
    """`/mod` on the bot's tree, and the listeners of moderation."""
    bot.tree.add_command(ModCommands(services))
    await bot.add_cog(ModerationListeners(services))


class ModerationListeners(ext_commands.Cog):
    def __init__(self, services: Services) -> None:
        self.services = services

    @ext_commands.Cog.listener()
    async def on_interaction(self, it: discord.Interaction) -> None:
        if it.type is discord.InteractionType.modal_submit:
            await self.services.moderation.review.on_modal(it)
        elif it.type is discord.InteractionType.component:
            await self.services.moderation.review.on_component(it)

    @ext_commands.Cog.listener("on_automod_rule_create")
    @ext_commands.Cog.listener("on_automod_rule_update")
    @ext_commands.Cog.listener("on_automod_rule_delete")
    async def on_automod_rule_change(self, rule: Any) -> None:
        guild_id = getattr(rule, "guild_id", None) or getattr(getattr(rule, "guild", None), "id", None)
        if guild_id is not None:
            self.services.moderation.policy.invalidate(int(guild_id))


class ModCommands(ModGroup, name="mod", description=_("Moderation", zh="审核管理"),
                  default_permissions=discord.Permissions(manage_guild=True), guild_only=True):

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        # Synced in this order since /mod had its first subcommand (the command-sync digest
        # covers it): rules, review, /mod's own commands, settings.
        own = self.commands
        for command in own:
            self.remove_command(command.name)
        for child in (RuleCommands(services), ReviewCommands(services), *own, SettingsCommands(services)):
            self.add_command(child)

    @app_commands.command(name="modlog", description=_("Mirror the audit log to a channel", zh="把审计日志同步到频道"))
    @app_commands.describe(channel=_("The mod-log channel (empty: stop mirroring)", zh="日志频道（留空：停止同步）"))
    async def modlog(self, it: discord.Interaction, channel: discord.TextChannel | None = None) -> None:
        s = self.services
        await it.response.defer(ephemeral=True, thinking=True)  # first: acknowledge
        g = str(it.guild_id)
        if channel is None:
            await s.scoped.clear("modlog_channel", guild_id=g)
        else:
            await s.scoped.set("modlog_channel", str(channel.id), guild_id=g)
        await self.audit(it, "mod.modlog", detail={"command": "/mod modlog",
                                                   "modlog_channel": str(channel.id) if channel else None})
        await reply(it, t(it.locale, "modlog_on", channel=channel.mention) if channel else t(it.locale, "modlog_off"))

    @app_commands.command(name="limits", description=_("View or set cooldown, daily quota and concurrency caps",
                                                       zh="查看或设置冷却、每日额度和并发上限"))
    @app_commands.describe(
        setting=_("The limit to change (leave empty to view)", zh="要修改的限制（留空则查看）"),
        value=_("A number; 'none' for an unlimited daily quota; 'reset' to remove the override",
                zh="数字；每日额度可填 none 表示不限；reset 表示移除覆盖"),
        role=_("Set it for this role only", zh="仅对该身份组设置"),
        member=_("Set it for this member only", zh="仅对该成员设置"),
        channel=_("Set it for this channel only", zh="仅对该频道设置"))
    async def set_limits(self, it: discord.Interaction,
                         setting: Literal["cooldown_s", "daily_quota", "max_concurrent_per_user",
                                          "max_concurrent_per_guild"] | None = None,
                         value: str | None = None, role: discord.Role | None = None,
                         member: discord.User | None = None, channel: discord.TextChannel | None = None) -> None:
        s = self.services
        await it.response.defer(ephemeral=True, thinking=True)  # first: acknowledge
        g = str(it.guild_id)
        if setting is None:
            await reply(it, embed=await self._limits_embed(it))
            await self.audit(it, "mod.limits.view", detail={"command": "/mod limits"})
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
        await self.audit(it, "mod.limits", subject_id=str(member.id) if member else None,
                         detail={"command": "/mod limits", "setting": setting, "value": shown, "scope": scope.value,
                                 "scope_id": scope_id})
        await reply(it, t(it.locale, "limit_set", setting=setting, value=shown, where=where))

    @app_commands.command(name="ban", description=_("Block a member from generating", zh="禁止成员生成"))
    @app_commands.describe(user=_("The member", zh="成员"), duration=_("e.g. 30m, 2h, 7d (empty: until unbanned)",
                                                                      zh="如 30m、2h、7d（留空：直到解除）"),
                           reason=_("Why", zh="原因"))
    async def ban_member(self, it: discord.Interaction, user: discord.User, duration: str | None = None,
                         reason: str | None = None) -> None:
        s = self.services
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

    @app_commands.command(name="unban", description=_("Let a member generate again", zh="解除生成禁令"))
    @app_commands.describe(user=_("The member", zh="成员"))
    async def unban_member(self, it: discord.Interaction, user: discord.User) -> None:
        s = self.services
        await it.response.defer(ephemeral=True, thinking=True)  # first: acknowledge
        lifted = await s.store.bans.unban(str(it.guild_id), str(user.id), moderator_id=str(it.user.id))
        if lifted:
            await s.moderation.mirror.mirror_latest(str(it.guild_id), "mod.unban")
        await reply(it, t(it.locale, "unbanned" if lifted else "not_banned", user=user.mention))

    @app_commands.command(name="audit", description=_("Read this server's audit log", zh="查看本服务器的审计日志"))
    @app_commands.describe(user=_("Only rows by or about this member", zh="仅该成员相关的记录"),
                           since=_("e.g. 24h, 7d or 2026-11-01", zh="如 24h、7d 或 2026-11-01"))
    async def read_audit(self, it: discord.Interaction, user: discord.User | None = None, since: str | None = None) -> None:
        s = self.services
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
        await self.audit(it, "mod.audit.read", subject_id=str(user.id) if user else None,
                         detail={"command": "/mod audit", "since": since})

    @app_commands.command(name="purge", description=_("Delete a member's generated messages and records",
                                                      zh="删除成员生成的消息和记录"))
    @app_commands.describe(user=_("The member", zh="成员"), reason=_("Why", zh="原因"))
    async def purge_member(self, it: discord.Interaction, user: discord.User, reason: str | None = None) -> None:
        s = self.services
        await it.response.defer(ephemeral=True, thinking=True)
        g, u = str(it.guild_id), str(user.id)
        records = await all_jobs(s.store, u, g)
        messages = await delete_messages(s.client, s.store, records)
        report = await s.store.purge_member(g, u, actor_id=str(it.user.id), reason=reason)
        await s.moderation.mirror.mirror_latest(g, "mod.purge")
        await it.followup.send(t(it.locale, "purged", user=user.mention, messages=messages,
                                 jobs=report.deleted.get("jobs", 0)), ephemeral=True)

    async def _limits_embed(self, it: discord.Interaction) -> discord.Embed:
        s = self.services
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

"""`/mod settings ...`: set and show the per-guild community settings (bot/scoped_settings.py)
that have no command of their own: which commands are on, who and where may use them,
age-restricted commands, the visible AI mark, retention and prompt storage.

Each handler acknowledges first, changes one setting through ``services.scoped`` (which checks the
value) and audits `mod.settings`; the run-time permission check is ModGroup's. The
settings embed (`/mod settings show`) is ``settings_embed``."""
from __future__ import annotations

from typing import Any, Literal

import discord
from discord import app_commands

from bot.i18n import t
from bot.moderation.base import ModGroup, reply
from bot.scoped_settings import SettingError, SettingsContext
from bot.services import Services
from bot.store import Scope

_ = app_commands.locale_str
Action = Literal["add", "remove", "clear"]


class SettingsCommands(ModGroup, name="settings", description=_("Who may use which command where, AI mark, retention",
                                                                zh="命令的使用范围、AI 标记、保留期")):

    async def command_names(self, it: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        names = sorted(n for n in self.services.catalog if current.lower() in n)
        return [app_commands.Choice(name=n, value=n) for n in names[:25]]

    async def known_command(self, it: discord.Interaction, name: str) -> str | None:
        """The catalog command's name, or None once the moderator is told it is unknown."""
        name = name.strip().lstrip("/").lower()
        if self.services.catalog and name not in self.services.catalog:
            await reply(it, t(it.locale, "settings_unknown_command", command=name,
                              known=", ".join(sorted(self.services.catalog))))
            return None
        return name

    async def save(self, it: discord.Interaction, setting: str, value: Any, *, scope: Scope = Scope.guild,
                   scope_id: str | None = None, shown: str, where: str | None = None) -> None:
        g = str(it.guild_id)
        try:
            await self.services.scoped.set(setting, value, guild_id=g, scope=scope, scope_id=scope_id)
        except SettingError as e:
            await reply(it, t(it.locale, "setting_invalid", error=str(e)))
            return
        if setting in ("review_enabled", "review_channel"):
            self.services.community.forget_review_cache(it.guild_id)
        await self.audit(it, "mod.settings", detail={
            "command": f"/mod settings {it.command.name if it.command else ''}".strip(), "setting": setting,
            "value": self.services.scoped.defs[setting].adapter.dump_python(value, mode="json"),
            "scope": scope.value, "scope_id": scope_id})
        await reply(it, t(it.locale, "settings_saved", setting=setting, value=shown,
                          where=where or t(it.locale, "the_server")))

    async def stored(self, it: discord.Interaction, setting: str, scope: Scope = Scope.guild,
                     scope_id: str | None = None) -> Any:
        value = await self.services.scoped.stored(setting, guild_id=str(it.guild_id), scope=scope, scope_id=scope_id)
        return self.services.scoped.defs[setting].default if value is None else value

    async def edit_list(self, it: discord.Interaction, action: str, item: str | None, command: str | None,
                        whole: str, per_command: str, mention: str, missing: str) -> None:
        """add/remove/clear ``item`` in the guild-wide list ``whole`` or ``per_command[command]``."""
        name = await self.known_command(it, command) if command else None
        if command and name is None:
            return
        if action != "clear" and item is None:
            await reply(it, t(it.locale, missing))
            return
        table = dict(await self.stored(it, per_command)) if name else {}
        current = list(table.get(name, [])) if name else list(await self.stored(it, whole))
        if action == "clear":
            current = []
        elif action == "add" and item not in current:
            current.append(item)  # type: ignore[arg-type]
        elif action == "remove" and item in current:
            current.remove(item)  # type: ignore[arg-type]
        shown = ", ".join(mention.format(i) for i in current) or t(
            it.locale, "settings_everyone" if mention.startswith("<@&") else "settings_anywhere")
        if name:
            if current:
                table[name] = current
            else:
                table.pop(name, None)
            await self.save(it, per_command, table, shown=f"/{name}: {shown}")
        else:
            await self.save(it, whole, current, shown=shown)

    @app_commands.command(name="show", description=_("Show this server's settings", zh="查看本服务器的设置"))
    async def show_settings(self, it: discord.Interaction) -> None:
        await it.response.defer(ephemeral=True, thinking=True)  # first: acknowledge
        await reply(it, embed=await settings_embed(self.services, it))

    @app_commands.command(name="command", description=_("Turn a command on or off", zh="开启或关闭一个命令"))
    @app_commands.describe(command=_("The command", zh="命令"), enabled=_("On or off", zh="开或关"),
                           channel=_("Only in this channel", zh="仅对该频道"))
    @app_commands.autocomplete(command=command_names)
    async def toggle_command(self, it: discord.Interaction, command: str, enabled: bool,
                             channel: discord.TextChannel | None = None) -> None:
        await it.response.defer(ephemeral=True, thinking=True)  # first: acknowledge
        name = await self.known_command(it, command)
        if name is None:
            return
        scope, scope_id = (Scope.channel, str(channel.id)) if channel else (Scope.guild, None)
        table = {**await self.stored(it, "commands", scope, scope_id), name: enabled}
        await self.save(it, "commands", table, scope=scope, scope_id=scope_id,
                        shown=f"/{name} {t(it.locale, 'settings_on' if enabled else 'settings_off')}",
                        where=channel.mention if channel else None)

    @app_commands.command(name="roles", description=_("Roles that may use the bot or one command",
                                                      zh="可以使用机器人或某个命令的身份组"))
    @app_commands.describe(action=_("Add, remove or clear (clear: everyone)", zh="添加、移除或清空（清空：所有人）"),
                           role=_("The role", zh="身份组"),
                           command=_("Only for this command (empty: every command)", zh="仅对该命令（留空：所有命令）"))
    @app_commands.autocomplete(command=command_names)
    async def allowed_roles(self, it: discord.Interaction, action: Action, role: discord.Role | None = None,
                            command: str | None = None) -> None:
        await it.response.defer(ephemeral=True, thinking=True)  # first: acknowledge
        await self.edit_list(it, action, str(role.id) if role else None, command, "allowed_roles", "command_roles",
                             "<@&{}>", "settings_need_role")

    @app_commands.command(name="channels", description=_("Channels where the bot or one command may be used",
                                                         zh="可以使用机器人或某个命令的频道"))
    @app_commands.describe(action=_("Add, remove or clear (clear: anywhere)", zh="添加、移除或清空（清空：任何频道）"),
                           channel=_("The channel", zh="频道"),
                           command=_("Only for this command (empty: every command)", zh="仅对该命令（留空：所有命令）"))
    @app_commands.autocomplete(command=command_names)
    async def allowed_channels(self, it: discord.Interaction, action: Action,
                               channel: discord.TextChannel | None = None, command: str | None = None) -> None:
        await it.response.defer(ephemeral=True, thinking=True)  # first: acknowledge
        await self.edit_list(it, action, str(channel.id) if channel else None, command, "allowed_channels",
                             "command_channels", "<#{}>", "settings_need_channel")

    @app_commands.command(name="nsfw", description=_("Allow a command only in age-restricted channels",
                                                     zh="命令仅限年龄限制频道使用"))
    @app_commands.describe(command=_("The command", zh="命令"),
                           nsfw_only=_("Only in age-restricted channels", zh="仅限年龄限制频道"))
    @app_commands.autocomplete(command=command_names)
    async def nsfw_only(self, it: discord.Interaction, command: str, nsfw_only: bool) -> None:
        await it.response.defer(ephemeral=True, thinking=True)  # first: acknowledge
        name = await self.known_command(it, command)
        if name is None:
            return
        current = [c for c in await self.stored(it, "nsfw_commands") if c != name] + ([name] if nsfw_only else [])
        await self.save(it, "nsfw_commands", current,
                        shown=", ".join(f"/{c}" for c in current) or t(it.locale, "settings_none"))

    @app_commands.command(name="ai-mark", description=_("Draw the visible AI mark on images", zh="在图片上绘制可见的 AI 标记"))
    @app_commands.describe(visible=_("Visible or not", zh="是否可见"), channel=_("Only in this channel", zh="仅对该频道"))
    async def ai_mark_visible(self, it: discord.Interaction, visible: bool, channel: discord.TextChannel | None = None) -> None:
        await it.response.defer(ephemeral=True, thinking=True)  # first: acknowledge
        scope, scope_id = (Scope.channel, str(channel.id)) if channel else (Scope.guild, None)
        await self.save(it, "ai_mark_visible", visible, scope=scope, scope_id=scope_id,
                        shown=t(it.locale, "settings_on" if visible else "settings_off"),
                        where=channel.mention if channel else None)

    @app_commands.command(name="retention", description=_("How long job records and audit rows are kept",
                                                          zh="任务记录和审计记录的保留期"))
    @app_commands.describe(days=_("Days (0: keep forever)", zh="天数（0：永久保留）"))
    async def retention_days(self, it: discord.Interaction, days: app_commands.Range[int, 0, 3650]) -> None:
        await it.response.defer(ephemeral=True, thinking=True)  # first: acknowledge
        await self.save(it, "retention_days", days or None,
                        shown=t(it.locale, "settings_days", days=days) if days else t(it.locale, "settings_forever"))

    @app_commands.command(name="prompts", description=_("Keep prompts in the audit log in full or as a hash",
                                                        zh="审计日志中完整保存提示词或只保存哈希"))
    @app_commands.describe(storage=_("full or hash (sha256 only)", zh="full 完整或 hash（仅 sha256）"))
    @app_commands.choices(storage=[app_commands.Choice(name=_("full", zh="完整"), value="full"),
                                   app_commands.Choice(name=_("hash (sha256 only)", zh="哈希（仅 sha256）"), value="hash")])
    async def prompt_storage(self, it: discord.Interaction, storage: app_commands.Choice[str]) -> None:
        await it.response.defer(ephemeral=True, thinking=True)  # first: acknowledge
        await self.save(it, "prompt_storage", storage.value, shown=storage.value)


async def settings_embed(services: Services, it: discord.Interaction) -> discord.Embed:
    g, loc = str(it.guild_id), it.locale
    s = await services.scoped.resolve(SettingsContext(guild_id=g))

    def listed(values: list[str], fmt: str, empty: str) -> str:
        return ", ".join(fmt.format(v) for v in values) or t(loc, empty)

    def per_command(table: dict[str, list[str]], fmt: str) -> str:
        return "\n".join(f"/{c}: {listed(v, fmt, 'settings_none')}" for c, v in sorted(table.items())) or "—"

    on_off = {True: t(loc, "settings_on"), False: t(loc, "settings_off")}
    disabled = sorted(c for c, on in s.commands.items() if not on)
    embed = discord.Embed(title=t(loc, "settings_title"))
    fields = [
        ("settings_disabled", listed([f"/{c}" for c in disabled], "{}", "settings_none")),
        ("settings_roles", listed(s.allowed_roles, "<@&{}>", "settings_everyone")),
        ("settings_channels", listed(s.allowed_channels, "<#{}>", "settings_anywhere")),
        ("settings_command_roles", per_command(s.command_roles, "<@&{}>")),
        ("settings_command_channels", per_command(s.command_channels, "<#{}>")),
        ("settings_nsfw", listed([f"/{c}" for c in s.nsfw_commands], "{}", "settings_none")),
        ("settings_ai_mark", on_off[s.ai_mark_visible]),
        ("settings_retention", t(loc, "settings_days", days=s.retention_days) if s.retention_days
         else t(loc, "settings_forever")),
        ("settings_prompts", s.prompt_storage),
    ]
    for key, value in fields:
        embed.add_field(name=t(loc, key), value=value[:1024], inline=False)
    overrides = [f"<#{v.scope_id}> {v.key} = {v.value}" for v in await services.store.settings.list_guild(g)
                 if v.scope is Scope.channel and v.key in ("commands", "ai_mark_visible")]
    if overrides:
        embed.add_field(name=t(loc, "settings_channel_overrides"), value="\n".join(overrides)[:1024], inline=False)
    return embed

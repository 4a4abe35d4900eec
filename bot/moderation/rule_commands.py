"""`/mod rules ...`: the guild's own prompt rules (add, remove, list, test against the rules in
force here, AutoMod's included). Rules are checked by the engine before they are stored."""
from __future__ import annotations

import discord
from discord import app_commands

from bot import engine_client as ec
from bot.community import settings_context
from bot.i18n import t
from bot.moderation.base import ModGroup, reply
from bot.moderation.rules import RuleDefinitionError, build_rule, engine_error_field
from bot.scoped_settings import SettingsContext

_ = app_commands.locale_str


class RuleCommands(ModGroup, name="rules", description=_("Prompt rules of this server", zh="本服务器的提示词规则")):

    @app_commands.command(name="add", description=_("Add a prompt rule", zh="添加提示词规则"))
    @app_commands.describe(
        id=_("Rule id (letters, digits, _ . : -)", zh="规则编号（字母、数字、_ . : -）"),
        keywords=_("Comma-separated keywords; * at the start or end is a wildcard", zh="逗号分隔的关键词；* 可作前后缀通配"),
        regex=_("A regular expression (RE2)", zh="正则表达式（RE2）"),
        allow=_("Comma-separated allowed phrases", zh="逗号分隔的允许短语"),
        name=_("A name shown when the rule refuses a prompt", zh="拒绝时显示的规则名称"),
        category=_("Category (e.g. spoilers)", zh="类别（如 剧透）"))
    async def add_rule(self, it: discord.Interaction, id: str, keywords: str | None = None, regex: str | None = None,
                       allow: str | None = None, name: str | None = None, category: str | None = None) -> None:
        s = self.services
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
        await self.audit(it, "mod.rules.add", reason=rule.get("name"),
                         detail={"command": "/mod rules add", "rule": rule["id"], "keywords": len(rule["keywords"]),
                                 "regex": len(rule["regex"]), "allow": len(rule["allow"])})
        await it.followup.send(t(it.locale, "rule_added", id=rule["id"]), ephemeral=True)

    @app_commands.command(name="remove", description=_("Remove a prompt rule", zh="删除提示词规则"))
    @app_commands.describe(id=_("Rule id", zh="规则编号"))
    async def remove_rule(self, it: discord.Interaction, id: str) -> None:
        s = self.services
        await it.response.defer(ephemeral=True, thinking=True)  # first: acknowledge
        ctx = SettingsContext(guild_id=str(it.guild_id))
        existing = list(await s.scoped.get("prompt_rules", ctx))
        kept = [r for r in existing if r.get("id") != id.strip()]
        if len(kept) == len(existing):
            await reply(it, t(it.locale, "rule_unknown", id=id))
            return
        await s.scoped.set("prompt_rules", kept, guild_id=str(it.guild_id))
        await self.audit(it, "mod.rules.remove", detail={"command": "/mod rules remove", "rule": id.strip()})
        await reply(it, t(it.locale, "rule_removed", id=id.strip()))

    @app_commands.command(name="list", description=_("List the prompt rules in force here", zh="列出生效的提示词规则"))
    async def list_rules(self, it: discord.Interaction) -> None:
        s = self.services
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
        await self.audit(it, "mod.rules.list", detail={"command": "/mod rules list"})

    @app_commands.command(name="test", description=_("Check a text against the rules in force here",
                                                     zh="用生效规则检查一段文字"))
    @app_commands.describe(text=_("The text to check", zh="要检查的文字"))
    async def test_rules(self, it: discord.Interaction, text: str) -> None:
        s = self.services
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
        await self.audit(it, "mod.rules.test", prompt=text, prompt_storage=settings.prompt_storage,
                         verdict="allowed" if verdict.allowed else "refused", reason=verdict.rule,
                         detail={"command": "/mod rules test"})

"""Commands for every member: `/quota`, `/verify`, `/privacy` and `/forget-me` (its
confirmation button is answered by a listener, so it works after a restart); and the guild's
data purged when the bot leaves it. A Cog: discord.py's container for top-level commands and
listeners that share state (the services)."""
from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import engine_client as ec
from bot.community import settings_context
from bot.i18n import t
from bot.moderation.privacy import forget_button, forget_target, forget_user, privacy_text
from bot.services import Services

log = logging.getLogger("aigc.bot.member_commands")
_ = app_commands.locale_str
VERIFY_MAX_BYTES = 32 * 2**20


def credentials_text(c: dict[str, Any], locale: Any) -> str:
    """A file's C2PA manifest in a few lines (an embed field holds 1,024 characters): state and
    signer, what made it (actions, digital source type, software agent), its source files."""
    signer = c.get("signer") or {}
    who = " / ".join(str(x) for x in (signer.get("common_name"), signer.get("issuer")) if x) or "?"
    state = str(c.get("state") or "?")
    if state == "Invalid":
        state += f" ({t(locale, 'verify_cred_tampered')})"
    lines = [t(locale, "verify_cred_state", state=state, signer=who[:120])]
    for a in (c.get("actions") or [])[:4]:
        agent = (a.get("softwareAgent") or {}).get("name") if isinstance(a.get("softwareAgent"), dict) else None
        source = str(a.get("digitalSourceType") or "").rsplit("/", 1)[-1]
        lines.append("· " + " · ".join(str(x)[:80] for x in (a.get("action"), source, agent) if x))
    ingredients = c.get("ingredients") or []
    if ingredients:
        shown = ", ".join(f"{str(i.get('title'))[:60]} ({i.get('relationship')})" for i in ingredients[:5])
        more = f" +{len(ingredients) - 5}" if len(ingredients) > 5 else ""
        lines.append(f"{t(locale, 'verify_cred_made_from')}: {shown}{more}")
    return "\n".join(lines)[:1024]


async def install(bot: commands.Bot, services: Services) -> None:
    await bot.add_cog(MemberCommands(services))


class MemberCommands(commands.Cog):
    def __init__(self, services: Services) -> None:
        self.services = services

    @app_commands.command(name="quota", description=_("Your remaining generation budget", zh="你剩余的生成额度"))
    async def quota(self, it: discord.Interaction) -> None:
        await it.response.defer(ephemeral=True, thinking=True)
        status = await self.services.quota.remaining(settings_context(it))
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

    @app_commands.command(name="verify", description=_("Check whether a file was made here", zh="检查文件是否由本服务生成"))
    @app_commands.describe(file=_("The file to check", zh="要检查的文件"))
    async def verify(self, it: discord.Interaction, file: discord.Attachment) -> None:
        await it.response.defer(ephemeral=True, thinking=True)
        if file.size > VERIFY_MAX_BYTES:
            await it.followup.send(t(it.locale, "verify_too_large", size=file.size, limit=VERIFY_MAX_BYTES),
                                   ephemeral=True)
            return
        try:
            data = await file.read()
            report = await self.services.engine.verify(data)
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
        if report.content_credentials:
            embed.add_field(name=t(it.locale, "verify_credentials"), inline=False,
                            value=credentials_text(report.content_credentials, it.locale))
        await it.followup.send(embed=embed, ephemeral=True)

    @app_commands.command(name="privacy", description=_("What this bot stores about you", zh="本机器人存储了你的哪些数据"))
    async def privacy(self, it: discord.Interaction) -> None:
        await it.response.defer(ephemeral=True, thinking=True)
        await it.followup.send(embed=await privacy_text(self.services.scoped, it), ephemeral=True)

    @app_commands.command(name="forget-me", description=_("Erase your data (asks to confirm)", zh="删除你的数据（需确认）"))
    async def forget_me(self, it: discord.Interaction) -> None:
        view = discord.ui.View(timeout=None)
        view.add_item(forget_button(it.user.id, it.locale))
        await it.response.send_message(t(it.locale, "forget_ask"), view=view, ephemeral=True)

    @commands.Cog.listener()
    async def on_interaction(self, it: discord.Interaction) -> None:
        data: dict[str, Any] = it.data or {}  # type: ignore[assignment]
        user_id = forget_target(str(data.get("custom_id", ""))) if it.type is discord.InteractionType.component else None
        if user_id is None:
            return
        if it.user.id != user_id:
            await it.response.send_message(t(it.locale, "not_yours"), ephemeral=True)
            return
        await it.response.defer()
        report = await forget_user(self.services.client, self.services.store, str(user_id))
        await it.edit_original_response(content=t(it.locale, "forgotten", jobs=report.deleted.get("jobs", 0),
                                                   messages=report.deleted.get("messages", 0)), view=None)

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        report = await self.services.store.purge_guild(str(guild.id))
        self.services.moderation.policy.invalidate(guild.id)
        self.services.community.forget_review_cache(guild.id)
        log.info("guild data purged", extra={"guild": guild.id, "deleted": report.deleted})

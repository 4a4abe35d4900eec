"""The bot's own commands (not from the catalog): /show, /jobs, /aigc reload and the
"Make variations" message context menu."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands

from bot.actions import parent_ref
from bot.generation import Request
from bot.i18n import t
from bot.rendering import describe, prompt_of
from bot.results import send_error
from bot.services import Services
from engine.protocol import CommandSpec

_ = app_commands.locale_str


def register(services: Services, tree: app_commands.CommandTree,
             refresh_catalog: Callable[[], Awaitable[bool]]) -> None:
    """``refresh_catalog``: fetch the engine's catalog and sync the commands (True if synced)."""

    @tree.command(name="show", description=_("Post a past job again", zh="再次发布之前的任务"))
    @app_commands.describe(job_id=_("The job id (see /jobs)", zh="任务编号（见 /jobs）"))
    async def show(it: discord.Interaction, job_id: str) -> None:
        await it.response.defer(thinking=True, ephemeral=await services.community.holds_for_review(it))
        record = await services.store.jobs.get(job_id.strip())
        spec = services.catalog.get(record.command) if record else None
        if record is None or spec is None or record.seed is None:
            await send_error(it, t(it.locale, "unknown_job", job=job_id))
            return
        if not await services.community.may_republish(record.id):  # held or rejected by moderators
            await send_error(it, t(it.locale, "not_approved", job=record.id))
            return
        # (command, options, seed) describe the job: asking again gives the same outputs.
        await services.generation.run(Request(it, spec, _without_job_fields(spec, record.options),
                                          seed=record.seed, count=record.count, author_id=record.user_id),
                             charge=False)

    @tree.command(name="jobs", description=_("List your recent jobs", zh="列出你最近的任务"))
    async def jobs(it: discord.Interaction) -> None:
        await it.response.defer(ephemeral=True, thinking=True)
        records = await services.store.jobs.list_for_user(str(it.user.id), limit=10)
        if not records:
            await it.followup.send(t(it.locale, "no_jobs"), ephemeral=True)
            return
        lines = []
        for r in records:
            what = describe(services.catalog.get(r.command), r.options, r.parent_action, r.parent_index,
                            r.action_options, it.locale) or prompt_of(r.options)
            lines.append(f"`{r.id}` /{r.command} {what[:80]} — {r.status} · <t:{int(r.created_at.timestamp())}:R>")
        embed = discord.Embed(title=t(it.locale, "jobs_title"), description="\n".join(lines)[:4000])
        await it.followup.send(embed=embed, ephemeral=True)

    group = app_commands.Group(name="aigc", description=_("Bot administration", zh="机器人管理"),
                               default_permissions=discord.Permissions(manage_guild=True))

    @group.command(name="reload", description=_("Reload the generator catalog", zh="重新加载生成器目录"))
    async def reload(it: discord.Interaction) -> None:
        await it.response.defer(ephemeral=True, thinking=True)
        if not it.permissions.manage_guild:
            await it.followup.send(t(it.locale, "admin_only"), ephemeral=True)
            return
        changed = await refresh_catalog()
        await it.followup.send(t(it.locale, "reloaded", commands=len(services.catalog),
                                 changed=t(it.locale, "changed" if changed else "unchanged")), ephemeral=True)

    tree.add_command(group)

    @tree.context_menu(name=_("Make variations", zh="生成变体"))
    async def make_variations(it: discord.Interaction, message: discord.Message) -> None:
        await it.response.defer(thinking=True, ephemeral=await services.community.holds_for_review(it))
        record = await services.store.jobs.get_by_result_message(str(message.id))
        spec = services.catalog.get(record.command) if record else None
        if record is None or spec is None or not any(a.name == "variations" for a in spec.actions):
            await send_error(it, t(it.locale, "not_a_result"))
            return
        await services.generation.run(Request(it, spec, {}, parent=parent_ref(record, "variations", 0)))


def _without_job_fields(spec: CommandSpec, options: dict[str, Any]) -> dict[str, Any]:
    fields = {o.name for o in spec.options if o.job_field}
    return {k: v for k, v in options.items() if k not in fields}

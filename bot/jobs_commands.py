"""`/show` (post a past job again: same command, options and seed) and `/jobs` (your recent
jobs), as a Cog: discord.py's container for top-level commands that share state (the services)."""
from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.generation import Request
from bot.i18n import t
from bot.rendering import describe, prompt_of
from bot.results import send_error
from bot.services import Services
from engine.protocol import CommandSpec

_ = app_commands.locale_str


class JobCommands(commands.Cog):
    def __init__(self, services: Services) -> None:
        self.services = services

    @app_commands.command(name="show", description=_("Post a past job again", zh="再次发布之前的任务"))
    @app_commands.describe(job_id=_("The job id (see /jobs)", zh="任务编号（见 /jobs）"))
    async def show(self, it: discord.Interaction, job_id: str) -> None:
        s = self.services
        await it.response.defer(thinking=True, ephemeral=await s.community.holds_for_review(it))
        record = await s.store.jobs.get(job_id.strip())
        spec = s.catalog.get(record.command) if record else None
        if record is None or spec is None or record.seed is None:
            await send_error(it, t(it.locale, "unknown_job", job=job_id))
            return
        if not await s.community.may_republish(record.id):  # held or rejected by moderators
            await send_error(it, t(it.locale, "not_approved", job=record.id))
            return
        # (command, options, seed) describe the job: asking again gives the same outputs.
        await s.generation.run(Request(it, spec, _without_job_fields(spec, record.options),
                                       seed=record.seed, count=record.count, author_id=record.user_id),
                               charge=False)

    @app_commands.command(name="jobs", description=_("List your recent jobs", zh="列出你最近的任务"))
    async def jobs(self, it: discord.Interaction) -> None:
        s = self.services
        await it.response.defer(ephemeral=True, thinking=True)
        records = await s.store.jobs.list_for_user(str(it.user.id), limit=10)
        if not records:
            await it.followup.send(t(it.locale, "no_jobs"), ephemeral=True)
            return
        lines = []
        for r in records:
            what = describe(s.catalog.get(r.command), r.options, r.parent_action, r.parent_index,
                            r.action_options, it.locale) or prompt_of(r.options)
            lines.append(f"`{r.id}` /{r.command} {what[:80]} — {r.status} · <t:{int(r.created_at.timestamp())}:R>")
        embed = discord.Embed(title=t(it.locale, "jobs_title"), description="\n".join(lines)[:4000])
        await it.followup.send(embed=embed, ephemeral=True)


def _without_job_fields(spec: CommandSpec, options: dict[str, Any]) -> dict[str, Any]:
    fields = {o.name for o in spec.options if o.job_field}
    return {k: v for k, v in options.items() if k not in fields}

"""What a click on a result button does. Every action starts from the job record in the
store, so it works after a restart and after the engine forgot the job."""
from __future__ import annotations

import logging
import re
from typing import Any

import discord

from bot import engine_client as ec
from bot.animation import blend_clicked, emoji_gif, needs_gif
from bot.community import is_moderator
from bot.custom_ids import ButtonId
from bot.generation import Request
from bot.i18n import t
from bot.rendering import describe, prompt_of
from bot.services import Services
from bot.store import AuditEvent, JobRecord
from bot.views import ActionForm
from engine.protocol import CommandSpec, ParentRef

log = logging.getLogger("aigc.bot.actions")
EMOJI_MAX_BYTES = 256 * 1024
BOT_ACTIONS = ("details", "delete", "emoji", "cancel", "blend")


def parent_ref(record: JobRecord, action: str, index: int) -> ParentRef:
    """The parent's full description travels with the request: the engine needs nothing stored."""
    return ParentRef(job=record.id, action=action, index=index, command=record.command,
                     options=record.options, seed=record.seed)


async def handle(services: Services, it: discord.Interaction, bid: ButtonId) -> None:
    record = await services.store.jobs.get(bid.job)
    if record is None:
        await it.response.send_message(t(it.locale, "unknown_job", job=bid.job), ephemeral=True)
        return
    if bid.action == "details":
        await it.response.send_message(embed=details_embed(record, it.locale, services.catalog.get(record.command)),
                                       ephemeral=True)
        return
    if bid.action == "delete":
        await delete(services, it, record)
        return
    if bid.action == "emoji":
        await save_emoji(services, it, record, bid.index or 0)
        return
    if bid.action == "cancel":
        await cancel(services, it, record)
        return
    if bid.action == "blend":
        await blend_clicked(services, it, record)
        return
    spec = services.catalog.get(record.command)
    action = next((a for a in spec.actions if a.name == bid.action), None) if spec else None
    if spec is None or action is None:
        await it.response.send_message(t(it.locale, "unknown_job", job=bid.job), ephemeral=True)
        return
    if action.options:
        async def submitted(modal_it: discord.Interaction, values: dict[str, Any]) -> None:
            await start_follow_up(services, modal_it, spec, record, bid, values)
        await it.response.send_modal(ActionForm(action, bid, submitted))
        return
    await start_follow_up(services, it, spec, record, bid, {})


async def start_follow_up(services: Services, it: discord.Interaction, spec: CommandSpec, record: JobRecord,
                          bid: ButtonId, options: dict[str, Any]) -> None:
    # Acknowledge first; a new message will hold the result (ephemeral where held for review).
    await it.response.defer(thinking=True, ephemeral=await services.community.holds_for_review(it))
    await services.generation.run(Request(it, spec, options, parent=parent_ref(record, bid.action, bid.index or 0),
                                      own_follow_up=str(it.user.id) == record.user_id))


async def delete(services: Services, it: discord.Interaction, record: JobRecord) -> None:
    if str(it.user.id) != record.user_id and not is_moderator(it):
        await it.response.send_message(t(it.locale, "not_yours"), ephemeral=True)
        return
    await it.response.defer()
    if it.message is not None:
        await it.message.delete()
    await services.store.audit.append(AuditEvent(
        action="job.deleted", actor_id=str(it.user.id), guild_id=record.guild_id,
        channel_id=record.channel_id, subject_id=record.user_id, command=record.command, job_id=record.id))


async def cancel(services: Services, it: discord.Interaction, record: JobRecord) -> None:
    """Cancel a queued or running job (its author or a moderator). The flow that follows the
    job sees it end, refunds the quota and says so; this only asks the engine."""
    if str(it.user.id) != record.user_id and not is_moderator(it):
        await it.response.send_message(t(it.locale, "not_yours"), ephemeral=True)
        return
    if record.status in ("done", "failed", "cancelled"):
        await it.response.send_message(t(it.locale, "cancel_too_late"), ephemeral=True)
        return
    await it.response.defer()
    try:
        await services.engine.cancel(record.id, engine_url=record.engine_url)
    except ec.EngineClientError as e:
        if e.code != "already_finished":
            raise
        await it.followup.send(t(it.locale, "cancel_too_late"), ephemeral=True)
        return
    await services.store.audit.append(AuditEvent(
        action="job.cancelled", actor_id=str(it.user.id), guild_id=record.guild_id,
        channel_id=record.channel_id, subject_id=record.user_id, command=record.command, job_id=record.id))


async def save_emoji(services: Services, it: discord.Interaction, record: JobRecord, index: int) -> None:
    """Save output `index` as a server emoji (Manage Expressions, Discord's 256 KiB cap)."""
    if it.guild is None or not it.permissions.manage_expressions:
        await it.response.send_message(t(it.locale, "admin_only"), ephemeral=True)
        return
    if not it.app_permissions.manage_expressions:
        await it.response.send_message(t(it.locale, "need_manage_expressions"), ephemeral=True)
        return
    await it.response.defer(ephemeral=True, thinking=True)
    art = next((a for a in record.artifacts if a.index == index), None)
    if art is None:
        await it.followup.send(t(it.locale, "unknown_job", job=record.id), ephemeral=True)
        return
    if needs_gif(services.catalog.get(record.command), art.mime):  # an animation: its GIF is the emoji
        data = await emoji_gif(services, record, index)
    else:
        data = await artifact_bytes(services, record, art.id)
    if len(data) > EMOJI_MAX_BYTES:
        await it.followup.send(t(it.locale, "emoji_too_big", size=len(data)), ephemeral=True)
        return
    name = emoji_name(record, index)
    try:
        await it.guild.create_custom_emoji(name=name, image=data, reason=f"AIGC job {record.id}")
    except discord.HTTPException as e:
        await it.followup.send(f"{e.text or e}", ephemeral=True)
        return
    await it.followup.send(t(it.locale, "emoji_saved", name=name), ephemeral=True)
    await services.store.audit.append(AuditEvent(action="emoji.saved", actor_id=str(it.user.id),
                                            guild_id=record.guild_id, job_id=record.id,
                                            output_hash=art.sha256))


async def artifact_bytes(services: Services, record: JobRecord, artifact_id: str) -> bytes:
    """The file, from the engine's store or, once expired there, made again: a job is fully
    described by (command, options, seed), so the same request gives the same bytes' pixels."""
    try:
        return await services.engine.artifact(artifact_id, job_id=record.id)
    except ec.NotFound:
        view = await services.renderer.regenerate(record)
        index = int(artifact_id.rsplit("-", 1)[-1])
        return await services.engine.artifact(view.artifacts[index].id, job_id=view.id)


def emoji_name(record: JobRecord, index: int) -> str:
    """Named after what the output is: its prompt, and a morph's target after it."""
    prompt = prompt_of(record.options, record.command)
    target = prompt_of(record.action_options)
    words = f"{prompt} to {target}" if target else prompt
    slug = re.sub(r"[^a-z0-9_]+", "_", words.lower()).strip("_")[:28] or record.command
    return f"{slug}_{index + 1}"[:32].ljust(2, "_")


def details_embed(record: JobRecord, locale: Any, spec: CommandSpec | None = None) -> discord.Embed:
    import json

    e = discord.Embed(title=t(locale, "details_title", job=record.id), colour=0x5865F2)
    e.add_field(name="command", value=f"/{record.command}")
    e.add_field(name="seed", value=str(record.seed))
    e.add_field(name="count", value=str(record.count))
    model = "\n".join(f"{k}: {v}" for k, v in record.model.items())
    e.add_field(name="model", value=model[:1024] or "—", inline=False)
    what = describe(spec, record.options, record.parent_action, record.parent_index, record.action_options,
                    locale)
    if what:
        e.description = what
    e.add_field(name="options", value=f"```{json.dumps(record.options, ensure_ascii=False)[:1000]}```",
                inline=False)
    if record.action_options:
        e.add_field(name=record.parent_action or "action",
                    value=f"```{json.dumps(record.action_options, ensure_ascii=False)[:1000]}```", inline=False)
    if record.parent_job_id:
        e.add_field(name="parent", value=f"{record.parent_action} of {record.parent_job_id} "
                                         f"#{record.parent_index + 1}")
    e.set_footer(text=t(locale, "ai_label"))
    return e

"""What a finished job becomes on Discord, shared by the generation pipeline, the review queue
and the result buttons: the refusal type every step raises, the files and buttons of a result
message, the user-facing error line, and a job made again when the engine forgot it."""
from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

import discord

from bot import engine_client as ec
from bot.blending import blend_buttons
from bot.i18n import t
from bot.inline_text import shown_inline
from bot.output_picker import output_selects
from bot.rendering import result_buttons
from bot.store import JobRecord
from bot.views import buttons_view
from engine.protocol import CommandSpec, JobRequest, JobView, Requester

log = logging.getLogger("aigc.bot.results")
# Interaction tokens live 15 minutes; past this we deliver with the bot token instead.
TOKEN_SAFE_S = 14 * 60
DEFAULT_ATTACHMENT_LIMIT = 10 * 2**20
PROPAGATOR = "Discord via AIGC Bot"  # GB 45438 ContentPropagator of every file the bot posts


class Refused(Exception):
    """A request the bot will not run; ``message`` is already localized for the user.
    ``verdict`` and ``reason`` are what the audit log records: ``gated`` (settings, bans),
    ``throttled`` (a quota limit: cooldown, daily quota, concurrency; its own audit action
    ``job.throttled``, not a refusal) or ``blocked`` (repeated refused prompts)."""

    def __init__(self, message: str, *, verdict: str = "gated", reason: str | None = None):
        super().__init__(message)
        self.message = message
        self.verdict = verdict
        self.reason = reason or message


class Cancelled(Refused):
    """The job was cancelled (its Cancel button) before it finished; the quota is refunded."""


def propagate_id(guild_id: Any, channel_id: Any, event_id: Any) -> str:
    """GB 45438 PropagateID of a posted file: where, and the interaction (or review) behind it."""
    return f"discord:{guild_id or 'dm'}/{channel_id}/{event_id}"


def result_view(view: JobView, spec: CommandSpec | None) -> discord.ui.View:
    """The buttons under a result (their custom_ids carry action and job; see bot.views)."""
    savable = any(a.presentation.value in ("image", "animation") for a in view.artifacts)
    buttons = buttons_view(result_buttons(view, spec, savable=savable) + blend_buttons(view))
    for select in output_selects(view, spec):
        buttons.add_item(select)
    return buttons


def shows_inline(a: Any) -> bool:
    """An attachment the embed can show as its image: pictures, and animations Discord animates
    inline (GIF, WebP; an MP4 plays as an attachment of its own)."""
    return a.presentation.value == "image" or (a.presentation.value == "animation" and a.mime.startswith("image/"))


class Renderer:
    """Turns a finished job into what a message attaches, from the engine's files."""

    def __init__(self, engine: ec.EngineClient):
        self.engine = engine

    async def files(self, view: JobView, limit: int, locale: Any = "en-US", *, where: str,
                    engine_job: str | None = None) -> tuple[list[discord.File], str | None]:
        """What a result message attaches, and the name the embed shows: the image outputs as one
        picture (the engine's display copy: a grid, or the output scaled up, labelled, naming
        ``where`` it is posted, and in the ledger), then every other output as it is. Audio
        outputs are attached as they are (Discord plays them inline) and the picture is their
        preview (the engine draws spectrogram and waveform for a job with no images).
        ``engine_job``: the engine's id of the job when ``view`` carries the bot's (made again)."""
        shown = [a for a in view.artifacts if a.presentation.value == "image" and a.mime == "image/png"]
        inline = shown_inline(view)  # texts the embed lists: not attached again
        others = [a for a in view.artifacts if a not in shown and a.id not in inline]
        files, image_name = [], None
        if shown or any(a.presentation.value == "audio" for a in view.artifacts):
            data = await self.engine.display(engine_job or view.id, propagator=PROPAGATOR, propagate_id=where)
            if len(data) > limit:
                raise Refused(t(locale, "too_large", size=len(data), limit=limit))
            image_name = f"{view.command}-{view.seed}.png"
            files.append(discord.File(io.BytesIO(data), filename=image_name, description="AI-generated"))
        blobs = await asyncio.gather(*(self.engine.artifact(a.id, job_id=engine_job or view.id) for a in others))
        for a, data in zip(others, blobs):
            if len(data) > limit:
                raise Refused(t(locale, "too_large", size=len(data), limit=limit))
            files.append(discord.File(io.BytesIO(data), filename=a.filename, description="AI-generated"))
            if image_name is None and shows_inline(a):
                image_name = a.filename
        return files, image_name

    async def regenerate(self, record: JobRecord) -> JobView:
        """The job made again: (command, options, seed) describe it, so the outputs are the same."""
        req = JobRequest(command=record.command, options=record.options, seed=record.seed, count=record.count,
                         requester=Requester(platform="discord", guild=record.guild_id,
                                             channel=record.channel_id, user=record.user_id, escalation="front"),
                         idempotency_key=f"regen:{record.id}")
        submitted = await self.engine.submit(req)
        view = await self.engine.wait(submitted.id, timeout_s=300)
        if view.status.value != "done":
            raise ec.JobFailed(view)
        return view


def error_message(e: Exception, locale: Any) -> str:
    """A specific, localized line for each way a submit can fail."""
    if isinstance(e, Refused):
        return e.message
    if isinstance(e, ec.PromptRefused):
        return t(locale, "prompt_refused", rule=e.rule or "?")
    if isinstance(e, ec.RequesterBlocked):
        return t(locale, "requester_blocked", minutes=max(1, round(e.retry_after_s / 60)))
    if isinstance(e, ec.QueueFull):
        return t(locale, "queue_full", retry=e.retry_after_s)
    if isinstance(e, ec.InvalidOption):
        field = (e.field or "").removeprefix("options.")
        return t(locale, "invalid_option", field=field or "?", rule=e.rule)
    if isinstance(e, ec.EngineUnavailable):
        return t(locale, "engine_down", retry=e.retry_after_s)
    if isinstance(e, ec.JobFailed):
        return t(locale, "job_failed", message=e.job.error.message if e.job.error else "?")
    if isinstance(e, ec.NotFound):
        return t(locale, "unknown_job", job="?")
    return t(locale, "job_failed", message=type(e).__name__)


async def send_error(it: discord.Interaction, message: str) -> None:
    """Errors are ephemeral. A deferred reply cannot change its visibility, and the first
    followup after a defer replaces the deferred message, so drop that message first."""
    try:
        if not it.response.is_done():
            await it.response.send_message(message, ephemeral=True)
            return
        if it.response.type is not discord.InteractionResponseType.deferred_message_update:
            await safe(it.delete_original_response())
        await it.followup.send(message, ephemeral=True)
    except discord.HTTPException:
        log.warning("could not report an error to the user", extra={"interaction": it.id})


async def safe(coro: Any) -> Any:
    """Await a Discord call whose failure only costs a cosmetic update."""
    try:
        return await coro
    except (discord.HTTPException, ConnectionError, asyncio.TimeoutError) as e:
        log.warning("ignored failure", extra={"error": repr(e)})
        return None

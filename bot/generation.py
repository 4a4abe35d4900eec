"""The flow of one generation, shared by slash commands, buttons and the context menu:

defer (done by the caller, first) → gate → submit (interaction id = idempotency key) →
live progress by editing the message → result with attachments, embed and buttons →
record, audit, commit the quota (refund on failure).
"""
from __future__ import annotations

import asyncio
import io
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord

from bot import engine_client as ec
from bot.i18n import t
from bot.metrics import outcome_of
from bot.rendering import progress_buttons, progress_text
from bot.store import ArtifactRecord, NewJob
from bot.views import buttons_view
from engine.protocol import CommandSpec, JobRequest, JobView, ParentRef, Requester

if TYPE_CHECKING:
    from bot.app import AigcBot

log = logging.getLogger("aigc.bot.generation")
# Interaction tokens live 15 minutes; past this we deliver with the bot token instead.
TOKEN_SAFE_S = 14 * 60
PROGRESS_MIN_INTERVAL_S = 1.0


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


@dataclass
class Request:
    """One generation as the bot sees it."""

    interaction: discord.Interaction
    spec: CommandSpec
    options: dict[str, Any]
    parent: ParentRef | None = None
    seed: int | None = None
    count: int | None = None
    author_id: str | None = None  # whom the result credits when not the caller (/show of a past job)
    own_follow_up: bool = False  # a button on the member's own result: no cooldown (see gate)
    outcome: str = "pending"  # set by run(): ok | refused | engine_error | error (bot.metrics)

    @property
    def locale(self) -> Any:
        return self.interaction.locale

    @property
    def cost(self) -> int:
        """Outputs this request will make: what the quota is charged."""
        if self.count:
            return self.count
        for o in self.spec.options:
            if o.job_field == "count" and isinstance(self.options.get(o.name), int):
                return self.options[o.name]
        if self.parent is not None and self.parent.action == "variations":
            return self.spec.max_count
        return 1


def requester_of(interaction: discord.Interaction) -> Requester:
    return Requester(platform="discord", guild=str(interaction.guild_id) if interaction.guild_id else None,
                     channel=str(interaction.channel_id) if interaction.channel_id else None,
                     user=str(interaction.user.id), locale=str(interaction.locale.value),
                     escalation="front")  # blocks are the bot's per-server bans (bot.community)


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


async def run(bot: "AigcBot", req: Request, *, charge: bool = True) -> JobView | None:
    """Run one generation for an interaction the caller has already deferred. ``charge``:
    take it from the member's quota (not for re-posting a past job with /show)."""
    it = req.interaction
    started = time.monotonic()
    reservation = None
    job_id: str | None = None
    try:
        # Admission: a few flows at a time do the store and engine work before a job is
        # queued, so a burst of interactions is acknowledged first (the defers are not
        # stuck behind fifty flows' database work on the event loop).
        async with bot.admission:
            gate = await bot.community.gate(it, req.spec, cost=req.cost if charge else 0,
                                            cooldown=not req.own_follow_up)
            reservation = gate.reservation
            job_req = JobRequest(command=req.spec.name, options=req.options, seed=req.seed, count=req.count,
                                 requester=requester_of(it), idempotency_key=str(it.id), parent=req.parent,
                                 visible_mark=gate.visible_mark, policy=gate.policy)
            submitted = await bot.engine.submit(job_req)
            job_id = submitted.id
            # A follow-up's record holds the options it runs with (its parent's, until the
            # engine says) and its own apart (morph's target): /jobs, Details and names say
            # what it is.
            parent_options = req.parent.options if req.parent is not None else None
            await bot.store.jobs.create(NewJob(
                id=job_id, user_id=str(it.user.id), command=req.spec.name,
                options=dict(parent_options) if parent_options is not None else req.options,
                action_options=req.options if req.parent is not None else {},
                guild_id=str(it.guild_id) if it.guild_id else None,
                channel_id=str(it.channel_id) if it.channel_id else None,
                idempotency_key=str(it.id), engine_url=submitted.engine_url, seed=req.seed,
                count=req.count or 1, parent_job_id=req.parent.job if req.parent else None,
                parent_action=req.parent.action if req.parent else None,
                parent_index=req.parent.index if req.parent else 0))
        view = await follow(bot, it, job_id, started)
        if view.status.value == "cancelled":
            raise Cancelled(t(req.locale, "cancelled"))
        if view.error is not None or view.status.value != "done":
            raise ec.JobFailed(view)
        await bot.store.jobs.update(job_id, status="done", seed=view.seed, options=view.options,
                                    artifacts=[_artifact_record(a) for a in view.artifacts],
                                    model=view.model, timings=view.timings.model_dump())
        await bot.community.deliver(it, req.spec, view, started=started, author_id=req.author_id)
        if reservation is not None:  # charged only once the user has the result
            await bot.quota.commit(reservation, job_id)
            reservation = None
        req.outcome = "ok"
        return view
    except Exception as e:
        req.outcome = outcome_of(e)
        if reservation is not None:
            await bot.quota.refund(reservation, job_id)
        if job_id is not None:
            await _safe(bot.store.jobs.update(job_id, status="cancelled" if isinstance(e, Cancelled) else "failed",
                                              error={"message": str(e)[:500]}))
        if not isinstance(e, (Refused, ec.EngineClientError)):
            log.exception("generation failed", extra={"interaction": it.id})
        # A cancel is audited by whoever cancelled (actions.cancel), not as a refusal.
        message = None if isinstance(e, Cancelled) else await bot.community.on_refused(it, req.spec, req.options, e)
        await send_error(it, message or error_message(e, req.locale))
        return None


async def follow(bot: "AigcBot", it: discord.Interaction, job_id: str, started: float) -> JobView:
    """Edit the deferred message as the job moves (queued #n → running) until it finishes."""
    last_text, last_edit = None, 0.0
    view: JobView | None = None
    async for ev in bot.engine.events(job_id):
        view = ev.job
        if view.status.terminal:
            break
        text = progress_text(view, it.locale)
        now = time.monotonic()
        if text != last_text and now - last_edit >= PROGRESS_MIN_INTERVAL_S and now - started < TOKEN_SAFE_S:
            last_text, last_edit = text, now
            cancel = buttons_view(progress_buttons(job_id, it.locale))
            await _safe(it.edit_original_response(content=text, view=cancel))
    if view is None or not view.status.terminal:
        view = await bot.engine.job(job_id)
    return view


PROPAGATOR = "Discord via AIGC Bot"  # GB 45438 ContentPropagator of every file the bot posts


def propagate_id(guild_id: Any, channel_id: Any, event_id: Any) -> str:
    """GB 45438 PropagateID of a posted file: where, and the interaction (or review) behind it."""
    return f"discord:{guild_id or 'dm'}/{channel_id}/{event_id}"


async def result_files(bot: "AigcBot", view: JobView, limit: int, locale: Any = "en-US", *, where: str,
                       engine_job: str | None = None) -> tuple[list[discord.File], str | None]:
    """What a result message attaches, and the name the embed shows: the image outputs as one
    picture (the engine's display copy: a grid, or the output scaled up, labelled, naming
    ``where`` it is posted, and in the ledger), then every other output as it is.
    ``engine_job``: the engine's id of the job when ``view`` carries the bot's (made again)."""
    shown = [a for a in view.artifacts if a.presentation.value == "image" and a.mime == "image/png"]
    others = [a for a in view.artifacts if a not in shown]
    files, image_name = [], None
    if shown:
        data = await bot.engine.display(engine_job or view.id, propagator=PROPAGATOR, propagate_id=where)
        if len(data) > limit:
            raise Refused(t(locale, "too_large", size=len(data), limit=limit))
        image_name = f"{view.command}-{view.seed}.png"
        files.append(discord.File(io.BytesIO(data), filename=image_name, description="AI-generated"))
    blobs = await asyncio.gather(*(bot.engine.artifact(a.id, job_id=engine_job or view.id) for a in others))
    for a, data in zip(others, blobs):
        if len(data) > limit:
            raise Refused(t(locale, "too_large", size=len(data), limit=limit))
        files.append(discord.File(io.BytesIO(data), filename=a.filename, description="AI-generated"))
        if image_name is None and a.presentation.value == "image":
            image_name = a.filename
    return files, image_name


async def send_error(it: discord.Interaction, message: str) -> None:
    """Errors are ephemeral. A deferred reply cannot change its visibility, and the first
    followup after a defer replaces the deferred message, so drop that message first."""
    try:
        if not it.response.is_done():
            await it.response.send_message(message, ephemeral=True)
            return
        if it.response.type is not discord.InteractionResponseType.deferred_message_update:
            await _safe(it.delete_original_response())
        await it.followup.send(message, ephemeral=True)
    except discord.HTTPException:
        log.warning("could not report an error to the user", extra={"interaction": it.id})


def _artifact_record(a: Any) -> ArtifactRecord:
    return ArtifactRecord(id=a.id, index=a.index, sha256=a.sha256, url=a.url, filename=a.filename,
                          mime=a.mime, size=a.size)


async def _safe(coro: Any) -> Any:
    try:
        return await coro
    except (discord.HTTPException, ConnectionError, asyncio.TimeoutError) as e:
        log.warning("ignored failure", extra={"error": repr(e)})
        return None

"""The flow of one generation, shared by slash commands, buttons and the context menu, as one
pipeline that owns its steps:

defer (done by the caller, first) → gate (community rules, quota reservation) → submit
(interaction id = idempotency key) → follow (live progress by editing the message) →
deliver (the channel, or the review queue) → render (attachments, embed and buttons) →
record, audit, commit the quota (refund on failure).
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import discord

from bot import engine_client as ec
from bot.community import Community, job_audit
from bot.i18n import t
from bot.metrics import outcome_of
from bot.moderation.review import ReviewQueue
from bot.quota import QuotaService
from bot.rendering import progress_buttons, progress_text, result_embed
from bot.results import (DEFAULT_ATTACHMENT_LIMIT, TOKEN_SAFE_S, Cancelled, Refused, Renderer, error_message,
                         propagate_id, result_view, safe, send_error)
from bot.store import ArtifactRecord, NewJob, Store
from bot.views import buttons_view
from engine.protocol import CommandSpec, JobRequest, JobView, ParentRef, Requester, SourceRef

log = logging.getLogger("aigc.bot.generation")
PROGRESS_MIN_INTERVAL_S = 1.0
__all__ = ["Generation", "Request", "Refused", "Cancelled", "error_message", "send_error", "requester_of"]


@dataclass
class Request:
    """One generation as the bot sees it."""

    interaction: discord.Interaction
    spec: CommandSpec
    options: dict[str, Any]
    parent: ParentRef | None = None
    seed: int | None = None
    count: int | None = None
    sources: tuple[SourceRef, ...] = ()  # outputs it draws from besides a parent (a Blend's ends)
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


class Generation:
    """The pipeline. Built once (bot.services) from the parts it uses; a few flows at a time
    pass the gate and submit steps (``admission``), the rest wait after their defer."""

    def __init__(self, client: discord.Client, engine: ec.EngineClient, store: Store, quota: QuotaService,
                 community: Community, review: ReviewQueue, renderer: Renderer, *, admission: int = 4):
        self.client, self.engine, self.store, self.quota = client, engine, store, quota
        self.community, self.review, self.renderer = community, review, renderer
        self.admission = asyncio.Semaphore(admission)

    async def run(self, req: Request, *, charge: bool = True) -> JobView | None:
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
            async with self.admission:
                gate = await self.community.gate(it, req.spec, cost=req.cost if charge else 0,
                                                 cooldown=not req.own_follow_up)
                reservation = gate.reservation
                job_req = JobRequest(command=req.spec.name, options=req.options, seed=req.seed, count=req.count,
                                     requester=requester_of(it), idempotency_key=str(it.id), parent=req.parent,
                                     sources=list(req.sources), visible_mark=gate.visible_mark, policy=gate.policy)
                submitted = await self.engine.submit(job_req)
                job_id = submitted.id
                # A follow-up's record holds the options it runs with (its parent's, until the
                # engine says) and its own apart (morph's target): /jobs, Details and names say
                # what it is.
                parent_options = req.parent.options if req.parent is not None else None
                await self.store.jobs.create(NewJob(
                    id=job_id, user_id=str(it.user.id), command=req.spec.name,
                    options=dict(parent_options) if parent_options is not None else req.options,
                    action_options=req.options if req.parent is not None else {},
                    guild_id=str(it.guild_id) if it.guild_id else None,
                    channel_id=str(it.channel_id) if it.channel_id else None,
                    idempotency_key=str(it.id), engine_url=submitted.engine_url, seed=req.seed,
                    count=req.count or 1, parent_job_id=req.parent.job if req.parent else None,
                    parent_action=req.parent.action if req.parent else None,
                    parent_index=req.parent.index if req.parent else 0))
            view = await self.follow(it, job_id, started)
            if view.status.value == "cancelled":
                raise Cancelled(t(req.locale, "cancelled"))
            if view.error is not None or view.status.value != "done":
                raise ec.JobFailed(view)
            await self.store.jobs.update(job_id, status="done", seed=view.seed, options=view.options,
                                        artifacts=[_artifact_record(a) for a in view.artifacts],
                                        model=view.model, timings=view.timings.model_dump())
            await self.deliver(it, req.spec, view, started=started, author_id=req.author_id)
            if reservation is not None:  # charged only once the user has the result
                await self.quota.commit(reservation, job_id)
                reservation = None
            req.outcome = "ok"
            return view
        except Exception as e:
            req.outcome = outcome_of(e)
            if reservation is not None:
                await self.quota.refund(reservation, job_id)
            if job_id is not None:
                await safe(self.store.jobs.update(job_id, status="cancelled" if isinstance(e, Cancelled) else "failed",
                                                  error={"message": str(e)[:500]}))
            if not isinstance(e, (Refused, ec.EngineClientError)):
                log.exception("generation failed", extra={"interaction": it.id})
            # A cancel is audited by whoever cancelled (actions.cancel), not as a refusal.
            message = None if isinstance(e, Cancelled) else await self.community.on_refused(it, req.spec, req.options, e)
            await send_error(it, message or error_message(e, req.locale))
            return None


    async def follow(self, it: discord.Interaction, job_id: str, started: float) -> JobView:
        """Edit the deferred message as the job moves (queued #n → running) until it finishes."""
        last_text, last_edit = None, 0.0
        view: JobView | None = None
        async for ev in self.engine.events(job_id):
            view = ev.job
            if view.status.terminal:
                break
            text = progress_text(view, it.locale)
            now = time.monotonic()
            if text != last_text and now - last_edit >= PROGRESS_MIN_INTERVAL_S and now - started < TOKEN_SAFE_S:
                last_text, last_edit = text, now
                cancel = buttons_view(progress_buttons(job_id, it.locale))
                await safe(it.edit_original_response(content=text, view=cancel))
        if view is None or not view.status.terminal:
            view = await self.engine.job(job_id)
        return view



    async def deliver(self, it: discord.Interaction, spec: CommandSpec, view: JobView, *,
                      started: float, author_id: str | None = None) -> discord.Message | None:
        """Post the result where the interaction was (with the bot token past 14 minutes), or,
        where the guild holds outputs for review, to the review channel."""
        settings = await self.community.resolve(it)
        if it.guild_id is not None and settings.review_enabled and settings.review_channel:
            msg = await self.review.hold(it, spec, view, settings, started)
            await self.store.audit.append(job_audit(it, spec, view, action="job.done", verdict="held",
                                                    prompt_storage=settings.prompt_storage))
            return msg
        files, embed, buttons = await self.render(it, spec, view, author_id=author_id)
        msg = None
        if time.monotonic() - started < TOKEN_SAFE_S:
            try:
                # The deferred message becomes the result: record it before anyone can see it.
                try:
                    original = await it.original_response()
                    await self.store.jobs.set_result_message(view.id, str(original.channel.id), str(original.id))
                except discord.HTTPException:
                    pass  # the edit says whether the token still works
                msg = await it.edit_original_response(content=None, embed=embed, attachments=files, view=buttons)
            except discord.HTTPException as e:
                if e.status not in (401, 404):  # 401 50027: the interaction token has expired
                    raise
                log.info("interaction token no longer valid; delivering with the bot token",
                         extra={"job": view.id, "code": e.code})
                for f in files:
                    f.reset()
        if msg is None:
            channel = it.channel if isinstance(it.channel, discord.abc.Messageable) else None
            if channel is None:
                assert it.channel_id is not None
                fetched = await self.client.fetch_channel(it.channel_id)
                assert isinstance(fetched, discord.abc.Messageable)
                channel = fetched
            msg = await channel.send(content=it.user.mention, embed=embed, files=files, view=buttons)
        await self.store.jobs.set_result_message(view.id, str(msg.channel.id), str(msg.id))
        await self.store.audit.append(job_audit(it, spec, view, action="job.done",
                                                prompt_storage=settings.prompt_storage))
        return msg

    async def render(self, it: discord.Interaction, spec: CommandSpec, view: JobView, *,
                     author_id: str | None = None) -> tuple[list[discord.File], discord.Embed, discord.ui.View]:
        """The result message: files (labelled), embed and buttons."""
        limit = getattr(it, "filesize_limit", None) or DEFAULT_ATTACHMENT_LIMIT
        files, image_name = await self.renderer.files(view, limit, it.locale,
                                                      where=propagate_id(it.guild_id, it.channel_id, it.id))
        author = f"<@{author_id}>" if author_id else it.user.mention  # /show credits the job's author
        embed = result_embed(view, it.locale, image_name=image_name, requester_mention=author, spec=spec)
        return files, embed, result_view(view, spec)


def _artifact_record(a: Any) -> ArtifactRecord:
    return ArtifactRecord(id=a.id, index=a.index, sha256=a.sha256, url=a.url, filename=a.filename,
                          mime=a.mime, size=a.size)



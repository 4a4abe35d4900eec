"""The review queue: when a guild holds outputs for review, a finished job goes to the
moderators' channel with Approve / Reject buttons instead of the requester's channel; only
an approved output is published (with the normal result buttons).

- Buttons carry custom_id ``aigc-review:<approve|reject>:<job>`` and are answered by the
  moderation commands' ``on_interaction`` listener (``ReviewQueue.on_component``): they work
  after a restart (the review item is looked up in the store by job id).
- Reject asks for a reason in a modal (custom_id ``aigc-review-reason:<job>``), answered by an
  ``on_interaction`` listener rather than a stored Modal, so it also works after a restart.
- Only moderators (Manage Server or Manage Messages) decide; the first decision wins
  (``store.reviews.decide`` is atomic and appends the audit row in the same transaction).
- The requester is told by an ephemeral followup while their interaction token is valid
  (14 minutes), else by the mention in the published message (approved) or a DM (rejected).
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord

from bot import engine_client as ec
from bot.catalog_commands import CatalogState
from bot.community import is_moderator
from bot.i18n import t
from bot.moderation.audit_mirror import AuditMirror
from bot.rendering import result_embed
from bot.results import DEFAULT_ATTACHMENT_LIMIT, TOKEN_SAFE_S, Refused, Renderer, propagate_id, result_view
from bot.store import JobRecord, ReviewItem, Store
from engine.protocol import CommandSpec, JobView

if TYPE_CHECKING:
    from bot.scoped_settings import CommunitySettings

log = logging.getLogger("aigc.bot.moderation.review")
PATTERN = r"aigc-review:(?P<decision>approve|reject):(?P<job>[A-Za-z0-9_-]{1,40})"
REASON_PREFIX = "aigc-review-reason:"
NO_MENTIONS = discord.AllowedMentions.none()


@dataclass
class _Waiting:
    interaction: discord.Interaction
    started: float


_DECISION = re.compile(PATTERN + r"\Z")


def review_button(decision: str, job_id: str, locale: Any = "en-US") -> discord.ui.Button[Any]:
    approve = decision == "approve"
    return discord.ui.Button(
        label=t(locale, "review_approve" if approve else "review_reject"), emoji="✅" if approve else "⛔",
        style=discord.ButtonStyle.success if approve else discord.ButtonStyle.danger,
        custom_id=f"aigc-review:{decision}:{job_id}")


def review_view(job_id: str, locale: Any) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(review_button("approve", job_id, locale))
    view.add_item(review_button("reject", job_id, locale))
    return view


def modal_values(data: dict[str, Any]) -> dict[str, str]:
    """{custom_id: value} of a modal submit (action rows of text inputs, or labels)."""
    out: dict[str, str] = {}
    for top in data.get("components", []) or []:
        inner = top.get("components") or ([top["component"]] if top.get("component") else [])
        for c in inner:
            if "custom_id" in c:
                out[c["custom_id"]] = str(c.get("value") or "")
    return out


class ReviewQueue:
    def __init__(self, client: discord.Client, store: Store, engine: ec.EngineClient,
                 catalog: CatalogState, renderer: Renderer, mirror: AuditMirror):
        self.client, self.store, self.engine, self.catalog = client, store, engine, catalog
        self.renderer, self.mirror = renderer, mirror
        self._waiting: dict[str, _Waiting] = {}  # job id -> the requester's interaction

    # ---- holding ----------------------------------------------------------------------

    async def hold(self, it: discord.Interaction, spec: CommandSpec, view: JobView,
                   settings: "CommunitySettings", started: float) -> discord.Message:
        """Post the output to the review channel and tell the requester it awaits review."""
        assert it.guild_id is not None and settings.review_channel is not None
        locale = it.guild_locale or "en-US"
        limit = getattr(it, "filesize_limit", None) or DEFAULT_ATTACHMENT_LIMIT
        files, image_name = await self.renderer.files(
            view, limit, locale, where=propagate_id(it.guild_id, settings.review_channel, f"review-{it.id}"))
        embed = result_embed(view, locale, image_name=image_name, requester_mention=it.user.mention, spec=spec)
        embed.title = t(locale, "review_title", command=view.command)
        embed.add_field(name=t(locale, "review_where"), value=f"<#{it.channel_id}>")
        channel = self.client.get_partial_messageable(int(settings.review_channel), guild_id=it.guild_id)
        try:
            msg = await channel.send(
                content=t(locale, "review_post", user=it.user.mention, channel=f"<#{it.channel_id}>"),
                embed=embed, files=files, view=review_view(view.id, locale), allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as e:
            log.warning("cannot post to the review channel", extra={"guild": it.guild_id, "error": repr(e)})
            raise Refused(t(it.locale, "review_channel_unusable")) from None
        item = await self.store.reviews.create(
            job_id=view.id, guild_id=str(it.guild_id), requester_id=str(it.user.id),
            channel_id=str(it.channel_id), review_channel_id=str(channel.id))
        await self.store.reviews.set_message(item.id, str(channel.id), str(msg.id))
        self._prune()
        self._waiting[view.id] = _Waiting(it, started)
        if time.monotonic() - started < TOKEN_SAFE_S:
            try:
                await it.edit_original_response(content=t(it.locale, "awaiting_review"))
            except discord.HTTPException:
                pass
        return msg

    def _prune(self) -> None:
        now = time.monotonic()
        for job, w in list(self._waiting.items()):
            if now - w.started > TOKEN_SAFE_S:
                del self._waiting[job]

    # ---- deciding -----------------------------------------------------------------------

    async def on_component(self, it: discord.Interaction) -> bool:
        """An Approve / Reject click; True if the button was ours."""
        data: dict[str, Any] = it.data or {}  # type: ignore[assignment]
        m = _DECISION.match(str(data.get("custom_id", "")))
        if it.type is not discord.InteractionType.component or m is None:
            return False
        await self.on_button(it, m["decision"], m["job"])
        return True

    async def on_button(self, it: discord.Interaction, decision: str, job_id: str) -> None:
        if not is_moderator(it):
            await it.response.send_message(t(it.locale, "review_mods_only"), ephemeral=True)
            return
        if decision == "reject":
            form = discord.ui.Modal(title=t(it.locale, "review_reason_title")[:45],
                                    custom_id=f"{REASON_PREFIX}{job_id}")
            form.add_item(discord.ui.TextInput(label=t(it.locale, "review_reason_label")[:45], custom_id="reason",
                                               style=discord.TextStyle.paragraph, max_length=500))
            await it.response.send_modal(form)
            form.stop()  # the submit is handled by on_modal, which survives restarts
            return
        await it.response.defer(ephemeral=True, thinking=True)
        await self.decide(it, job_id, approve=True, reason=None)

    async def on_modal(self, it: discord.Interaction) -> bool:
        """The reject reason; True if the modal was ours."""
        data: dict[str, Any] = it.data or {}  # type: ignore[assignment]
        custom_id = str(data.get("custom_id", ""))
        if it.type is not discord.InteractionType.modal_submit or not custom_id.startswith(REASON_PREFIX):
            return False
        if not is_moderator(it):
            await it.response.send_message(t(it.locale, "review_mods_only"), ephemeral=True)
            return True
        await it.response.defer(ephemeral=True, thinking=True)
        reason = modal_values(data).get("reason", "").strip()[:500] or None
        await self.decide(it, custom_id[len(REASON_PREFIX):], approve=False, reason=reason)
        return True

    async def decide(self, it: discord.Interaction, job_id: str, *, approve: bool, reason: str | None) -> None:
        store = self.store
        item = await store.reviews.get_by_job(job_id)
        if item is None or (it.guild_id is not None and item.guild_id != str(it.guild_id)):
            await it.followup.send(t(it.locale, "unknown_job", job=job_id), ephemeral=True)
            return
        decision = await store.reviews.decide(item.id, approve=approve, moderator_id=str(it.user.id),
                                              reason=reason)
        assert decision is not None
        item = decision.item
        if not decision.applied:
            await it.followup.send(t(it.locale, "review_already", status=item.status.value,
                                     moderator=f"<@{item.moderator_id}>"), ephemeral=True)
            return
        await self.mirror.mirror_latest(item.guild_id, f"review.{item.status.value}")
        waiting = self._waiting.pop(job_id, None)
        locale = waiting.interaction.locale if waiting else (it.guild_locale or "en-US")
        published = None
        if approve:
            try:
                published = await self.publish(item, locale)
            except Exception as e:  # the decision stands; say what went wrong
                log.exception("publishing an approved output failed", extra={"job": job_id})
                await it.followup.send(t(it.locale, "review_publish_failed", error=type(e).__name__), ephemeral=True)
                return
            status = t(it.guild_locale or "en-US", "review_approved_by", moderator=it.user.mention,
                       link=published.jump_url)
        else:
            status = t(it.guild_locale or "en-US", "review_rejected_by", moderator=it.user.mention,
                       reason=reason or "—")
        await self._mark_review_message(item, status)
        told = await self._tell_requester(item, waiting, locale, approve=approve, reason=reason,
                                          link=published.jump_url if published else None)
        await it.followup.send(t(it.locale, "review_done_approved" if approve else "review_done_rejected",
                                 told=told), ephemeral=True)

    async def _mark_review_message(self, item: ReviewItem, status: str) -> None:
        if not (item.review_channel_id and item.review_message_id):
            return
        msg = self.client.get_partial_messageable(int(item.review_channel_id)).get_partial_message(
            int(item.review_message_id))
        try:
            await msg.edit(content=status, view=None, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as e:
            log.warning("could not mark the review message", extra={"job": item.job_id, "error": repr(e)})

    async def publish(self, item: ReviewItem, locale: Any) -> discord.Message:
        """Post an approved output where it was asked for, with the normal result buttons."""
        record = await self.store.jobs.get(item.job_id)
        if record is None or item.channel_id is None:
            raise LookupError(f"job {item.job_id} has no record any more")
        view, engine_job = await self._job_view(record)
        spec = self.catalog.get(record.command)
        files, image_name = await self.renderer.files(view, DEFAULT_ATTACHMENT_LIMIT, locale, engine_job=engine_job,
                                               where=propagate_id(item.guild_id, item.channel_id, f"approved-{record.id}"))
        mention = f"<@{item.requester_id}>"
        embed = result_embed(view, locale, image_name=image_name, requester_mention=mention, spec=spec)
        channel = self.client.get_partial_messageable(int(item.channel_id), guild_id=int(item.guild_id))
        msg = await channel.send(content=mention, embed=embed, files=files, view=result_view(view, spec),
                                 allowed_mentions=discord.AllowedMentions(users=[discord.Object(int(item.requester_id))]))
        await self.store.jobs.set_result_message(record.id, str(channel.id), str(msg.id))
        return msg

    async def _job_view(self, record: JobRecord) -> tuple[JobView, str]:
        """The job as the engine has it, or made again (same command, options and seed give
        the same outputs) when the engine forgot it: the view under the recorded id, and the
        id the engine knows it by."""
        try:
            view = await self.engine.job(record.id, engine_url=record.engine_url)
            if view.status.value == "done" and view.artifacts:
                return view, view.id
        except ec.NotFound:
            pass
        again = await self.renderer.regenerate(record)
        return again.model_copy(update={"id": record.id}), again.id

    async def _tell_requester(self, item: ReviewItem, waiting: _Waiting | None, locale: Any, *,
                              approve: bool, reason: str | None, link: str | None) -> str:
        """How the requester learned the decision: followup, mention, dm or none."""
        key = "review_you_approved" if approve else "review_you_rejected"
        text = t(locale, key, link=link or "", reason=reason or "—")
        if waiting is not None and time.monotonic() - waiting.started < TOKEN_SAFE_S:
            try:
                await waiting.interaction.followup.send(text, ephemeral=True)
                return "followup"
            except discord.HTTPException:
                pass
        if approve:
            return "mention"  # the published message mentions them
        try:
            user = self.client.get_user(int(item.requester_id)) or await self.client.fetch_user(int(item.requester_id))
            await user.send(text)
            return "dm"
        except discord.HTTPException:
            return "none"

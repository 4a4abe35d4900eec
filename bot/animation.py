"""Animation results on Discord: the Blend action (a morph between two image outputs, of one grid
or of two messages) and the GIF a "Save emoji" click saves for an animation.

A blend is a plain ``/animate`` job: its ends are named by options (the start's prompt, seed and
output; the end's prompt, ``to_seed`` and ``to_output``), so nothing but the job records is
needed, after restarts too. Only the start a member picked with the context menu waits in
memory (10 minutes) for the second pick.
"""
from __future__ import annotations

import time
from typing import Any

import discord

from bot import engine_client as ec
from bot.custom_ids import ButtonId
from bot.generation import Request
from bot.i18n import t
from bot.blending import blend_target
from bot.rendering import prompt_of
from bot.results import send_error
from bot.services import Services
from bot.store import JobRecord
from engine.protocol import CommandSpec, JobRequest, Requester, SourceRef

PICK_TTL_S = 600.0
GIF = "image/gif"


def blend_command(services: Services, command: str, options: dict[str, Any],
                  parent_action: str | None) -> CommandSpec | None:
    """The animation command's spec when this job's outputs can be blended and it is loaded."""
    target = blend_target(command, options, parent_action)
    return services.catalog.get(target) if target else None


def blend_options(start: JobRecord, start_index: int, end: JobRecord, end_index: int) -> dict[str, Any]:
    """/animate's options for a morph from output ``start_index`` of ``start`` to output
    ``end_index`` of ``end`` (its seed is ``start.seed``). The start's variety and quality apply
    to both ends (an animation has one of each)."""
    o = start.options
    return {"prompt": prompt_of(o), "to": prompt_of(end.options), "motion": "morph",
            "from_output": start_index, "to_seed": end.seed, "to_output": end_index,
            "variety": o.get("variety", 0.7), "quality": o.get("quality", "best")}


async def run_blend(services: Services, it: discord.Interaction, start: JobRecord, start_index: int,
                    end: JobRecord, end_index: int) -> None:
    """Defer (if not yet), then the morph as a generation of its own (gate, quota, delivery)."""
    spec = blend_command(services, start.command, start.options, start.parent_action)
    if spec is None:
        await send_error(it, t(it.locale, "blend_unavailable"))
        return
    if not it.response.is_done():
        await it.response.defer(thinking=True, ephemeral=await services.community.holds_for_review(it))
    # the two stills are named as sources: the animation's Content Credentials list them
    sources = (SourceRef(job=start.id, index=start_index), SourceRef(job=end.id, index=end_index))
    await services.generation.run(Request(it, spec, blend_options(start, start_index, end, end_index),
                                          seed=start.seed, sources=sources))


def outputs_of(record: JobRecord) -> int:
    """How many outputs a finished job has (a count given as an option is not in ``count``)."""
    return max(record.count, len(record.artifacts))


def _output_number(raw: str, count: int) -> int | None:
    """A 1-based output number typed in a form, as an index; None when not in 1..count."""
    try:
        n = int(raw.strip())
    except ValueError:
        return None
    return n - 1 if 1 <= n <= count else None


class OutputsForm(discord.ui.Modal):
    """Asks which outputs to blend: ``fields`` are (custom_id, label, default) text inputs."""

    def __init__(self, title: str, custom_id: str, fields: list[tuple[str, str, str]], on_submit: Any):
        super().__init__(title=title[:45], custom_id=custom_id[:100], timeout=600)
        self._on_submit = on_submit
        self.inputs = {}
        for cid, label, default in fields:
            self.inputs[cid] = discord.ui.TextInput(label=label[:45], custom_id=cid, default=default,
                                                    max_length=2, required=True)
            self.add_item(self.inputs[cid])

    async def on_submit(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        await self._on_submit(interaction, {k: v.value for k, v in self.inputs.items()})


async def blend_clicked(services: Services, it: discord.Interaction, record: JobRecord) -> None:
    """The Blend button of a grid: a form asks for the two outputs, then the morph runs."""
    n = outputs_of(record)
    if blend_command(services, record.command, record.options, record.parent_action) is None or n < 2:
        await it.response.send_message(t(it.locale, "blend_unavailable"), ephemeral=True)
        return

    async def submitted(form_it: discord.Interaction, values: dict[str, str]) -> None:
        a, b = (_output_number(values[k], n) for k in ("start", "end"))
        for field, got in (("start", a), ("end", b)):
            if got is None:
                await send_error(form_it, t(form_it.locale, "blend_bad_output", field=field, count=n))
                return
        await run_blend(services, form_it, record, a, record, b)  # type: ignore[arg-type]

    await it.response.send_modal(OutputsForm(
        t(it.locale, "blend"), f"aigc-form:{ButtonId('blend', record.id).encode()}",
        [("start", t(it.locale, "blend_start", count=n), "1"), ("end", t(it.locale, "blend_end", count=n), "2")],
        submitted))


class BlendMenu:
    """The "Blend" message context menu: the first result a member picks is the start, the
    second the end (for a grid, a form asks which output)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.picks: dict[tuple[int | None, int], tuple[str, int, float]] = {}  # (guild, user) -> (job, index, at)

    async def blend(self, it: discord.Interaction, message: discord.Message) -> None:
        s = self.services
        record = await s.store.jobs.get_by_result_message(str(message.id))
        if record is None:
            await it.response.send_message(t(it.locale, "not_a_result"), ephemeral=True)
            return
        if blend_command(s, record.command, record.options, record.parent_action) is None:
            await it.response.send_message(t(it.locale, "blend_unavailable"), ephemeral=True)
            return
        n = outputs_of(record)
        if n == 1:
            await self.picked(it, record, 0)
            return

        async def submitted(form_it: discord.Interaction, values: dict[str, str]) -> None:
            index = _output_number(values["output"], n)
            if index is None:
                await send_error(form_it, t(form_it.locale, "blend_bad_output", field="output", count=n))
                return
            await self.picked(form_it, record, index)

        await it.response.send_modal(OutputsForm(
            t(it.locale, "blend"), f"aigc-form:blend-pick:{record.id}",
            [("output", t(it.locale, "blend_which", count=n), "1")], submitted))

    async def picked(self, it: discord.Interaction, record: JobRecord, index: int) -> None:
        now = time.monotonic()
        self.picks = {k: v for k, v in self.picks.items() if now - v[2] < PICK_TTL_S}
        key = (it.guild_id, it.user.id)
        first = self.picks.pop(key, None)
        start = await self.services.store.jobs.get(first[0]) if first else None
        if start is None:
            self.picks[key] = (record.id, index, now)
            await it.response.send_message(t(it.locale, "blend_picked", index=index + 1,
                                             prompt=prompt_of(record.options)[:100]), ephemeral=True)
            return
        await run_blend(self.services, it, start, first[1], record, index)  # type: ignore[index]


async def emoji_gif(services: Services, record: JobRecord, index: int) -> bytes:
    """Output ``index`` of an animation job as a GIF (what a server emoji takes): the job made
    again with ``format: gif``, which gives the same frames (a job is a function of its command,
    options and seed), sized by the plugin to fit an emoji."""
    req = JobRequest(command=record.command, options={**record.options, "format": "gif"}, seed=record.seed,
                     count=record.count, idempotency_key=f"emoji-gif:{record.id}",
                     requester=Requester(platform="discord", guild=record.guild_id, channel=record.channel_id,
                                         user=record.user_id, escalation="front"))
    submitted = await services.engine.submit(req)
    view = await services.engine.wait(submitted.id, timeout_s=300)
    if view.status.value != "done":
        raise ec.JobFailed(view)
    art = next(a for a in view.artifacts if a.index == index)
    if art.mime != GIF:
        raise ec.JobFailed(view)
    return await services.engine.artifact(art.id, job_id=view.id)


def needs_gif(spec: CommandSpec | None, mime: str) -> bool:
    """Whether a "Save emoji" of this output re-makes it as a GIF: an animation in another format
    (WebP, MP4) of a command that can make GIFs (a ``format`` option with a ``gif`` choice)."""
    if spec is None or mime in ("image/png", GIF):
        return False
    fmt = next((o for o in spec.options if o.name == "format"), None)
    return fmt is not None and any(c.value == "gif" for c in fmt.choices or [])

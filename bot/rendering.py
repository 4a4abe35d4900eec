"""What result messages look like: progress lines, the result embed, the buttons' rows."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import discord

from bot.custom_ids import ButtonId
from bot.i18n import t
from bot.inline_text import text_body
from engine.protocol import ActionSpec, CommandSpec, JobView

EMBED_COLOUR = 0x5865F2


def progress_text(view: JobView, locale: Any) -> str:
    if view.status.value == "queued":
        return t(locale, "queued", position=view.position) if view.position else t(locale, "queued_nopos")
    done = round(view.progress * view.count)
    return t(locale, "running", done=done, count=view.count)


def prompt_of(options: dict[str, Any], default: str = "") -> str:
    """The first text option: what the user asked for, in a line or a name."""
    return next((v for v in options.values() if isinstance(v, str) and v), default)


def describe(spec: CommandSpec | None, options: dict[str, Any], action: str | None, index: int,
             action_options: dict[str, Any], locale: Any) -> str | None:
    """What a follow-up is ("Morph: cat face → red heart", "Variations of output 2 of …");
    None for a plain generation."""
    if not action or action == "generate":
        return None
    prompt = prompt_of(options, spec.name if spec else "?")[:100]
    if action == "reroll":
        return t(locale, "what_reroll", prompt=prompt)
    if action == "variations":
        return t(locale, "what_variation", index=index + 1, prompt=prompt)
    declared = next((a for a in spec.actions if a.name == action), None) if spec else None
    label = declared.label if declared else action.title()
    target = prompt_of(action_options)[:100]
    if target:
        return t(locale, "what_action", label=label, prompt=prompt, target=target)
    return t(locale, "what_action_plain", label=label, index=index + 1, prompt=prompt)


def _prompt_line(options: dict[str, Any]) -> str:
    shown = [f"**{k}**: {v}" for k, v in options.items() if isinstance(v, (str, int, float, bool))]
    return " · ".join(shown)[:1000]


def result_embed(view: JobView, locale: Any, *, image_name: str | None, requester_mention: str | None,
                 spec: CommandSpec | None = None) -> discord.Embed:
    seconds = (view.timings.total_ms or 0) / 1000
    parent = view.parent
    what = describe(spec, view.options, parent.action if parent else None, parent.index if parent else 0,
                    view.action_options, locale)
    lines = [line for line in (what, _prompt_line(view.options)) if line]
    embed = discord.Embed(title=f"/{view.command}", colour=EMBED_COLOUR, description="\n".join(lines) or None)
    embed.add_field(name="seed", value=str(view.seed))
    embed.add_field(name="model", value=view.model.get("name", view.plugin))
    embed.add_field(name=t(locale, "ai_label"), value=t(locale, "done", seconds=seconds))
    if requester_mention:
        embed.add_field(name="by", value=requester_mention)
    if image_name:
        embed.set_image(url=f"attachment://{image_name}")
    body = text_body(view)
    if body:
        embed.description = ((embed.description or "") + "\n\n" + body)[:4000]
    embed.set_footer(text=t(locale, "footer", model=view.model.get("name", view.plugin), seed=view.seed))
    return embed


@dataclass(frozen=True)
class ButtonSpec:
    label: str
    emoji: str | None
    id: ButtonId
    row: int
    style: discord.ButtonStyle = discord.ButtonStyle.primary


def progress_buttons(job_id: str, locale: Any) -> list[ButtonSpec]:
    """Under a queued or running job's progress line: Cancel (its author or a moderator)."""
    return [ButtonSpec(t(locale, "cancel"), "✖️", ButtonId("cancel", job_id), 0, discord.ButtonStyle.secondary)]


def result_buttons(view: JobView, spec: CommandSpec | None, *, savable: bool = False) -> list[ButtonSpec]:
    """🎲 reroll, plugin actions, ℹ️ details, 🗑 delete on the first row; then the per-output
    actions (🔀 variations, morph, 💾 save as emoji when ``savable``): for one output they
    share one row, for several each gets a row of numbered buttons (like Midjourney's U1-U4
    and V1-V4). Fits Discord's 5 rows × 5 buttons."""
    actions: list[ActionSpec] = list(spec.actions) if spec else []
    out = [ButtonSpec(a.label, a.emoji, ButtonId(a.name, view.id), 0)
           for a in actions if not a.per_output][:3]
    out.append(ButtonSpec("Details", "ℹ️", ButtonId("details", view.id), 0, discord.ButtonStyle.secondary))
    out.append(ButtonSpec("Delete", "🗑️", ButtonId("delete", view.id), 0, discord.ButtonStyle.danger))
    # (label alone, label numbered, emoji, action, style)
    per_output = [(a.label, a.label, a.emoji, a.name, discord.ButtonStyle.primary) for a in actions if a.per_output]
    if savable:
        per_output.append(("Save emoji", "Emoji", "💾", "emoji", discord.ButtonStyle.secondary))
    if view.count == 1:
        out += [ButtonSpec(label[:80], emoji, ButtonId(name, view.id, 0), 1, style)
                for label, _, emoji, name, style in per_output[:5]]
        return out
    if view.count > 5:  # more outputs than a row holds: bot.output_picker's selects carry these
        return out
    for row, (_, label, emoji, name, style) in enumerate(per_output[:4], start=1):
        out += [ButtonSpec(f"{label} {i + 1}"[:80], emoji, ButtonId(name, view.id, i), row, style)
                for i in range(min(view.count, 5))]
    return out

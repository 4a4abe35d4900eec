"""Per-output actions for results with more outputs than a row of buttons holds (5): one select
menu per action listing every output ("More like…: 3. Mara Whitlock"). Its custom_id is the
action's ButtonId without an index; the chosen value is the output's index."""
from __future__ import annotations

from typing import Any

import discord

from bot.custom_ids import ButtonId
from engine.protocol import CommandSpec, JobView

BUTTONS_PER_ROW = 5
MAX_OPTIONS = 25  # Discord's cap on a select's options


def needs_picker(view: JobView) -> bool:
    return view.count > BUTTONS_PER_ROW


def _label(index: int, text: str | None) -> str:
    return f"{index + 1}. {text}"[:100] if text else f"#{index + 1}"


def output_selects(view: JobView, spec: CommandSpec | None) -> list[discord.ui.Select[Any]]:
    """A select per per-output action (at most 4: row 0 holds the buttons)."""
    if spec is None or not needs_picker(view):
        return []
    texts = {a.index: a.text for a in view.artifacts}
    options = [discord.SelectOption(label=_label(i, texts.get(i)), value=str(i))
               for i in range(min(view.count, MAX_OPTIONS))]
    actions = [a for a in spec.actions if a.per_output][:4]
    return [discord.ui.Select(custom_id=ButtonId(a.name, view.id).encode(), placeholder=f"{a.label}…"[:150],
                              options=options, row=row, min_values=1, max_values=1)
            for row, a in enumerate(actions, start=1)]


def picked(bid: ButtonId, data: dict[str, Any]) -> ButtonId:
    """A select's choice as the action's ButtonId with the output's index (a button's id as is)."""
    values = data.get("values") or []
    if bid.index is not None or not values:
        return bid
    try:
        index = int(values[0])
    except (TypeError, ValueError):
        return bid
    return ButtonId(bid.action, bid.job, index) if 0 <= index < MAX_OPTIONS else bid

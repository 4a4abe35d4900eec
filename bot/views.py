"""Buttons and forms under results. A button's custom_id carries (action, job, index), so a
click works after a restart without any in-memory view."""
from __future__ import annotations

from typing import Any

import discord

from bot.custom_ids import ButtonId
from bot.rendering import ButtonSpec
from engine.protocol import ActionSpec


def action_button(spec: ButtonSpec) -> discord.ui.Button[Any]:
    """A result button. Its custom_id carries (action, job, index); a click is answered by
    whoever listens for that custom_id (bot.generation_commands), so it works after a restart
    without any in-memory view."""
    return discord.ui.Button(label=spec.label, emoji=spec.emoji, style=spec.style, custom_id=spec.id.encode(),
                             row=spec.row)


def buttons_view(specs: list[ButtonSpec]) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for s in specs:
        view.add_item(action_button(s))
    return view


class ActionForm(discord.ui.Modal):
    """Asks for an action's options (e.g. morph's target prompt) before it runs."""

    def __init__(self, action: ActionSpec, bid: ButtonId, on_submit: Any):
        super().__init__(title=action.label[:45], custom_id=f"aigc-form:{bid.encode()}"[:100], timeout=600)
        self.action = action
        self._on_submit = on_submit
        self.inputs: dict[str, discord.ui.TextInput] = {}
        for opt in action.options[:5]:
            field = discord.ui.TextInput(label=opt.description[:45] or opt.name, custom_id=opt.name,
                                         required=opt.required,
                                         max_length=min(opt.max_length or 4000, 4000),
                                         min_length=opt.min_length)
            self.inputs[opt.name] = field
            self.add_item(field)

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for opt in self.action.options[:5]:
            raw = self.inputs[opt.name].value
            if raw == "" and not opt.required:
                continue
            out[opt.name] = _typed(opt.type.value, raw)
        return out

    async def on_submit(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        await self._on_submit(interaction, self.values())


def _typed(kind: str, raw: str) -> Any:
    """Modal inputs are text; the engine validates the converted value and names the field."""
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw)
    except ValueError:
        return raw
    if kind == "boolean":
        return raw.strip().lower() in ("1", "true", "yes", "on")
    return raw

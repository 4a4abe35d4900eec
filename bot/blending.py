"""Which results can be blended (a morph between two of their outputs) and the Blend button
under them. No Discord calls here: bot.results draws the button, bot.animation runs the blend."""
from __future__ import annotations

from typing import Any

from bot.custom_ids import ButtonId
from bot.rendering import ButtonSpec
from engine.protocol import JobView

# Which image command's outputs the animation command morphs between: plugins/animate walks the
# emoji GAN's latent space, so its ends are /emoji (GAN) stills named by (prompt, seed, output).
BLEND_SOURCES = {"emoji": "animate"}


def blend_target(command: str, options: dict[str, Any], parent_action: str | None) -> str | None:
    """The command that blends outputs of this job: for a plain generation (or reroll) of a
    blendable command, drawn by the GAN (the animation walks the GAN's space); else None."""
    target = BLEND_SOURCES.get(command)
    if target is None or parent_action not in (None, "generate", "reroll") or options.get("model", "gan") != "gan":
        return None
    return target


def blend_buttons(view: JobView) -> list[ButtonSpec]:
    """🌈 Blend under a grid whose outputs can be morphed into one another (row 0, beside Reroll)."""
    parent = view.parent.action if view.parent else None
    if view.count < 2 or blend_target(view.command, view.options, parent) is None:
        return []
    return [ButtonSpec("Blend", "🌈", ButtonId("blend", view.id), 0)]  # labels are English, like Details

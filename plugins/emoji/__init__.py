"""Built-in plugin: `/emoji prompt:<text> count:<1-4> seed:<n> variety:<0-1> quality:<best|draft>`.

Draws 64x64 RGBA emoji with a conditional DCGAN trained on Noto Color Emoji (see
MODEL_CARD.md); `model:vae` uses the conditional VAE instead; `quality:draft` (the default
since #21's session 17: for the current generator the critic's pick cut within-prompt
diversity and bought nothing measurable) is one forward pass, `quality:best` lets the GAN's
critic choose each output among 8 drafts. Follow-ups: reroll,
variations (a neighbourhood of the output's latent) and morph (same latent, prompt
embedding moved towards another prompt).
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from engine import sdk
from plugins.emoji.generator import DEFAULT_QUALITY, EmojiGenerator

HERE = Path(__file__).resolve().parent


@lru_cache(maxsize=1)
def _captions() -> tuple[str, ...]:
    path = HERE / "captions.json"
    return tuple(json.loads(path.read_text())) if path.exists() else ()


def emoji_names(partial: str, options: dict[str, Any]) -> list[str]:
    """Known captions containing what was typed so far (Discord shows at most 25)."""
    needle = partial.strip().lower()
    starts = [c for c in _captions() if c.startswith(needle)]
    inside = [c for c in _captions() if needle in c and not c.startswith(needle)]
    return (starts + inside)[:25]


MORPH = sdk.Action(
    name="morph", label="Morph", emoji="🌀", per_output=True,
    label_localizations={"zh-CN": "渐变"},
    options=[sdk.Option(
        name="to", type="string", required=True, max_length=200,
        description="The prompt to morph towards",
        name_localizations={"zh-CN": "目标"},
        description_localizations={"zh-CN": "渐变到的目标提示词"})],
)

EMOJI = sdk.Command(
    name="emoji",
    description="Draw an emoji from a text prompt",
    name_localizations={"zh-CN": "表情"},
    description_localizations={"zh-CN": "根据文字提示画一个表情符号"},
    modality="image",
    generator="emoji",
    max_count=4,
    actions=[sdk.REROLL, sdk.VARIATIONS, MORPH],
    options=[
        sdk.Option(name="prompt", type="string", required=True, max_length=200,
                   autocomplete="emoji_names",
                   description="What to draw, e.g. 'grinning face' or 'red heart'",
                   name_localizations={"zh-CN": "提示词"},
                   description_localizations={"zh-CN": "要画什么，例如 grinning face 或 red heart"}),
        sdk.count_option(4, "emoji"),
        sdk.seed_option("emoji"),
        sdk.variety_option(),
        sdk.Option(name="model", type="string", default="gan",
                   choices=[sdk.Choice(name="GAN (sharp)", value="gan",
                                       name_localizations={"zh-CN": "GAN（清晰）"}),
                            sdk.Choice(name="VAE (smooth)", value="vae",
                                       name_localizations={"zh-CN": "VAE（平滑）"})],
                   description="Which model draws",
                   name_localizations={"zh-CN": "模型"},
                   description_localizations={"zh-CN": "使用哪个模型"}),
        sdk.Option(name="quality", type="string", default=DEFAULT_QUALITY,
                   choices=[sdk.Choice(name="Best (critic picks among 8)", value="best",
                                       name_localizations={"zh-CN": "最佳（评审从 8 个中挑选）"}),
                            sdk.Choice(name="Draft (fastest)", value="draft",
                                       name_localizations={"zh-CN": "草稿（最快）"})],
                   description="Best: the GAN's critic picks the best of 8 drafts",
                   name_localizations={"zh-CN": "质量"},
                   description_localizations={"zh-CN": "最佳：GAN 的评审从 8 个草稿中挑出最好的"}),
    ],
)

plugin = sdk.Plugin(
    name="emoji",
    version="0.1.0",
    description="64x64 emoji from text prompts (conditional DCGAN + VAE, trained on Noto Color Emoji)",
    commands=[EMOJI],
    generators=[EmojiGenerator()],
    autocomplete={"emoji_names": emoji_names},
)

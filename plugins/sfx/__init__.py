"""Built-in plugin: `/sfx kind:<coin|laser|...|digit-seven> count:<1-4> seed:<n> variety:<0-1> format:<ogg|wav>`.

About one second of 16 kHz game-style sound effect, or a spoken digit, from a class-conditional
SpecGAN trained on the procedural synthesiser's sounds (synth.py) and, where the served weights
have them, on espeak-ng's spoken digits (MODEL_CARD.md has the data, the training and the
figures), as Ogg Opus that Discord plays inline (or WAV), labelled as AI-generated in its comment
header and, unless the guild turned marks off, with a short audible cue first (encode.py).
Follow-ups: reroll and variations (a neighbourhood of the output's latent).

Tools: `aigc data sfx DIR`, `aigc data digits DIR`, `aigc train sfx ...`, `aigc train sfx-judge ...`,
`aigc eval --plugin sfx --dataset sfx|digits ...`.
"""
from __future__ import annotations

import json

from engine import sdk
from plugins.sfx.encode import FORMATS, encode_sound
from plugins.sfx.generator import HERE, SfxGenerator

KINDS = {  # value: (English, zh-CN); the command offers the served model's classes, in its order
    "coin": ("Coin / pickup", "金币 / 拾取"),
    "laser": ("Laser / shoot", "激光 / 射击"),
    "explosion": ("Explosion", "爆炸"),
    "jump": ("Jump", "跳跃"),
    "hit": ("Hit / hurt", "击中 / 受伤"),
    "blip": ("Blip / select", "提示音 / 选择"),
    "powerup": ("Power-up", "能量提升"),
    "siren": ("Siren", "警笛"),
    "whoosh": ("Whoosh", "呼啸"),
    "alarm": ("Alarm", "警报"),
    **{f"digit-{en}": (f"Spoken digit: {en} ({i})", f"语音数字：{zh}（{i}）") for i, (en, zh) in enumerate(
        zip(("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"), "零一二三四五六七八九"))},
}


def model_kinds() -> list[str]:
    """The served generator's classes (gan.json), which the `kind` choices offer."""
    classes = json.loads((HERE / "gan.json").read_text())["classes"]
    unknown = [c for c in classes if c not in KINDS]
    if unknown:
        raise ValueError(f"plugins/sfx/gan.json: classes {unknown} have no name in KINDS")
    return classes


SFX_AUDIO = sdk.Modality("sfx", "audio/ogg", "ogg", sdk.Presentation.audio, encode_sound,
                         "About 1 s of sound effect (Ogg Opus, played inline, or WAV)",
                         formats=dict(FORMATS), format_option="format")

SFX = sdk.Command(
    name="sfx",
    description="Make a game-style sound effect or a spoken digit",
    name_localizations={"zh-CN": "音效"},
    description_localizations={"zh-CN": "生成一个游戏风格的音效或语音数字"},
    modality="sfx",
    generator="sfx",
    max_count=4,
    actions=[sdk.REROLL, sdk.VARIATIONS],
    options=[
        sdk.Option(name="kind", type="string", required=True,
                   choices=[sdk.Choice(name=KINDS[value][0], value=value,
                                       name_localizations={"zh-CN": KINDS[value][1]})
                            for value in model_kinds()],
                   description="What kind of sound (a sound effect or a spoken digit)",
                   name_localizations={"zh-CN": "类型"},
                   description_localizations={"zh-CN": "哪种声音（音效或语音数字）"}),
        sdk.count_option(4, "sounds"),
        sdk.seed_option("sound"),
        sdk.variety_option(),
        sdk.Option(name="format", type="string", default="ogg",
                   choices=[sdk.Choice(name="Ogg Opus (plays in Discord)", value="ogg",
                                       name_localizations={"zh-CN": "Ogg Opus（可在 Discord 中播放）"}),
                            sdk.Choice(name="WAV (for editors and game engines)", value="wav",
                                       name_localizations={"zh-CN": "WAV（用于编辑器和游戏引擎）"})],
                   description="File format",
                   name_localizations={"zh-CN": "格式"},
                   description_localizations={"zh-CN": "文件格式"}),
    ],
)

plugin = sdk.Plugin(
    name="sfx",
    version="0.2.0",
    description="1 s game sound effects and spoken digits (class-conditional SpecGAN + Griffin-Lim, trained on a "
                "procedural synthesiser and espeak-ng)",
    commands=[SFX],
    generators=[SfxGenerator()],
    modalities=[SFX_AUDIO],
    tools=[
        sdk.Tool("data", "sfx", "plugins.sfx.data_sfx_tool", "render the synthesiser's sound-effect classes"),
        sdk.Tool("data", "digits", "plugins.sfx.data_digits_tool", "spoken digits from espeak-ng (SC09 analogue)"),
        sdk.Tool("train", "sfx", "plugins.sfx.train_tool", "train the class-conditional SpecGAN on an audio set"),
        sdk.Tool("train", "sfx-judge", "plugins.sfx.judge_tool", "train the classifier `aigc eval --plugin sfx` uses"),
        sdk.Tool("eval", "sfx", "plugins.sfx.eval_tool", "IS / FD / accuracy / diversity / novelty of /sfx"),
    ],
)

"""Built-in plugin: `/animate prompt:<text> [to:<text>] [motion:loop|morph|bounce|spin|pulse]
[frames] [fps] [seed] [format:webp|gif|mp4]` animates the emoji plugin's GAN.

morph: a walk through the GAN's latent space from one still to another (slerp in z, the prompt
condition interpolated, eased), one frame per step; the first and last frames are /emoji's
stills for the same prompts, seeds and outputs. loop: a closed walk on a small circle through
one still's latent, so the last frame flows into the first. bounce/spin/pulse: the still with a
looping motion, for reactions. Output: animated WebP (default), GIF (always within a server
emoji's 256 KiB) or MP4 (H.264), 128 x 128, labelled like every artifact.

The bot's Blend action (two outputs of an image result, or of two messages) is an /animate
morph with `from_output`, `to_seed` and `to_output`: the ends of any blend are named by options,
so it needs no engine-side state.
"""
from __future__ import annotations

from engine import sdk
from plugins.animate.encode import FORMATS, encode_clip
from plugins.animate.generator import AnimateGenerator, motion_of
from plugins.emoji.latents import DEFAULT_QUALITY, emoji_names

ANIMATION = sdk.Modality(
    name="animation", mime="image/webp", extension="webp", presentation=sdk.Presentation.animation,
    encode=encode_clip, description="A short looping animation (WebP, GIF or MP4)",
    formats={k: v for k, v in FORMATS.items()}, format_option="format")


def _zh(name: str, description: str) -> dict[str, dict[str, str]]:
    return {"name_localizations": {"zh-CN": name}, "description_localizations": {"zh-CN": description}}


def _choice(name: str, value: str, zh: str) -> sdk.Choice:
    return sdk.Choice(name=name, value=value, name_localizations={"zh-CN": zh})


def check_options(options: dict) -> None:
    """A morph's options only with a morph: a target given to another motion would be ignored."""
    motion = motion_of(options)
    if motion == "morph":
        return
    for name in ("to", "to_seed", "to_output"):
        if options.get(name) not in (None, ""):
            raise sdk.OptionError(name, f"is only used with motion morph (motion is {motion})")


ANIMATE = sdk.Command(
    name="animate",
    description="Animate an emoji: morph between prompts, loop, bounce, spin or pulse",
    name_localizations={"zh-CN": "动画"},
    description_localizations={"zh-CN": "让表情动起来：在提示词之间渐变、循环、弹跳、旋转或跳动"},
    modality="animation",
    generator="animate",
    max_count=1,
    actions=[sdk.REROLL],
    check=check_options,
    options=[
        sdk.Option(name="prompt", type="string", required=True, max_length=200, autocomplete="emoji_names",
                   description="What to draw, e.g. 'red heart'",
                   **_zh("提示词", "要画什么，例如 red heart")),
        sdk.Option(name="to", type="string", max_length=200, autocomplete="emoji_names",
                   description="Morph towards this prompt (implies motion morph)",
                   **_zh("目标", "渐变到这个提示词（默认动作为渐变）")),
        sdk.Option(name="motion", type="string",
                   choices=[_choice("Loop (a closed walk)", "loop", "循环（闭合漫步）"),
                            _choice("Morph (prompt to target)", "morph", "渐变（提示词到目标）"),
                            _choice("Bounce", "bounce", "弹跳"),
                            _choice("Spin", "spin", "旋转"),
                            _choice("Pulse", "pulse", "跳动")],
                   description="How it moves (default: morph with a target, else loop)",
                   **_zh("动作", "如何运动（默认：有目标时渐变，否则循环）")),
        sdk.Option(name="frames", type="integer", min_value=8, max_value=48, default=24,
                   description="Frames (8-48)", **_zh("帧数", "帧数（8-48）")),
        sdk.Option(name="fps", type="integer", min_value=4, max_value=30, default=12,
                   description="Frames per second (4-30)", **_zh("帧率", "每秒帧数（4-30）")),
        sdk.seed_option("animation", zh="随机种子；相同种子得到相同动画"),
        sdk.Option(name="format", type="string", default="webp",
                   choices=[_choice("WebP (animated)", "webp", "WebP（动图）"),
                            _choice("GIF (fits a server emoji)", "gif", "GIF（可作服务器表情）"),
                            _choice("MP4 (H.264 video)", "mp4", "MP4（H.264 视频）")],
                   description="File format", **_zh("格式", "文件格式")),
        sdk.variety_option(description="0 = safest, most typical; 1 = most varied (as in /emoji)", zh="0 最稳妥典型，1 最多样（同 /emoji）"),
        sdk.Option(name="quality", type="string", default=DEFAULT_QUALITY,
                   choices=[_choice("Best (the critic picks among 8)", "best", "最佳（评审从 8 个中挑选）"),
                            _choice("Draft (as /emoji's default)", "draft", "草稿（同 /emoji 默认）")],
                   description="Which /emoji quality the stills match", **_zh("质量", "与哪种 /emoji 质量的图一致")),
        sdk.Option(name="from_output", type="integer", min_value=0, max_value=3, default=0,
                   description="Start from this output (0-3) of /emoji with this prompt and seed",
                   **_zh("起始输出", "从同提示词同种子的 /emoji 第几个输出开始（0-3）")),
        sdk.Option(name="to_seed", type="integer", min_value=0, max_value=sdk.SEED_MAX,
                   description="Seed of the morph's end (default: the same seed)",
                   **_zh("目标种子", "渐变终点的种子（默认相同）")),
        sdk.Option(name="to_output", type="integer", min_value=0, max_value=3,
                   description="End at this output (0-3) of /emoji with the target and its seed",
                   **_zh("目标输出", "在目标的 /emoji 第几个输出结束（0-3）")),
    ],
)


plugin = sdk.Plugin(
    name="animate",
    version="0.1.0",
    description="Animations of the emoji GAN: latent morphs and loops, reaction motions (WebP, GIF, MP4)",
    commands=[ANIMATE],
    generators=[AnimateGenerator()],
    modalities=[ANIMATION],
    autocomplete={"emoji_names": emoji_names},
    tools=[sdk.Tool("eval", "animate", "plugins.animate.eval_tool",
                    "temporal smoothness, loop closure, endpoint fidelity, sizes, time per frame")],
)

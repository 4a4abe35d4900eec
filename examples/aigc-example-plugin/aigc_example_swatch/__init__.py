"""Colour swatches: five colours drawn around a mood's hue, as a labelled SVG file."""
from __future__ import annotations

import colorsys
from html import escape

from engine import sdk

MOODS = {"calm": 0.55, "warm": 0.05, "fresh": 0.3, "royal": 0.75}


def encode_svg(output: sdk.Output, ctx: sdk.EncodeContext) -> bytes:
    colours: list[str] = output.data
    rects = "".join(f'<rect x="{i * 40}" y="0" width="40" height="40" fill="{c}"/>'
                    for i, c in enumerate(colours))
    meta = "".join(f'<aigc:{k} xmlns:aigc="urn:aigc">{escape(v)}</aigc:{k}>' for k, v in ctx.meta.items())
    mark = '<text x="2" y="38" font-size="8" fill="#fff">AI</text>' if ctx.visible_mark else ""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40">'
            f"<title>AI-generated colour swatch</title><metadata>{meta}</metadata>"
            f"{rects}{mark}</svg>").encode()


class Swatches(sdk.Generator):
    name = "swatch"
    max_batch_size = 64

    def generate(self, items: list[sdk.Item]) -> list[sdk.Output]:
        out = []
        for item in items:
            base = MOODS[item.options["mood"]]
            jitter = item.noise((5, 3)).tanh() * 0.08
            colours = []
            for j in range(5):
                h = (base + float(jitter[j, 0])) % 1.0
                r, g, b = colorsys.hls_to_rgb(h, 0.35 + 0.1 * j, 0.6 + float(jitter[j, 2]))
                colours.append("#%02x%02x%02x" % (round(r * 255), round(g * 255), round(b * 255)))
            out.append(sdk.Output(data=colours, text=" ".join(colours)))
        return out


plugin = sdk.Plugin(
    name="swatch",
    version="0.1.0",
    description="Colour swatches for a mood (example third-party plugin)",
    modalities=[sdk.Modality("swatch", "image/svg+xml", "svg", sdk.Presentation.file, encode_svg,
                             "A five-colour palette as SVG")],
    generators=[Swatches()],
    tools=[sdk.Tool("data", "swatch-moods", "aigc_example_swatch.data_tool", "the moods and their hues"),
           sdk.Tool("eval", "swatch", "aigc_example_swatch.eval_tool", "hue error of generated swatches")],
    commands=[sdk.Command(
        name="swatch", description="Five colours for a mood", modality="swatch", generator="swatch",
        max_count=4, name_localizations={"zh-CN": "色板"},
        description_localizations={"zh-CN": "按心情生成五种颜色"},
        options=[
            sdk.Option(name="mood", type="string", required=True, description="The mood",
                       choices=[sdk.Choice(name=m.title(), value=m) for m in MOODS],
                       name_localizations={"zh-CN": "心情"}),
            sdk.Option(name="count", type="integer", min_value=1, max_value=4, default=1,
                       job_field="count", description="How many swatches"),
            sdk.Option(name="seed", type="integer", min_value=0, max_value=sdk.SEED_MAX,
                       job_field="seed", description="Seed"),
        ])],
)

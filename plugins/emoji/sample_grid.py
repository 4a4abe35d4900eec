"""The model card's sample grids, through the served path (what users get).

    python -m plugins.emoji.sample_grid --model gan --out plugins/emoji/samples_gan.png
    python -m plugins.emoji.sample_grid --model gan --quality best --out plugins/emoji/samples_gan_best.png

Rows: the ten category prompts, then four specific prompts; columns: seeds 0-7 (what eight
rerolls show); variety and quality: the command's defaults unless given; composited on
white, the prompt written at the left.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

from engine import sdk

CATEGORIES = ["face", "person", "hand", "animal", "food", "flag", "vehicle", "weather", "symbol", "object"]
SPECIFIC = ["grinning face", "red heart", "dog face", "flag fr"]
LABEL_W, TILE, PAD = 150, 64, 2


def sample_grid(generator: sdk.Generator, model: str, prompts: list[str], seeds: range, variety: float = 0.7,
                quality: str = "best") -> Image.Image:
    cols = len(seeds)
    grid = Image.new("RGB", (LABEL_W + cols * (TILE + PAD) + PAD, len(prompts) * (TILE + PAD) + PAD), "white")
    draw = ImageDraw.Draw(grid)
    for r, prompt in enumerate(prompts):
        items = [sdk.Item(command="emoji", options={"prompt": prompt, "variety": variety, "model": model,
                                                   "quality": quality},
                          seed=s, index=0) for s in seeds]
        y = PAD + r * (TILE + PAD)
        draw.text((8, y + TILE // 2 - 6), prompt, fill="black")
        for c, out in enumerate(generator.generate(items)):
            tile = Image.new("RGBA", (TILE, TILE), "white")
            tile.alpha_composite(out.data.convert("RGBA").resize((TILE, TILE)))
            grid.paste(tile.convert("RGB"), (LABEL_W + PAD + c * (TILE + PAD), y))
    return grid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=("gan", "vae"), default="gan")
    ap.add_argument("--weights", default=None, help="folder with the model files (default: the plugin's)")
    ap.add_argument("--quality", choices=("best", "draft"), default=None, help="default: the command's")
    ap.add_argument("--variety", type=float, default=None, help="default: the command's")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    from plugins.emoji import EMOJI
    from plugins.emoji.generator import HERE, EmojiGenerator

    served = {o.name: o.default for o in EMOJI.options}

    gen = EmojiGenerator(Path(args.weights) if args.weights else HERE)
    gen.load("cpu")
    variety = served["variety"] if args.variety is None else args.variety
    quality = served["quality"] if args.quality is None else args.quality
    sample_grid(gen, args.model, CATEGORIES + SPECIFIC, range(8), variety, quality).save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

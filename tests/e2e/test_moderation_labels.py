"""AI-content labels in what the bot posts: the visible mark follows the guild's
``ai_mark_visible`` setting (pixels compared), the machine-readable labels (XMP with the AIGC
object and IPTC DigitalSourceType) are always there."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from engine.labels import mark_box, read_labels


def image_of(world, msg: dict, name: str) -> tuple[bytes, np.ndarray]:
    att = next(a for a in msg["attachments"] if a["filename"] == name)
    data = world.emu.world.files[int(att["id"])].data
    return data, np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


async def test_turning_the_visible_mark_off_removes_it_but_keeps_the_metadata(world):
    marked_msg = await world.result(await world.slash("emoji", {"prompt": "cat face", "seed": 21}))
    await world.bot.scoped.set("ai_mark_visible", False, guild_id=str(world.guild))
    plain_msg = await world.result(await world.slash("emoji", {"prompt": "cat face", "seed": 21}))
    marked_png, marked = image_of(world, marked_msg, "emoji-21.png")
    plain_png, plain = image_of(world, plain_msg, "emoji-21.png")
    assert marked.shape == plain.shape == (256, 256, 3)  # the 64 px output, shown 4x
    x0, y0, x1, y1 = (4 * v for v in mark_box((64, 64))[:4])
    corner = np.zeros(marked.shape[:2], bool)
    corner[y0:y1, x0:x1] = True
    # Same job description, same pixels, except where the mark is drawn.
    assert np.array_equal(marked[~corner], plain[~corner])
    assert np.abs(marked[corner] - plain[corner]).sum() > 0
    for png in (marked_png, plain_png):
        labels = read_labels(png)
        assert labels["format"] == "png" and labels["ai_generated"] is True
        assert labels["aigc"]["Label"] == "1" and labels["digital_source_type"].endswith("trainedAlgorithmicMedia")
        assert any("xmp" in s.lower() for s in labels["sources"])
    assert read_labels(plain_png)["provenance"]["job"] != read_labels(marked_png)["provenance"]["job"]
    # The messages carrying them say AI-generated too.
    for msg in (marked_msg, plain_msg):
        assert "AI-generated" in msg["embeds"][0]["footer"]["text"]
        assert all(a.get("description") == "AI-generated" for a in msg["attachments"])

"""Output i of (command, options, seed) is the same alone or inside any batch (CPU: same
uint8 pixels), for the built-in emoji generator, directly and through the engine."""
from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
from PIL import Image

from engine import sdk


@pytest.fixture(scope="module")
def emoji_generator():
    import torch
    from plugins.emoji import plugin

    gen = plugin.generators[0]
    gen.load("cpu")
    torch.set_num_threads(2)
    return gen


def item(seed: int, index: int = 0, prompt: str = "red heart", **kw) -> sdk.Item:
    options = {"prompt": prompt, "variety": 0.7, "model": "gan", **kw.pop("options", {})}
    return sdk.Item(command="emoji", options=options, seed=seed, index=index, **kw)


def px(out: sdk.Output) -> np.ndarray:
    return np.asarray(out.data)


@pytest.mark.parametrize("batch", [3, 32])
def test_alone_equals_in_batch(emoji_generator, batch):
    import torch

    items = [item(seed=100 + k, index=k % 4, prompt=["red heart", "cat face", "sun"][k % 3])
             for k in range(batch)]
    with torch.inference_mode():
        together = emoji_generator.generate(items)
        for k in (0, batch // 2, batch - 1):
            alone = emoji_generator.generate([items[k]])[0]
            assert np.array_equal(px(alone), px(together[k])), k


def test_variations_and_vae_are_deterministic_too(emoji_generator):
    import torch

    items = [item(5, 0, action="variations", source=(9, 1)),
             item(5, 1, options={"model": "vae"}),
             item(5, 2, action="morph", source=(9, 0), action_options={"to": "sun"})]
    with torch.inference_mode():
        batch = emoji_generator.generate(items * 2)
        for k, it in enumerate(items):
            assert np.array_equal(px(emoji_generator.generate([it])[0]), px(batch[k]))


async def test_engine_output_is_the_same_alone_and_under_load(emoji_engine):
    h = emoji_engine
    req = {"command": "emoji", "options": {"prompt": "grinning face"}, "seed": 1234, "count": 2}
    alone = await h.wait_done((await h.submit(req))["id"])
    crowd = [{"command": "emoji", "options": {"prompt": f"thing {i}"}, "seed": i, "count": 4,
              "requester": {"user": f"u{i}"}} for i in range(8)]
    accs = await asyncio.gather(*(h.submit(b) for b in crowd), h.submit(req))
    again = await h.wait_done(accs[-1]["id"])

    async def pixels(art):
        r = await h.client.get(art["url"], headers=h.headers)
        return np.asarray(Image.open(io.BytesIO(await r.read())))

    for i in range(2):
        assert np.array_equal(await pixels(alone["artifacts"][i]), await pixels(again["artifacts"][i]))
    assert not np.array_equal(await pixels(alone["artifacts"][0]), await pixels(alone["artifacts"][1]))

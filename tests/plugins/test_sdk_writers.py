"""The label-aware writers reach plugins through engine.sdk: a plugin importing only
engine.sdk defines an animation (GIF) and an audio (WAV) modality, and what the engine serves
for them carries the AI-generated labels."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from engine import labels, sdk
from engine.labels import DIGITAL_SOURCE_TYPE, read_labels

OURS = {"engine", "plugins", "bot", "aigc", "aigc_common", "tests"}


def test_the_media_plugin_imports_only_engine_sdk():
    tree = ast.parse(Path(__file__).with_name("sdk_media_plugin.py").read_text())
    ours = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            ours |= {a.name for a in node.names if a.name.split(".")[0] in OURS}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in OURS:
            ours |= {f"{node.module}.{a.name}" for a in node.names}
    assert ours == {"engine.sdk"}


@pytest.mark.parametrize("name", ["encode_png", "encode_gif", "encode_webp", "encode_mp4", "encode_wav",
                                  "encode_ogg", "label_text"])
def test_sdk_writers_are_the_label_writers(name):
    assert name in sdk.__all__
    assert getattr(sdk, name).__doc__ and getattr(sdk, name).__annotations__
    assert getattr(sdk, name).__name__ == getattr(labels, name).__name__


async def test_plugin_gif_and_wav_modalities_carry_the_labels(engine_factory):
    from tests.plugins.sdk_media_plugin import plugin

    h = await engine_factory(extra_plugins=[plugin], builtin_plugins=False)
    for command, fmt, mime, presentation in (("loop", "gif", "image/gif", "animation"),
                                             ("chirp", "wav", "audio/wav", "audio")):
        done = await h.wait_done((await h.submit({"command": command, "options": {}, "seed": 5}))["id"])
        assert done["status"] == "done", done
        (art,) = done["artifacts"]
        assert art["mime"] == mime and art["presentation"] == presentation
        data = await (await h.client.get(art["url"], headers=h.headers)).read()
        got = read_labels(data)
        assert got["format"] == fmt and got["ai_generated"], got
        assert got["aigc"]["Label"] == "1" and got["digital_source_type"] == DIGITAL_SOURCE_TYPE
        assert got["provenance"]["job"] == done["id"] and got["provenance"]["command"] == command
        assert "xmp" in got["sources"] and got["malformed"] == []
        if fmt == "wav":
            assert "AI-generated" in got["info"]["ICMT"]

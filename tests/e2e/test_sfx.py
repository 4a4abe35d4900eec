"""/sfx end to end: the real bot on the emulator, the real engine with the sfx plugin: the
command synced from the catalog, the Opus files attached (Discord plays them inline), the
spectrogram/waveform preview in the embed, labelled and in the ledger, and the follow-ups."""
from __future__ import annotations

import io

import pytest
import soundfile
from PIL import Image

from engine.labels import read_labels

pytestmark = pytest.mark.engine_plugins("sfx")


async def test_sfx_posts_playable_labelled_audio_with_a_preview(world):
    cmds = {c["name"]: c for c in world.emu.commands(world.guild)}
    sfx = cmds["sfx"]
    assert sfx["name_localizations"]["zh-CN"] == "音效"
    kind = {o["name"]: o for o in sfx["options"]}["kind"]
    assert kind["required"] and {"coin", "laser", "explosion"} <= {c["value"] for c in kind["choices"]}

    rec = await world.slash("sfx", {"kind": "coin", "count": 2, "seed": 3})
    await world.emu.wait_ack(rec)
    msg = await world.result(rec, timeout=60)
    (embed,) = msg["embeds"]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["seed"] == "3" and fields["model"] == "sfx-specgan"
    names = [a["filename"] for a in msg["attachments"]]
    assert names == ["sfx-3.png", "sfx-3-0.ogg", "sfx-3-1.ogg"]
    assert embed["image"]["url"].endswith("sfx-3.png")
    files = [world.emu.world.files[int(a["id"])].data for a in msg["attachments"]]
    ids = [c["custom_id"] for row in msg["components"] for c in row["components"]]
    job = ids[0].split(":")[2]
    for ogg in files[1:]:
        audio, rate = soundfile.read(io.BytesIO(ogg))
        assert rate == 16000 and len(audio) > 16000 and soundfile.info(io.BytesIO(ogg)).subtype == "OPUS"
        labels = read_labels(ogg)
        assert labels["ai_generated"] and labels["provenance"]["job"] == job
    preview = Image.open(io.BytesIO(files[0]))
    assert preview.size[0] == 512 and preview.size[1] > 2 * 150  # one strip per output
    labels = read_labels(files[0])
    assert labels["aigc"]["PropagateID"] == f"discord:{world.guild}/{world.channel}/{rec.id}"
    report = await world.bot.engine.verify(files[0])
    assert report.finding == "recorded" and f"display copy of outputs 0-1 of job {job}" in report.summary
    assert f"aigc:reroll:{job}" in ids and f"aigc:variations:{job}:0" in ids and f"aigc:details:{job}" in ids
    assert not any(i.startswith(f"aigc:emoji:{job}") for i in ids)  # "save as emoji" is for images

    # a follow-up: variations of output 1 come back as audio again
    click = await world.emu.click(int(msg["id"]), f"aigc:variations:{job}:1", world.alice)
    follow = await world.result(click, timeout=60)
    assert [a["filename"].endswith((".png", ".ogg")) for a in follow["attachments"]] == [True] * len(follow["attachments"])
    assert any(a["filename"].endswith(".ogg") for a in follow["attachments"])


async def test_sfx_speaks_a_digit_chosen_from_the_kind_menu(world):
    cmds = {c["name"]: c for c in world.emu.commands(world.guild)}
    kind = {o["name"]: o for o in cmds["sfx"]["options"]}["kind"]
    choices = {c["value"]: c for c in kind["choices"]}
    assert len(choices) <= 25  # Discord's limit for one option's choices
    assert choices["digit-seven"]["name"] == "Spoken digit: seven (7)"
    assert choices["digit-seven"]["name_localizations"]["zh-CN"] == "语音数字：七（7）"
    rec = await world.slash("sfx", {"kind": "digit-seven", "seed": 5})
    await world.emu.wait_ack(rec)
    msg = await world.result(rec, timeout=60)
    ogg = [a for a in msg["attachments"] if a["filename"].endswith(".ogg")]
    assert [a["filename"] for a in ogg] == ["sfx-5-0.ogg"]
    audio, rate = soundfile.read(io.BytesIO(world.emu.world.files[int(ogg[0]["id"])].data))
    assert rate == 16000 and len(audio) > 16000
    assert read_labels(world.emu.world.files[int(ogg[0]["id"])].data)["ai_generated"]

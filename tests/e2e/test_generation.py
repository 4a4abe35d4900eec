"""One generation end to end: slash command → defer → progress → result with buttons."""
from __future__ import annotations

import io

from PIL import Image


async def test_commands_are_synced_from_the_catalog(world):
    cmds = {c["name"]: c for c in world.emu.commands(world.guild)}
    assert {"emoji", "show", "jobs", "aigc", "Make variations"} <= set(cmds)
    emoji = cmds["emoji"]
    assert emoji["name_localizations"]["zh-CN"] == "表情"
    opts = {o["name"]: o for o in emoji["options"]}
    assert opts["prompt"]["required"] and opts["prompt"]["autocomplete"] is True
    assert (opts["count"]["min_value"], opts["count"]["max_value"]) == (1, 4)
    assert opts["variety"]["type"] == 10 and opts["variety"]["max_value"] == 1
    assert cmds["show"]["description_localizations"]["zh-CN"] == "再次发布之前的任务"


async def test_emoji_command_posts_labelled_images_with_buttons(world):
    rec = await world.slash("emoji", {"prompt": "red heart", "count": 2, "seed": 42})
    await world.emu.wait_ack(rec)
    assert rec.ack_ms is not None and rec.ack_ms < 3000
    msg = await world.result(rec)
    (embed,) = msg["embeds"]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["seed"] == "42" and fields["model"] == "emoji-dcgan"
    assert "AI-generated" in embed["footer"]["text"]
    # One picture per result (the outputs side by side, 4x), not the grid and each output again.
    names = [a["filename"] for a in msg["attachments"]]
    assert names == ["emoji-42.png"]
    assert embed["image"]["url"].endswith("emoji-42.png")
    ids = [c["custom_id"] for row in msg["components"] for c in row["components"]]
    job = ids[0].split(":")[2]
    assert f"aigc:reroll:{job}" in ids and f"aigc:variations:{job}:1" in ids
    assert f"aigc:details:{job}" in ids and f"aigc:delete:{job}" in ids and f"aigc:morph:{job}:0" in ids
    async def recorded():  # the record is updated right after the message is edited
        r = await world.bot.store.jobs.get(job)
        return r if r.result_message_id else None
    record = await world.eventually(recorded)
    assert record.status == "done" and record.seed == 42 and record.result_message_id == str(msg["id"])
    assert [a.index for a in record.artifacts] == [0, 1]
    png = world.emu.world.files[int(msg["attachments"][0]["id"])].data
    assert Image.open(io.BytesIO(png)).size == (2 * 256 + 3 * 4, 256 + 2 * 4)
    from engine.labels import read_labels
    labels = read_labels(png)
    assert labels["ai_generated"] is True and labels["provenance"]["job"] == job
    # The posted file names who posted it (GB 45438), and the engine's ledger knows it.
    assert labels["aigc"]["ContentPropagator"] == "Discord via AIGC Bot"
    assert labels["aigc"]["PropagateID"] == f"discord:{world.guild}/{world.channel}/{rec.id}"
    report = await world.bot.engine.verify(png)
    assert report.finding == "recorded" and f"display copy of outputs 0-1 of job {job}" in report.summary


async def test_a_single_result_has_compact_button_rows(world):
    msg = await world.result(await world.slash("emoji", {"prompt": "cat face", "seed": 5}))
    rows = [[c["custom_id"].split(":")[1] for c in row["components"]] for row in msg["components"]]
    # Job-wide buttons, then the output's own actions side by side (not one row each).
    assert rows == [["reroll", "details", "delete"], ["variations", "morph", "emoji"]]
    (picture,) = msg["attachments"]
    png = world.emu.world.files[int(picture["id"])].data
    assert Image.open(io.BytesIO(png)).size == (256, 256)  # the 64 px output shown 4x

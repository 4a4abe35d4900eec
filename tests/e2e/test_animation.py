"""/animate, the Blend action (a grid's button and the two-message context menu) and "Save emoji"
of an animation, through the emulator with the real bot and a real engine running both plugins."""
from __future__ import annotations

import io

from PIL import Image

from engine.labels import read_labels
from engine.provenance.credentials import read_credentials


def ids(msg: dict) -> list[str]:
    return [c["custom_id"] for row in msg["components"] for c in row["components"]]


def job_of(msg: dict) -> str:
    return ids(msg)[0].split(":")[2]


def file_of(world, attachment: dict) -> bytes:
    return world.emu.world.files[int(attachment["id"])].data


async def with_animate(world) -> None:
    await world.engine.stop()
    world.engine.settings["plugins_enabled"] = ["emoji", "animate"]
    await world.engine.start()
    rec = await world.slash("aigc reload", user=world.mod)
    await world.emu.wait_messages(rec, 1)


async def test_animate_posts_a_labelled_animation_shown_inline(world):
    await with_animate(world)
    (cmd,) = [c for c in world.emu.commands(world.guild) if c["name"] == "animate"]
    assert cmd["name_localizations"]["zh-CN"] == "动画"
    msg = await world.result(await world.slash("animate", {"prompt": "red heart", "to": "cat face", "frames": 8,
                                                           "seed": 7}))
    (att,) = msg["attachments"]
    assert att["filename"].endswith(".webp") and msg["embeds"][0]["image"]["url"] == f"attachment://{att['filename']}"
    data = file_of(world, att)
    assert Image.open(io.BytesIO(data)).n_frames == 8
    got = read_labels(data)
    assert got["ai_generated"] and got["provenance"]["command"] == "animate"
    assert "aigc:blend:" not in " ".join(ids(msg))  # an animation is not blended again
    video = await world.result(await world.slash("animate", {"prompt": "red heart", "motion": "spin", "frames": 8,
                                                             "format": "mp4", "seed": 7}))
    (att,) = video["attachments"]
    assert att["filename"].endswith(".mp4") and "image" not in video["embeds"][0]  # a video plays on its own
    got = read_labels(file_of(world, att))
    assert got["format"] == "mp4" and got["ai_generated"]
    rec = await world.slash("animate", {"prompt": "red heart", "to": "fire", "motion": "spin"})
    assert "`to` is only used with motion morph" in await world.error(rec)


async def test_blend_button_morphs_two_outputs_of_a_grid(world):
    await with_animate(world)
    grid = await world.result(await world.slash("emoji", {"prompt": "cat face", "seed": 7, "count": 2}))
    job = job_of(grid)
    assert f"aigc:blend:{job}" in ids(grid)
    opener = await world.emu.click(int(grid["id"]), f"aigc:blend:{job}", world.alice)
    await world.emu.wait_ack(opener)
    assert opener.modal is not None
    rec = await world.emu.submit_modal(opener, {"start": "3", "end": "1"})
    assert "`start` must be an output number from 1 to 2" in await world.error(rec)
    opener = await world.emu.click(int(grid["id"]), f"aigc:blend:{job}", world.alice)
    await world.emu.wait_ack(opener)
    blended = await world.result(await world.emu.submit_modal(opener, {"start": "2", "end": "1"}))
    record = await world.bot.store.jobs.get(job_of(blended))
    assert record.command == "animate" and record.seed == 7
    o = record.options
    assert (o["prompt"], o["to"], o["motion"], o["from_output"], o["to_seed"], o["to_output"]) == \
        ("cat face", "cat face", "morph", 1, 7, 0)
    # its Content Credentials name the two stills it morphs between
    cred = read_credentials(file_of(world, blended["attachments"][0]))
    assert sorted((i["title"], i["relationship"]) for i in cred["ingredients"]) == [
        (f"output 0 of job {job}", "inputTo"), (f"output 1 of job {job}", "inputTo")]


async def test_blend_context_menu_morphs_between_two_messages(world):
    await with_animate(world)
    a = await world.result(await world.slash("emoji", {"prompt": "red heart", "seed": 3}))
    b = await world.result(await world.slash("emoji", {"prompt": "fire", "seed": 9}))
    rec = await world.emu.message_command(world.guild, world.channel, world.alice, "Blend", int(a["id"]))
    assert "Start picked: output 1 of “red heart”" in await world.error(rec)
    rec = await world.emu.message_command(world.guild, world.channel, world.alice, "Blend", int(b["id"]))
    blended = await world.result(rec)
    record = await world.bot.store.jobs.get(job_of(blended))
    o = record.options
    assert record.command == "animate" and record.seed == 3
    assert (o["prompt"], o["to"], o["to_seed"], o["from_output"], o["to_output"]) == ("red heart", "fire", 9, 0, 0)
    cred = read_credentials(file_of(world, blended["attachments"][0]))
    assert sorted(i["title"] for i in cred["ingredients"]) == sorted([f"output 0 of job {job_of(a)}",
                                                                      f"output 0 of job {job_of(b)}"])
    # a still made by the VAE is not in the GAN's latent space: no blend
    vae = await world.result(await world.slash("emoji", {"prompt": "fire", "seed": 1, "model": "vae"}))
    rec = await world.emu.message_command(world.guild, world.channel, world.alice, "Blend", int(vae["id"]))
    assert "Only emoji drawn by the GAN" in await world.error(rec)


async def test_save_an_animation_as_an_animated_emoji(world):
    await with_animate(world)
    msg = await world.result(await world.slash("animate", {"prompt": "red heart", "motion": "bounce", "frames": 8,
                                                           "seed": 2}))
    job = job_of(msg)
    assert f"aigc:emoji:{job}:0" in ids(msg)
    rec = await world.emu.click(int(msg["id"]), f"aigc:emoji:{job}:0", world.alice)
    assert "server managers" in await world.error(rec)  # the same checks as the still "Save emoji"
    rec = await world.emu.click(int(msg["id"]), f"aigc:emoji:{job}:0", world.mod)
    assert "Saved as :red_heart_1:" in await world.error(rec, timeout=60)
    (emoji,) = world.emu.world.guilds[world.guild].emojis.values()
    assert emoji.animated and emoji.name == "red_heart_1"

"""Buttons, the context menu, /show, /jobs and autocomplete, through the emulator."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image


def ids(msg: dict) -> list[str]:
    return [c["custom_id"] for row in msg["components"] for c in row["components"]]


def job_of(msg: dict) -> str:
    return ids(msg)[0].split(":")[2]


def pixels(world, attachment: dict) -> np.ndarray:
    data = world.emu.world.files[int(attachment["id"])].data
    return np.asarray(Image.open(io.BytesIO(data)))


async def make(world, **options) -> dict:
    rec = await world.slash("emoji", {"prompt": "cat face", "seed": 7, **options})
    return await world.result(rec)


async def test_autocomplete_is_forwarded_to_the_engine(world):
    rec = await world.emu.autocomplete(world.guild, world.channel, world.alice, "emoji",
                                       {"prompt": "cat"}, focused="prompt")
    await world.emu.wait_ack(rec)
    choices = rec.choices
    assert 0 < len(choices) <= 25 and all("cat" in c["value"] for c in choices)


async def test_reroll_and_variations_buttons(world):
    msg = await make(world, count=2)
    job = job_of(msg)
    rec = await world.emu.click(int(msg["id"]), f"aigc:reroll:{job}", world.alice)
    rerolled = await world.result(rec)
    f = {x["name"]: x["value"] for x in rerolled["embeds"][0]["fields"]}
    assert f["seed"] != "7" and len(rerolled["attachments"]) == 1  # one picture of both
    rec = await world.emu.click(int(msg["id"]), f"aigc:variations:{job}:1", world.mod)
    varied = await world.result(rec)
    (picture,) = varied["attachments"]
    assert pixels(world, picture).shape[:2] == (2 * 256 + 3 * 4,) * 2  # four variations, 2x2
    child = await world.bot.store.jobs.get(job_of(varied))
    assert (child.parent_job_id, child.parent_action, child.parent_index) == (job, "variations", 1)


async def test_details_is_ephemeral_and_delete_checks_who(world):
    msg = await make(world)
    job = job_of(msg)
    rec = await world.emu.click(int(msg["id"]), f"aigc:details:{job}", world.mod)
    (reply,) = await world.emu.wait_messages(rec, 1)
    assert reply["flags"] & 64 and job in reply["embeds"][0]["title"]
    # Someone else (no moderator rights) may not delete it.
    other = world.emu.create_user("eve")
    world.emu.add_member(world.guild, other.id)
    rec = await world.emu.click(int(msg["id"]), f"aigc:delete:{job}", other.id)
    assert "Only the requester" in (await world.error(rec))
    assert not world.emu.message(int(msg["id"])).deleted
    rec = await world.emu.click(int(msg["id"]), f"aigc:delete:{job}", world.alice)
    await world.emu.wait_for(lambda: world.emu.message(int(msg["id"])).deleted, 10)
    assert "job.deleted" in await world.audit_actions("job.deleted")


async def test_morph_asks_for_its_option_in_a_form(world):
    msg = await make(world)
    job = job_of(msg)
    opener = await world.emu.click(int(msg["id"]), f"aigc:morph:{job}:0", world.alice)
    await world.emu.wait_ack(opener)
    assert opener.modal is not None
    rec = await world.emu.submit_modal(opener, {"to": "sun"})
    morphed = await world.result(rec)
    record = await world.bot.store.jobs.get(job_of(morphed))
    assert record.parent_action == "morph" and record.parent_job_id == job


async def test_save_as_server_emoji_checks_permissions(world):
    msg = await make(world)
    job = job_of(msg)
    rec = await world.emu.click(int(msg["id"]), f"aigc:emoji:{job}:0", world.alice)
    assert "server managers" in (await world.error(rec))
    rec = await world.emu.click(int(msg["id"]), f"aigc:emoji:{job}:0", world.mod)
    assert "Saved as :cat_face_1:" in (await world.error(rec))
    guild = world.emu.world.guilds[world.guild]
    assert [e.name for e in guild.emojis.values()] == ["cat_face_1"]


async def test_context_menu_makes_variations_of_a_result(world):
    msg = await make(world)
    rec = await world.emu.message_command(world.guild, world.channel, world.alice, "Make variations", int(msg["id"]))
    varied = await world.result(rec)
    child = await world.bot.store.jobs.get(job_of(varied))
    assert child.parent_job_id == job_of(msg) and child.parent_action == "variations"
    rec = await world.emu.message_command(world.guild, world.channel, world.alice, "Make variations",
                                          int(varied["id"]) if False else int((await world.final(rec))[0]["id"]))
    await world.final(rec)


async def test_show_reposts_the_same_pixels_and_jobs_lists(world):
    msg = await make(world, count=1)
    job = job_of(msg)
    rec = await world.slash("show", {"job_id": job})
    again = await world.result(rec)
    assert np.array_equal(pixels(world, msg["attachments"][0]), pixels(world, again["attachments"][0]))
    rec = await world.slash("jobs")
    (listing,) = await world.emu.wait_messages(rec, 1)
    assert listing["flags"] & 64 and job in listing["embeds"][0]["description"]
    rec = await world.slash("show", {"job_id": "nope"})
    assert "nope" in (await world.error(rec))


async def test_follow_ups_say_what_they_are_and_keep_their_options(world):
    msg = await make(world, count=2)
    job = job_of(msg)
    opener = await world.emu.click(int(msg["id"]), f"aigc:morph:{job}:1", world.alice)
    await world.emu.wait_ack(opener)
    morphed = await world.result(await world.emu.submit_modal(opener, {"to": "red heart"}))
    assert morphed["embeds"][0]["description"].startswith("Morph: cat face → red heart")
    morph_job = job_of(morphed)
    record = await world.bot.store.jobs.get(morph_job)
    assert record.options["prompt"] == "cat face" and record.action_options == {"to": "red heart"}
    # The file says so too: its label carries the target, not only the source prompt.
    from engine.labels import read_labels
    png = world.emu.world.files[int(morphed["attachments"][0]["id"])].data
    provenance = read_labels(png)["provenance"]
    assert provenance["action"] == "morph" and "red heart" in provenance["action_options"]
    # Details shows the full options and the target; the emoji is named after what it is.
    rec = await world.emu.click(int(morphed["id"]), f"aigc:details:{morph_job}", world.alice)
    (details,) = await world.emu.wait_messages(rec, 1)
    embed = details["embeds"][0]
    assert embed["description"] == "Morph: cat face → red heart"
    assert "cat face" in next(f["value"] for f in embed["fields"] if f["name"] == "options")
    rec = await world.emu.click(int(morphed["id"]), f"aigc:emoji:{morph_job}:0", world.mod)
    assert "Saved as :cat_face_to_red_heart_1:" in (await world.error(rec))
    # Reroll and variations say what they are; /jobs lists each with its prompt.
    rerolled = await world.result(await world.emu.click(int(msg["id"]), f"aigc:reroll:{job}", world.alice))
    assert rerolled["embeds"][0]["description"].startswith("🎲 Reroll of “cat face”")
    varied = await world.result(await world.emu.click(int(msg["id"]), f"aigc:variations:{job}:1", world.alice))
    assert varied["embeds"][0]["description"].startswith("🔀 Variations of output 2 of “cat face”")
    (listing,) = await world.emu.wait_messages(await world.slash("jobs"), 1)
    text = listing["embeds"][0]["description"]
    assert "Morph: cat face → red heart" in text and "Reroll of “cat face”" in text
    assert "Variations of output 2 of “cat face”" in text


async def test_show_credits_the_jobs_author_not_the_caller(world):
    msg = await make(world)
    job = job_of(msg)
    rec = await world.slash("show", {"job_id": job}, user=world.mod)
    again = await world.result(rec)
    by = {f["name"]: f["value"] for f in again["embeds"][0]["fields"]}["by"]
    assert by == f"<@{world.alice}>"


async def test_cancel_a_running_job_refunds_the_quota(world):
    import threading

    await world.bot.scoped.set("daily_quota", 5, guild_id=str(world.guild))
    scheduler = world.engine.engine.scheduler
    real, gate = scheduler.execute, threading.Event()

    def held(g, batch, busy=False):  # the generator is busy with this job until the test says
        gate.wait(30)
        return real(g, batch, busy)

    scheduler.execute = held
    try:
        rec = await world.slash("emoji", {"prompt": "cat face", "seed": 3})

        def progress_with_cancel():
            for m in world.emu.record(rec).message_ids():
                msg = world.emu.world.messages.get(m)
                if msg is None:
                    continue
                payload = world.emu.world.message_payload(msg)
                ids = [c["custom_id"] for row in payload["components"] for c in row["components"]]
                if any(i.startswith("aigc:cancel:") for i in ids):
                    return payload, ids
            return None

        msg, ids = await world.emu.wait_for(progress_with_cancel, 20)
        cancel_id = next(i for i in ids if i.startswith("aigc:cancel:"))
        # Not someone else's to cancel.
        other = world.emu.create_user("eve")
        world.emu.add_member(world.guild, other.id)
        denied = await world.emu.click(int(msg["id"]), cancel_id, other.id)
        assert "Only the requester" in (await world.error(denied))
        await world.emu.click(int(msg["id"]), cancel_id, world.alice)
        assert "Cancelled" in (await world.error(rec))
    finally:
        gate.set()
        scheduler.execute = real
    job = cancel_id.split(":")[2]
    record = await world.eventually(lambda: _status(world, job, "cancelled"))
    assert record.status == "cancelled"
    assert "job.cancelled" in await world.audit_actions("job.cancelled")
    assert "job.refused" not in await world.audit_actions()
    rec = await world.slash("quota")
    (reply,) = await world.emu.wait_messages(rec, 1)
    assert "5 of 5" in str(reply)  # nothing was charged


async def _status(world, job: str, status: str):
    record = await world.bot.store.jobs.get(job)
    return record if record is not None and record.status == status else None

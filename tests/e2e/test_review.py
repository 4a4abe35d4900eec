"""The review queue end to end: held outputs go to the moderators' channel with Approve /
Reject (reason) buttons that survive restarts; only approved outputs are published; the
decision is audited and the requester told."""
from __future__ import annotations

from tests.e2e.test_moderation import mod, reply


def review_channel(world) -> int:
    return world.emu.world.guilds[world.guild].channel_ids[1]


def ids(msg: dict) -> list[str]:
    return [c["custom_id"] for row in msg["components"] for c in row["components"]]


def interaction_messages(world, rec) -> list[dict]:
    emu = world.emu
    return [emu.world.message_payload(emu.world.messages[m]) for m in emu.record(rec).message_ids()
            if m in emu.world.messages]


def public_results(world) -> list[dict]:
    return [m for m in world.emu.messages(world.channel) if m["embeds"] and not m["flags"] & 64]


async def held(world, prompt: str, seed: int) -> tuple[object, dict, str]:
    """Ask for a generation in a guild that holds outputs; the requester's interaction, the
    review post and the job id."""
    rec = await world.slash("emoji", {"prompt": prompt, "seed": seed})
    await world.emu.wait_ack(rec)
    assert rec.ack_ms < 3000
    waiting = await world.emu.wait_for(lambda: next((m for m in interaction_messages(world, rec)
                                                     if "awaiting review" in m["content"]), None), 15)
    assert waiting["flags"] & 64  # the deferral was ephemeral
    post = await world.emu.wait_for_message(
        review_channel(world), lambda m: any(f"aigc-review:approve:" in i for i in ids(m)) and
        f"seed {seed}" in m["embeds"][0]["footer"]["text"], 15)
    job = ids(post)[0].split(":")[2]
    return rec, post, job


async def test_held_output_is_published_only_when_a_moderator_approves(world):
    assert "held for review" in await mod(world, "mod review on", {"channel": review_channel(world)})
    hello = world.emu.messages(review_channel(world))[0]
    assert "held here for review" in hello["content"] and f"<@{world.mod}>" in hello["content"]
    rec, post, job = await held(world, "cat face", 5)
    (embed,) = post["embeds"]
    assert "AI-generated" in embed["title"] and "AI-generated" in embed["footer"]["text"]
    assert post["attachments"] and f"<@{world.alice}>" in post["content"]
    assert ids(post) == [f"aigc-review:approve:{job}", f"aigc-review:reject:{job}"]
    assert public_results(world) == []  # nothing published yet
    # A member without Manage Server / Manage Messages cannot decide.
    out = await reply(world, await world.emu.click(int(post["id"]), f"aigc-review:approve:{job}", world.alice))
    assert "Only moderators" in out
    assert (await world.bot.store.reviews.get_by_job(job)).status.value == "pending"
    out = await reply(world, await world.emu.click(int(post["id"]), f"aigc-review:approve:{job}", world.mod))
    assert "Approved and published (requester told by followup)" in out
    (published,) = public_results(world)
    assert "AI-generated" in published["embeds"][0]["footer"]["text"]
    assert f"aigc:reroll:{job}" in ids(published) and f"aigc:details:{job}" in ids(published)
    assert len(published["attachments"]) == len(post["attachments"])
    told = await world.emu.wait_messages(rec, 2)
    assert any("approved and published" in m["content"] and m["flags"] & 64 for m in told)
    marked = world.emu.message(int(post["id"]))
    assert "Approved by" in marked.content and not marked.components
    record = await world.bot.store.jobs.get(job)
    assert record.result_message_id == published["id"]
    (decision,) = await world.bot.store.audit.query(guild_id=str(world.guild), action="review.approved")
    assert (decision.actor_id, decision.subject_id, decision.job_id) == (str(world.mod), str(world.alice), job)
    held_row = await world.bot.store.audit.query(guild_id=str(world.guild), action="job.done", job_id=job)
    assert held_row[0].verdict == "held" and held_row[0].output_hash and len(held_row[0].model_hash) == 64
    assert held_row[0].prompt == "cat face" and held_row[0].command == "emoji"
    # The published result's buttons work like any result's.
    out = await reply(world, await world.emu.click(int(published["id"]), f"aigc:details:{job}", world.alice))
    assert job in out


async def test_rejected_output_is_never_published_and_the_reason_reaches_the_requester(world):
    await mod(world, "mod review on", {"channel": review_channel(world)})
    rec, post, job = await held(world, "red heart", 6)
    opener = await world.emu.click(int(post["id"]), f"aigc-review:reject:{job}", world.mod)
    await world.emu.wait_ack(opener)
    assert opener.modal is not None
    out = await reply(world, await world.emu.submit_modal(opener, {"reason": "off-topic here"}))
    assert "Rejected (requester told by followup)" in out
    told = await world.emu.wait_messages(rec, 2)
    assert any("off-topic here" in m["content"] and m["flags"] & 64 for m in told)
    assert public_results(world) == []
    marked = world.emu.message(int(post["id"]))
    assert "Rejected by" in marked.content and "off-topic here" in marked.content and not marked.components
    (decision,) = await world.bot.store.audit.query(guild_id=str(world.guild), action="review.rejected")
    assert decision.reason == "off-topic here" and decision.actor_id == str(world.mod)
    # Review off: results are published directly again, publicly deferred; the rejected
    # output cannot be brought back with /show.
    assert "published directly" in await mod(world, "mod review off")
    await world.result(await world.slash("emoji", {"prompt": "sun", "seed": 8}))
    assert "was not approved" in await world.error(await world.slash("show", {"job_id": job}))
    assert len(public_results(world)) == 1


async def test_review_buttons_and_reason_form_survive_a_restart(world):
    await mod(world, "mod review on", {"channel": review_channel(world)})
    _, post1, job1 = await held(world, "cat face", 11)
    _, post2, job2 = await held(world, "red heart", 12)
    await world.stop_bot()
    await world.start_bot()
    out = await reply(world, await world.emu.click(int(post1["id"]), f"aigc-review:approve:{job1}", world.mod))
    assert "requester told by mention" in out  # the old interaction is gone; the post mentions them
    (published,) = public_results(world)
    assert f"<@{world.alice}>" in published["content"] and f"aigc:reroll:{job1}" in ids(published)
    opener = await world.emu.click(int(post2["id"]), f"aigc-review:reject:{job2}", world.mod)
    await world.emu.wait_ack(opener)
    out = await reply(world, await world.emu.submit_modal(opener, {"reason": "too dark"}))
    assert "requester told by dm" in out
    dm = world.emu.world.dm_channels[world.alice]
    assert any("too dark" in m["content"] for m in world.emu.messages(dm))
    assert len(public_results(world)) == 1


async def test_review_on_needs_a_channel(world):
    assert "Give the review channel" in await mod(world, "mod review on")
    assert not await world.bot.scoped.get("review_enabled", _ctx(world))


def _ctx(world):
    from bot.scoped_settings import SettingsContext

    return SettingsContext(guild_id=str(world.guild))


"""Privacy through the emulator: /privacy, /forget-me (confirmed), a guild's data purged when
the bot leaves it, retention, and /verify against the engine's provenance ledger."""
from __future__ import annotations

import io
from datetime import timedelta

from PIL import Image

from bot.scoped_settings import SettingsContext
from emulator import file
from tests.e2e.test_moderation import mod, reply


def attachment_bytes(world, attachment: dict) -> bytes:
    return world.emu.world.files[int(attachment["id"])].data


async def test_privacy_explains_storage_retention_and_the_tradeoff(world):
    await world.bot.scoped.set("retention_days", 30, guild_id=str(world.guild))
    await world.bot.scoped.set("prompt_storage", "hash", guild_id=str(world.guild))
    rec = await world.slash("privacy")
    (msg,) = await world.emu.wait_messages(rec, 1)
    assert msg["flags"] & 64
    out = await reply(world, rec)
    assert "older than 30 days are deleted" in out and "only their sha256" in out
    assert "GDPR" in out and "Cybersecurity Law" in out and "/forget-me" in out


async def test_forget_me_asks_then_erases_the_callers_data(world):
    result = await world.result(await world.slash("emoji", {"prompt": "cat face", "seed": 1}))
    kept = await world.result(await world.slash("emoji", {"prompt": "sun", "seed": 2}, user=world.mod))
    await world.audit_actions("job.done")
    rec = await world.slash("forget-me")
    (ask,) = await world.emu.wait_messages(rec, 1)
    assert ask["flags"] & 64 and "Continue?" in ask["content"]
    button = ask["components"][0]["components"][0]["custom_id"]
    assert button == f"aigc-forget:{world.alice}"
    assert (await world.bot.store.jobs.list_for_user(str(world.alice)))  # nothing happened yet
    click = await world.emu.click(int(ask["id"]), button, world.alice)
    await world.emu.wait_for(lambda: "Done:" in (world.emu.message(int(ask["id"])).content or ""), 10)
    assert "1 job records and 1 messages deleted" in world.emu.message(int(ask["id"])).content
    assert click.acked
    assert world.emu.message(int(result["id"])).deleted and not world.emu.message(int(kept["id"])).deleted
    assert await world.bot.store.jobs.list_for_user(str(world.alice)) == []
    rows = await world.bot.store.audit.query(user_id=str(world.alice))
    assert rows and all(r.prompt is None for r in rows) and any(r.prompt_hash for r in rows)
    assert (await world.bot.store.audit.query(action="erasure.user"))[0].actor_id is None
    assert len(await world.bot.store.jobs.list_for_user(str(world.mod))) == 1


async def test_leaving_a_guild_purges_its_data(world):
    await world.result(await world.slash("emoji", {"prompt": "cat", "seed": 3}))
    await mod(world, "mod ban", {"user": world.mod, "reason": "test"})
    await world.audit_actions("job.done")
    from emulator.state import INTENT_GUILDS

    world.emu.world.dispatcher.dispatch("GUILD_DELETE", {"id": str(world.guild)}, guild_id=world.guild,
                                        intent=INTENT_GUILDS)

    async def purged():
        rows = await world.bot.store.audit.query(action="erasure.guild")
        return rows or None
    (row,) = await world.eventually(purged)
    assert row.detail["deleted"]["jobs"] == 1 and row.detail["deleted"]["bans"] == 1
    assert await world.bot.store.audit.query(guild_id=str(world.guild)) == []
    assert await world.bot.store.settings.list_guild(str(world.guild)) == []
    assert await world.bot.store.jobs.list_for_user(str(world.alice)) == []


async def test_retention_task_applies_each_guilds_settings(world):
    g = str(world.guild)
    await world.bot.scoped.set("retention_days", 30, guild_id=g)
    await world.result(await world.slash("emoji", {"prompt": "cat face", "seed": 4}))
    await world.audit_actions("job.done")
    assert world.bot.moderation._retention is not None and not world.bot.moderation._retention.done()
    report = await world.bot.moderation.apply_retention()
    assert report[g].total == 0  # nothing is old yet
    db = world.bot.store._db
    real = db.clock
    db.clock = lambda: real() + timedelta(days=31)
    try:
        report = await world.bot.moderation.apply_retention()
    finally:
        db.clock = real
    assert report[g].deleted["jobs"] == 1 and report[g].deleted["audit_log"] >= 1
    assert await world.bot.store.jobs.list_for_user(str(world.alice)) == []
    (row,) = await world.bot.store.audit.query(guild_id=g, action="retention.applied")
    assert row.detail["older_than_days"] == 30
    # Hash-only guilds: prompt text leaves the audit log at the next pass.
    await world.result(await world.slash("emoji", {"prompt": "red heart", "seed": 5}))
    await world.audit_actions("job.done")
    await world.bot.scoped.set("prompt_storage", "hash", guild_id=g)
    await world.bot.moderation.apply_retention()
    rows = await world.bot.store.audit.query(guild_id=g, action="job.done")
    assert rows and all(r.prompt is None and r.prompt_hash for r in rows)


async def test_verify_reports_files_made_here_and_others(world):
    msg = await world.result(await world.slash("emoji", {"prompt": "cat face", "seed": 6}))
    job = msg["components"][0]["components"][0]["custom_id"].split(":")[2]
    data = attachment_bytes(world, msg["attachments"][0])
    out = await reply(world, await world.slash("verify", {"file": file("mine.png", data)}))
    assert "Made here" in out and job in out and "Made here: ✅" in out and "AI labels in the file: ✅" in out
    # the posted picture's Content Credentials: state, signer, actions, the output it shows
    assert "Content Credentials (C2PA): Valid, signed by AIGC Bot content signer / AIGC Bot" in out
    assert "· c2pa.opened" in out and f"made from: output 0 of job {job} (parentOf)" in out
    # Discord may strip metadata: the same pixels are still found.
    stripped = io.BytesIO()
    Image.open(io.BytesIO(data)).save(stripped, format="PNG")
    out = await reply(world, await world.slash("verify", {"file": file("stripped.png", stripped.getvalue())}))
    assert "same content" in out and "Made here: ✅" in out and "AI labels in the file: —" in out
    photo = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(photo, format="PNG")
    out = await reply(world, await world.slash("verify", {"file": file("photo.png", photo.getvalue())}))
    assert "No AI-content labels and no ledger record" in out and "Made here: —" in out
    out = await reply(world, await world.slash("verify", {"file": file("empty.txt", b"")}))
    assert "Could not check the file: body: send the file's bytes" in out


async def test_settings_context_for_dms_uses_defaults(world):
    settings = await world.bot.scoped.resolve(SettingsContext(guild_id=None))
    assert settings.review_enabled is False and settings.prompt_rules == []

from __future__ import annotations

import inspect

from bot.store import AuditEvent, NewJob, QuotaLimits, Scope, Store, prompt_hash
from bot.store.audit import AuditLog
from bot.store.records import id_hash


def test_audit_log_api_is_append_only() -> None:
    public = {n for n, _ in inspect.getmembers(AuditLog, inspect.isfunction) if not n.startswith("_")}
    assert public == {"append", "query"}


async def test_append_keeps_prompt_or_only_its_hash(store: Store) -> None:
    full = await store.audit.append(AuditEvent(action="job.done", actor_id="u1", guild_id="g1", command="imagine",
                                               job_id="j1", prompt="a red fox", verdict="allowed",
                                               model_hash="m" * 64, output_hash="o" * 64))
    hashed = await store.audit.append(AuditEvent(action="job.done", actor_id="u1", guild_id="g1",
                                                 prompt="a red fox", prompt_storage="hash"))
    assert full.prompt == "a red fox" and full.prompt_hash == prompt_hash("a red fox")
    assert hashed.prompt is None and hashed.prompt_hash == full.prompt_hash
    rows = await store.audit.query(guild_id="g1")
    assert [r.id for r in rows] == [hashed.id, full.id]  # newest first
    assert rows[1] == full


async def test_query_filters(store: Store, clock) -> None:
    await store.audit.append(AuditEvent(action="job.done", actor_id="u1", guild_id="g1"))
    t1 = clock.advance(minutes=1)
    await store.audit.append(AuditEvent(action="mod.ban", actor_id="m1", subject_id="u1", guild_id="g1"))
    await store.audit.append(AuditEvent(action="job.done", actor_id="u2", guild_id="g2"))
    assert len(await store.audit.query(user_id="u1")) == 2
    assert [r.action for r in await store.audit.query(since=t1, guild_id="g1")] == ["mod.ban"]
    assert len(await store.audit.query(until=t1)) == 1
    assert len(await store.audit.query(action="job.done")) == 2
    assert len(await store.audit.query(limit=1)) == 1


async def _populate(store: Store) -> None:
    for user, guild in (("u1", "g1"), ("u1", "g2"), ("u2", "g1")):
        job = f"{user}-{guild}"
        await store.jobs.create(NewJob(id=job, user_id=user, guild_id=guild, command="imagine",
                                       options={"prompt": f"secret of {user}"}))
        await store.reviews.create(job_id=job, guild_id=guild, requester_id=user)
        await store.quota.reserve(guild, user, QuotaLimits())
        await store.settings.set(guild, Scope.user, user, "cooldown_s", 1)
        await store.audit.append(AuditEvent(action="job.done", actor_id=user, guild_id=guild, job_id=job,
                                            prompt=f"secret of {user}"))
    await store.bans.ban("g1", "u1", moderator_id="m1", reason="spam")


async def test_forget_user_erases_everything_but_bans_and_logs_itself(store: Store) -> None:
    await _populate(store)
    report = await store.forget_user("u1")
    assert report.deleted == {"review_items": 2, "jobs": 2, "quota_reservations": 2, "scoped_settings": 2,
                              "audit_log": 3}  # 2 jobs + the ban record naming u1
    assert await store.jobs.list_for_user("u1") == []
    assert [j.id for j in await store.jobs.list_for_user("u2")] == ["u2-g1"]
    assert await store.audit.query(user_id="u1") == []
    assert (await store.bans.active_ban("g1", "u1")) is not None  # a ban survives erasure
    erasure = (await store.audit.query(action="erasure.user"))[0]
    assert erasure.actor_id is None and erasure.detail["subject_sha256"] == id_hash("u1")
    assert "u1" not in repr(erasure)
    assert len(await store.audit.query(user_id="u2")) == 1


async def test_forget_user_keeping_audit_redacts_prompts(store: Store) -> None:
    await _populate(store)
    report = await store.forget_user("u1", requested_by="mod9", keep_audit=True)
    assert report.redacted == {"audit_log": 2} and "audit_log" not in report.deleted
    kept = await store.audit.query(actor_id="u1")
    assert len(kept) == 2 and all(r.prompt is None and r.prompt_hash == prompt_hash("secret of u1") for r in kept)
    assert (await store.audit.query(action="erasure.user"))[0].actor_id == "mod9"
    assert (await store.audit.query(actor_id="u2"))[0].prompt == "secret of u2"


async def test_purge_guild_removes_only_that_guild(store: Store) -> None:
    await _populate(store)
    report = await store.purge_guild("g1")
    assert report.deleted["jobs"] == 2 and report.deleted["bans"] == 1 and report.deleted["audit_log"] == 3
    assert report.deleted["quota_locks"] == 1
    assert await store.settings.list_guild("g1") == [] and await store.reviews.list_pending("g1") == []
    assert [j.id for j in await store.jobs.list_for_user("u1")] == ["u1-g2"]
    assert await store.audit.query(guild_id="g1") == []
    purge = (await store.audit.query(action="erasure.guild"))[0]
    assert purge.guild_id is None and purge.detail["guild_sha256"] == id_hash("g1")


async def test_retention_deletes_old_rows_and_hashes_prompts(store: Store, clock) -> None:
    await _populate(store)  # at t0
    clock.advance(days=10)
    await store.jobs.create(NewJob(id="fresh", user_id="u3", guild_id="g1", command="imagine", options={}))
    await store.audit.append(AuditEvent(action="job.done", actor_id="u3", guild_id="g1", prompt="fresh prompt"))
    report = await store.apply_retention("g1", older_than_days=7, prompt_storage="hash")
    # the reservations were never settled, but expired long ago: they go too
    assert report.deleted == {"review_items": 2, "jobs": 2, "quota_reservations": 2, "audit_log": 3}
    assert report.redacted == {"audit_log": 1}
    assert [j.id for j in await store.jobs.list_for_user("u3")] == ["fresh"]
    g1 = await store.audit.query(guild_id="g1")
    assert [r.action for r in g1] == ["retention.applied", "job.done"]
    assert g1[1].prompt is None and g1[1].prompt_hash == prompt_hash("fresh prompt")
    assert (await store.audit.query(guild_id="g2"))[0].prompt == "secret of u1"  # other guild untouched
    again = await store.apply_retention("g1", older_than_days=7, prompt_storage="hash")
    assert again.total == 0 and len(await store.audit.query(guild_id="g1")) == 2  # no-op is not logged


async def test_retention_rejects_nonsense(store: Store) -> None:
    import pytest
    with pytest.raises(ValueError, match="older_than_days"):
        await store.apply_retention("g1", older_than_days=0, prompt_storage="full")
    with pytest.raises(ValueError, match="prompt_storage"):
        await store.apply_retention("g1", older_than_days=None, prompt_storage="plain")  # type: ignore[arg-type]


async def test_retention_of_direct_message_records(store: Store, clock) -> None:
    await store.jobs.create(NewJob(id="dm", user_id="u1", command="imagine", options={}))
    await store.jobs.create(NewJob(id="in-guild", user_id="u1", guild_id="g1", command="imagine", options={}))
    await store.audit.append(AuditEvent(action="job.done", actor_id="u1", prompt="dm prompt"))
    clock.advance(days=2)
    report = await store.apply_retention(None, older_than_days=1, prompt_storage="full")
    assert report.deleted == {"jobs": 1, "audit_log": 1}
    assert [j.id for j in await store.jobs.list_for_user("u1")] == ["in-guild"]

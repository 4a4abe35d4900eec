"""`/mod purge user`: one member's jobs and review items in one guild go; other guilds,
other members and the audit trail stay; the purge is logged."""
from __future__ import annotations

from bot.store import AuditEvent, NewJob, Store


async def test_purge_member_is_scoped_to_one_guild_and_logged(store: Store) -> None:
    for jid, guild, user in (("a1", "g1", "u1"), ("a2", "g1", "u1"), ("b1", "g2", "u1"), ("c1", "g1", "u2")):
        await store.jobs.create(NewJob(id=jid, user_id=user, command="emoji", options={"prompt": "x"},
                                       guild_id=guild, idempotency_key=jid))
    await store.reviews.create(job_id="a2", guild_id="g1", requester_id="u1")
    await store.reviews.create(job_id="b1", guild_id="g2", requester_id="u1")
    await store.audit.append(AuditEvent(action="job.done", actor_id="u1", guild_id="g1", job_id="a1"))
    report = await store.purge_member("g1", "u1", actor_id="mod", reason="spam")
    assert report.deleted == {"review_items": 1, "jobs": 2}
    assert await store.jobs.get("a1") is None and await store.jobs.get("a2") is None
    assert await store.jobs.get("b1") is not None and await store.jobs.get("c1") is not None
    assert await store.reviews.get_by_job("b1") is not None and await store.reviews.get_by_job("a2") is None
    logged = await store.audit.query(guild_id="g1")
    assert [a.action for a in logged] == ["mod.purge", "job.done"]
    assert (logged[0].actor_id, logged[0].subject_id, logged[0].reason) == ("mod", "u1", "spam")
    assert logged[0].detail["deleted"] == {"review_items": 1, "jobs": 2}

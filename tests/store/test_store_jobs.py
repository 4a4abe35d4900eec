from __future__ import annotations

import asyncio

from bot.store import ArtifactRecord, NewJob, Store


def new_job(job_id: str = "j1", **kw) -> NewJob:
    base = dict(id=job_id, user_id="u1", guild_id="g1", channel_id="c1", command="imagine",
                options={"prompt": "a red fox", "style": "pixel"}, idempotency_key=f"ix-{job_id}",
                engine_url="http://127.0.0.1:8700", seed=2**32 - 1, count=4)
    base.update(kw)
    return NewJob(**base)


async def test_create_get_roundtrip_keeps_json_and_big_seed(store: Store) -> None:
    created = await store.jobs.create(new_job())
    got = await store.jobs.get("j1")
    assert got == created
    assert got.options == {"prompt": "a red fox", "style": "pixel"}
    assert got.seed == 2**32 - 1 and got.count == 4 and got.status == "queued"
    assert got.created_at.tzinfo is not None and got.created_at == got.updated_at
    assert await store.jobs.get("missing") is None


async def test_create_is_idempotent_by_id_and_by_key(store: Store) -> None:
    first = await store.jobs.create(new_job())
    again = await store.jobs.create(new_job())
    same_key_other_id = await store.jobs.create(new_job("j2", idempotency_key="ix-j1"))
    assert again == first and same_key_other_id == first
    assert await store.jobs.get("j2") is None
    assert await store.jobs.get_by_idempotency_key("ix-j1") == first


async def test_update_sets_only_given_fields(store: Store, clock) -> None:
    await store.jobs.create(new_job())
    clock.advance(seconds=5)
    art = ArtifactRecord(id="a1", index=0, sha256="ab" * 32, url="/v1/artifacts/a1", filename="fox.png",
                         mime="image/png", size=123)
    done = await store.jobs.update("j1", status="done", artifacts=[art, {"id": "a2", "index": 1, "sha256": "cd" * 32,
                                                                          "url": "/v1/artifacts/a2", "filename": "b.png"}],
                                   model={"name": "emoji-dcgan", "sha256": "ee" * 32}, timings={"total_ms": 812.5})
    assert done is not None and done.status == "done"
    assert done.artifacts[0] == art and done.artifacts[1].filename == "b.png"
    assert done.model["name"] == "emoji-dcgan" and done.timings == {"total_ms": 812.5}
    assert done.options == {"prompt": "a red fox", "style": "pixel"} and done.error is None
    assert done.updated_at > done.created_at
    failed = await store.jobs.update("j1", status="failed", error={"code": "oom", "message": "out of memory"})
    assert failed.error == {"code": "oom", "message": "out of memory"} and len(failed.artifacts) == 2
    assert await store.jobs.update("nope", status="done") is None


async def test_result_message_lookup_and_parent(store: Store) -> None:
    await store.jobs.create(new_job())
    await store.jobs.create(new_job("j2", parent_job_id="j1", parent_action="variations", parent_index=3))
    await store.jobs.set_result_message("j2", "c9", "m42")
    j2 = await store.jobs.get_by_result_message("m42")
    assert j2 is not None and j2.id == "j2" and j2.result_channel_id == "c9"
    assert (j2.parent_job_id, j2.parent_action, j2.parent_index) == ("j1", "variations", 3)


async def test_list_for_user_newest_first_and_unfinished(store: Store, clock) -> None:
    for i in range(5):
        await store.jobs.create(new_job(f"j{i}", guild_id="g1" if i % 2 == 0 else "g2"))
        clock.advance(seconds=1)
    await store.jobs.create(new_job("other", user_id="u2"))
    await store.jobs.update("j0", status="done")
    listed = await store.jobs.list_for_user("u1", limit=3)
    assert [j.id for j in listed] == ["j4", "j3", "j2"]
    assert [j.id for j in await store.jobs.list_for_user("u1", guild_id="g2")] == ["j3", "j1"]
    older = await store.jobs.list_for_user("u1", before=listed[-1].created_at)
    assert [j.id for j in older] == ["j1", "j0"]
    assert {j.id for j in await store.jobs.list_unfinished()} == {"j1", "j2", "j3", "j4", "other"}


async def test_records_survive_a_restart(open_store) -> None:
    first = await open_store()
    await first.jobs.create(new_job())
    await first.close()
    second = await open_store()
    assert (await second.jobs.get("j1")).options["prompt"] == "a red fox"
    assert second.schema_report.applied == ()  # nothing to upgrade the second time


async def test_concurrent_creates_with_one_key_make_one_record(store: Store) -> None:
    results = await asyncio.gather(*(store.jobs.create(new_job(f"j{i}", idempotency_key="same")) for i in range(10)))
    assert len({r.id for r in results}) == 1
    assert await store.jobs.delete(results[0].id) and not await store.jobs.delete(results[0].id)

"""Micro-batching, fairness, priorities, backpressure, cancel and deadlines, observed on a
generator the test holds at a gate."""
from __future__ import annotations

import asyncio

from engine.jobs import Job
from engine.protocol import JobRequest, Requester
from engine.scheduler import RoundRobin


def body(text: str, user: str = "u", **kw) -> dict:
    return {"command": "probe", "options": {"text": text}, "requester": {"user": user}, **kw}


async def hold_first_batch(h, gen) -> str:
    """Start a job that blocks the generator, so later jobs queue up."""
    gen.gate.clear()
    gen.entered.clear()
    acc = await h.submit(body("blocker", user="z"))
    await asyncio.get_running_loop().run_in_executor(None, gen.entered.wait, 5)
    return acc["id"]


async def test_idle_generator_runs_a_lone_job_at_once(probe_engine):
    h, gen = probe_engine
    acc = await h.submit(body("solo"))
    await h.wait_done(acc["id"])
    assert gen.batches == [[("solo", 0, "generate")]]


async def test_jobs_collected_while_busy_run_in_batches_up_to_max(probe_engine):
    h, gen = probe_engine
    blocker = await hold_first_batch(h, gen)
    ids = [(await h.submit(body(f"j{i}", user=f"user{i}")))["id"] for i in range(6)]
    gen.gate.set()
    for i in [blocker, *ids]:
        assert (await h.wait_done(i))["status"] == "done"
    assert [len(b) for b in gen.batches] == [1, 4, 2]
    assert {t for b in gen.batches[1:] for t, _, _ in b} == {f"j{i}" for i in range(6)}


async def test_one_users_burst_cannot_starve_another(probe_engine):
    h, gen = probe_engine
    await hold_first_batch(h, gen)
    burst = [(await h.submit(body(f"a{i}", user="alice", count=2)))["id"] for i in range(5)]
    bob = (await h.submit(body("bob", user="bob")))["id"]
    gen.gate.set()
    await h.wait_done(bob)
    # Second batch: alice and bob alternate one item at a time.
    assert gen.batches[1] == [("a0", 0, "generate"), ("bob", 0, "generate"),
                              ("a0", 1, "generate"), ("a1", 0, "generate")]
    for i in burst:
        await h.wait_done(i)


async def test_high_priority_goes_first(probe_engine):
    h, gen = probe_engine
    await hold_first_batch(h, gen)
    for i in range(4):
        await h.submit(body(f"n{i}", user=f"n{i}"))
    urgent = (await h.submit(body("urgent", user="x", priority="high")))["id"]
    gen.gate.set()
    await h.wait_done(urgent)
    assert gen.batches[1][0] == ("urgent", 0, "generate")


async def test_queue_positions_are_reported_and_move(probe_engine):
    h, gen = probe_engine
    await hold_first_batch(h, gen)
    a = await h.submit(body("p1", user="a"))
    b = await h.submit(body("p2", user="b"))
    assert (a["position"], b["position"]) == (1, 2)
    gen.gate.set()
    await h.wait_done(b["id"])


async def test_full_queue_answers_429_with_retry_after(engine_factory):
    from tests.engine.probe_plugin import make_probe_plugin

    plugin, gen = make_probe_plugin()
    h = await engine_factory(extra_plugins=[plugin], builtin_plugins=False, queue_max=3)
    await hold_first_batch(h, gen)
    await h.submit(body("q1", count=2))
    await h.submit(body("q2"))
    r = await h.client.post("/v1/jobs", json=body("q3"), headers=h.headers)
    err = (await r.json())["error"]
    assert r.status == 429 and err["code"] == "queue_full"
    assert int(r.headers["Retry-After"]) >= 1
    gen.gate.set()


async def test_cancel_removes_a_queued_job(probe_engine):
    h, gen = probe_engine
    await hold_first_batch(h, gen)
    victim = await h.submit(body("victim"))
    r = await h.client.delete(f"/v1/jobs/{victim['id']}", headers=h.headers)
    assert r.status == 200 and (await r.json())["status"] == "cancelled"
    r = await h.client.delete(f"/v1/jobs/{victim['id']}", headers=h.headers)
    assert r.status == 409 and (await r.json())["error"]["code"] == "already_finished"
    after = await h.submit(body("after"))
    gen.gate.set()
    await h.wait_done(after["id"])
    assert all(t != "victim" for b in gen.batches for t, _, _ in b)
    assert h.engine.scheduler.depth("probe") == 0


async def test_cancel_discards_a_running_jobs_result(probe_engine):
    h, gen = probe_engine
    running = await hold_first_batch(h, gen)
    r = await h.client.delete(f"/v1/jobs/{running}", headers=h.headers)
    assert (await r.json())["status"] == "cancelled"
    gen.gate.set()
    after = await h.submit(body("next"))
    await h.wait_done(after["id"])
    job = await (await h.client.get(f"/v1/jobs/{running}", headers=h.headers)).json()
    assert job["status"] == "cancelled" and job["artifacts"] == []
    assert h.engine.artifacts.get(f"{running}-0") is None


async def test_deadline_fails_a_job_that_waited_too_long(probe_engine):
    h, gen = probe_engine
    await hold_first_batch(h, gen)
    late = await h.submit(body("late", deadline_s=0.2))
    done = await asyncio.wait_for(h.wait_done(late["id"]), 5)
    assert done["status"] == "failed" and done["error"]["code"] == "deadline_exceeded"
    gen.gate.set()


async def test_a_failing_item_fails_only_its_job(probe_engine):
    h, gen = probe_engine
    await hold_first_batch(h, gen)
    bad = await h.submit(body("poison", user="p"))
    good = await h.submit(body("fine", user="q"))
    gen.gate.set()
    bad_done, good_done = await h.wait_done(bad["id"]), await h.wait_done(good["id"])
    assert bad_done["status"] == "failed" and "poisoned prompt" in bad_done["error"]["message"]
    assert good_done["status"] == "done"


def _job(user: str, count: int = 1) -> Job:
    from tests.engine.probe_plugin import make_probe_plugin
    from engine.registry import _command_spec

    plugin, _ = make_probe_plugin()
    spec = _command_spec(plugin.commands[0], "probe")
    return Job(id=f"{user}-{count}", request=JobRequest(command="probe", requester=Requester(user=user)),
               spec=spec, options={}, seed=1, count=count, deadline=1e12)


def test_round_robin_order_matches_dispatch():
    rr = RoundRobin()
    jobs = [_job("a", 3), _job("b", 1), _job("c", 2)]
    for j in jobs:
        rr.push(j)
    predicted = [(j.id, i) for j, i in rr.order()]
    taken = []
    while (got := rr.take_one()) is not None:
        taken.append((got[0].id, got[1]))
    assert taken == predicted == [("a-3", 0), ("b-1", 0), ("c-2", 0), ("a-3", 1), ("c-2", 1), ("a-3", 2)]


async def test_bounded_queue_delay_fills_a_preferred_batch(engine_factory):
    """With max_queue_delay_ms, an idle generator waits (bounded) to fill a preferred batch."""
    from tests.engine.probe_plugin import make_probe_plugin

    plugin, gen = make_probe_plugin()
    gen.preferred_batch_sizes = (4,)
    h = await engine_factory(extra_plugins=[plugin], builtin_plugins=False, max_queue_delay_ms=300)
    ids = [(await h.submit(body(f"d{i}", user=f"d{i}")))["id"] for i in range(4)]
    for i in ids:
        await h.wait_done(i)
    assert [len(b) for b in gen.batches] == [4]
    # A lone job still runs once the delay has passed.
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await h.wait_done((await h.submit(body("alone")))["id"])
    assert 0.25 <= loop.time() - t0 < 5 and [len(b) for b in gen.batches] == [4, 1]


async def test_a_partial_preferred_batch_waits_for_the_next_turn(engine_factory):
    """With preferred sizes, a busy lane takes the largest preferred batch the queue fills
    (padding a partial chunk wastes the generator's time); the rest runs next."""
    from tests.engine.probe_plugin import make_probe_plugin

    plugin, gen = make_probe_plugin(max_batch_size=8)
    gen.preferred_batch_sizes = (2, 4)
    h = await engine_factory(extra_plugins=[plugin], builtin_plugins=False)
    blocker = await hold_first_batch(h, gen)
    ids = [(await h.submit(body(f"p{i}", user=f"p{i}")))["id"] for i in range(7)]
    gen.gate.set()
    for i in [blocker, *ids]:
        assert (await h.wait_done(i))["status"] == "done"
    # 7 queued: 4 now; of the 3 left, a preferred 2; the last one alone (nothing else came)
    assert [len(b) for b in gen.batches] == [1, 4, 2, 1]


async def test_the_forward_pass_hears_whether_more_work_is_in_hand(probe_engine):
    """``busy`` (what the generator process uses to size its thread pool) is False for a
    lone job and True while more items wait."""
    h, gen = probe_engine
    seen: list[tuple[int, bool]] = []
    execute = h.engine.scheduler.execute

    def spy(g, batch, busy):
        seen.append((len(batch), busy))
        return execute(g, batch, busy)

    h.engine.scheduler.execute = spy
    await h.wait_done((await h.submit(body("solo")))["id"])
    blocker = await hold_first_batch(h, gen)
    ids = [(await h.submit(body(f"b{i}", user=f"b{i}")))["id"] for i in range(6)]
    gen.gate.set()
    for i in [blocker, *ids]:
        await h.wait_done(i)
    assert seen[0] == (1, False) and seen[1] == (1, False)  # the lone job; the blocker
    assert seen[2] == (4, True)  # 2 more queued behind it


async def test_a_failing_result_handler_does_not_stop_the_lane(probe_engine, caplog):
    h, gen = probe_engine
    on_result = h.engine.scheduler.on_result
    calls = []

    def flaky(job, index, result):
        calls.append(job.id)
        if len(calls) == 1:
            raise RuntimeError("bookkeeping bug")
        on_result(job, index, result)

    h.engine.scheduler.on_result = flaky
    await h.submit(body("first"))
    second = (await h.submit(body("second")))["id"]
    assert (await asyncio.wait_for(h.wait_done(second), 10))["status"] == "done"
    assert "delivering a result failed" in caplog.text

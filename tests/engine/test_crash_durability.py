"""What a crash can and cannot lose: a served output is in the provenance ledger before anyone
sees it; finished jobs, their idempotency keys and their files outlive a restart; a replay
resumes after the outputs already recorded; a generator process in a crash loop keeps its
jobs queued (and /readyz says not ready) instead of failing them."""
from __future__ import annotations

import asyncio
import hashlib
import io
import os
import signal
import sqlite3

import numpy as np
from PIL import Image

from engine.generator_process import GeneratorProcess
from engine.provenance import ProvenanceLedger


def ledger_rows(data_dir, job_id: str) -> list[int]:
    """The outputs recorded: each as its labelled file and its signed copy (Content Credentials)."""
    with ProvenanceLedger(data_dir / "provenance.sqlite3", readonly=True) as ledger:
        entries = ledger.lookup_job(job_id)
    labelled = sorted(e.index for e in entries if not e.signed)
    assert sorted(e.index for e in entries if e.signed) == labelled
    return labelled


async def test_the_ledger_row_is_committed_before_the_result_is_served(engine_factory, tmp_path):
    from tests.engine.probe_plugin import make_probe_plugin

    plugin, _ = make_probe_plugin()
    h = await engine_factory(extra_plugins=[plugin], builtin_plugins=False, data_dir=tmp_path / "d")
    for seed in range(5):  # the answer and the row race no more: every time, the row is first
        done = await h.submit({"command": "probe", "options": {"text": "x"}, "seed": seed, "count": 3},
                              expect=200, params={"wait": "30"})
        assert done["status"] == "done"
        assert ledger_rows(tmp_path / "d", done["id"]) == [0, 1, 2]


async def test_finished_jobs_their_keys_and_files_outlive_a_restart(engine_factory, tmp_path):
    from tests.engine.probe_plugin import make_probe_plugin

    data = tmp_path / "shared"
    plugin, _ = make_probe_plugin()
    first = await engine_factory(extra_plugins=[plugin], builtin_plugins=False, data_dir=data)
    body = {"command": "probe", "options": {"text": "keep"}, "seed": 9, "count": 3, "idempotency_key": "key-9"}
    done = await first.wait_done((await first.submit(body))["id"])
    files = []
    for art in done["artifacts"]:
        r = await first.client.get(art["url"], headers=first.headers)
        files.append(await r.read())

    plugin2, gen2 = make_probe_plugin()  # a new engine on the same data: the first one is gone
    second = await engine_factory(extra_plugins=[plugin2], builtin_plugins=False, data_dir=data)
    r = await second.client.get(f"/v1/jobs/{done['id']}", headers=second.headers)
    again = await r.json()
    assert r.status == 200, again
    assert again["status"] == "done" and again["artifacts"] == done["artifacts"]
    assert again["model"] == done["model"] and again["timings"]["created"] == done["timings"]["created"]
    # The files are made again on demand: the labelled file byte for byte (a 200, not a 410: it
    # matched labelled_sha256), then signed afresh (a C2PA manifest is not byte-reproducible).
    from engine.provenance.credentials import read_credentials

    for art, original in zip(again["artifacts"], files):
        r = await second.client.get(art["url"], headers=second.headers)
        remade = await r.read()
        assert r.status == 200 and r.headers["Content-Type"] == art["mime"]
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(remade))), np.asarray(Image.open(io.BytesIO(original))))
        assert r.headers["ETag"] == f'"{hashlib.sha256(remade).hexdigest()}"' and remade != original
        assert read_credentials(remade)["state"] == "Valid"
    assert len(gen2.batches) == 3
    # The idempotency key still names the same job: nothing runs again.
    retry = await second.submit(body)
    assert retry["id"] == done["id"] and retry["status"] == "done"
    assert len(gen2.batches) == 3
    events = await second.wait_done(done["id"])
    assert events["status"] == "done"
    r = await second.client.delete(f"/v1/jobs/{done['id']}", headers=second.headers)
    assert r.status == 409 and (await r.json())["error"]["code"] == "already_finished"
    # An artifact of an unknown job, or past the job's count, is a clean 404.
    for bad in (f"{done['id']}-7", f"{done['id']}-x", "nope-0", "-0", f"{done['id']}-" + "9" * 40):
        r = await second.client.get(f"/v1/artifacts/{bad}", headers=second.headers)
        assert r.status == 404 and (await r.json())["error"]["field"] == "id"


async def test_a_file_that_cannot_be_made_identically_is_gone_not_wrong(engine_factory, tmp_path):
    from tests.engine.probe_plugin import make_probe_plugin

    data = tmp_path / "shared"
    plugin, _ = make_probe_plugin()
    first = await engine_factory(extra_plugins=[plugin], builtin_plugins=False, data_dir=data)
    done = await first.wait_done((await first.submit({"command": "probe", "options": {"text": "a"}, "seed": 3}))["id"])
    # Another engine whose compression level differs cannot make the same bytes: it says so.
    plugin2, _ = make_probe_plugin()
    second = await engine_factory(extra_plugins=[plugin2], builtin_plugins=False, data_dir=data,
                                  png_compress_level=9)
    r = await second.client.get(done["artifacts"][0]["url"], headers=second.headers)
    body = await r.json()
    assert r.status == 410 and body["error"]["code"] == "artifact_gone", body


async def test_a_replay_resumes_after_the_outputs_already_recorded(engine_factory, tmp_path):
    from tests.engine.probe_plugin import make_probe_plugin

    data = tmp_path / "shared"
    plugin, _ = make_probe_plugin(max_batch_size=2)
    first = await engine_factory(extra_plugins=[plugin], builtin_plugins=False, data_dir=data)
    done = await first.wait_done((await first.submit({"command": "probe", "options": {"text": "r"}, "seed": 4,
                                                      "count": 4}))["id"])
    await first.client.close()
    # Rewind the journal to the moment after the first batch (outputs 0 and 1) was recorded.
    with sqlite3.connect(data / "engine-journal.sqlite3") as db:
        db.execute("UPDATE jobs SET status='running' WHERE id=?", (done["id"],))
        db.execute("DELETE FROM outputs WHERE job=? AND idx >= 2", (done["id"],))

    plugin2, gen2 = make_probe_plugin(max_batch_size=2)
    second = await engine_factory(extra_plugins=[plugin2], builtin_plugins=False, data_dir=data)
    again = await second.wait_done(done["id"])
    assert again["status"] == "done"
    assert [i for batch in gen2.batches for _, i, _ in batch] == [2, 3]  # 0 and 1 are not made again
    # the deterministic labelled files are the same; outputs 2 and 3 were signed afresh
    assert [a["labelled_sha256"] for a in again["artifacts"]] == [a["labelled_sha256"] for a in done["artifacts"]]
    assert [a["sha256"] for a in again["artifacts"]][:2] == [a["sha256"] for a in done["artifacts"]][:2]


async def test_a_job_whose_outputs_were_all_recorded_is_done_after_a_crash(engine_factory, tmp_path):
    from tests.engine.probe_plugin import make_probe_plugin

    data = tmp_path / "shared"
    plugin, _ = make_probe_plugin()
    first = await engine_factory(extra_plugins=[plugin], builtin_plugins=False, data_dir=data)
    done = await first.wait_done((await first.submit({"command": "probe", "options": {"text": "z"}, "seed": 5,
                                                      "count": 2}))["id"])
    await first.client.close()
    with sqlite3.connect(data / "engine-journal.sqlite3") as db:  # the status write never happened
        db.execute("UPDATE jobs SET status='running' WHERE id=?", (done["id"],))
    plugin2, gen2 = make_probe_plugin()
    second = await engine_factory(extra_plugins=[plugin2], builtin_plugins=False, data_dir=data)
    again = await second.wait_done(done["id"])
    assert again["status"] == "done" and again["artifacts"] == done["artifacts"]
    assert gen2.batches == []


async def test_a_crash_looping_generator_keeps_its_jobs_queued_and_the_engine_not_ready(
        engine_factory, tmp_path, monkeypatch):
    monkeypatch.setattr(GeneratorProcess, "MAX_RESTARTS", 0)  # every restart after the first waits
    monkeypatch.setattr(GeneratorProcess, "BACKOFF_S", 1.5)
    h = await engine_factory(plugins_enabled=["emoji"], data_dir=tmp_path / "d")
    g = h.engine.registry.generators["emoji"]
    req = {"command": "emoji", "options": {"prompt": "cat face", "quality": "draft"}, "seed": 1}
    # Kill the child twice: the first restart is immediate, the second must wait for the back-off.
    for _ in range(2):
        os.kill(g.pid, signal.SIGKILL)
        g._proc.wait(10)
        job = await h.submit(req)
        saw_not_ready = False
        for _ in range(400):
            r = await h.client.get(f"/v1/jobs/{job['id']}", headers=h.headers)
            view = await r.json()
            if view["status"] not in ("queued", "running"):
                break
            ready = await h.client.get("/readyz")
            if ready.status == 503:
                reason = (await ready.json())["unavailable"]["emoji"]
                # a restart in progress (slow on a loaded machine), or the back-off's wait
                assert "trying again" in reason or "not again for" in reason, reason
                saw_not_ready = saw_not_ready or "not again for" in reason
            await asyncio.sleep(0.05)
        assert view["status"] == "done", view
    assert saw_not_ready  # the second time, the engine said so while it waited
    assert (await h.client.get("/readyz")).status == 200


async def test_an_output_that_kills_its_generator_every_time_fails_alone(engine_factory, tmp_path, monkeypatch):
    from engine import execution
    from engine.generator_process import GeneratorDied
    from tests.engine.probe_plugin import make_probe_plugin

    plugin, gen = make_probe_plugin()
    h = await engine_factory(extra_plugins=[plugin], builtin_plugins=False, data_dir=tmp_path / "d")
    real = h.engine.execution.forward

    def forward(g, batch, busy=False):  # "poison" takes the (pretend) process down with its batch
        if any(job.options["text"] == "poison" for job, _ in batch):
            raise GeneratorDied("generator process for 'probe' died (exit code -9)")
        return real(g, batch, busy)

    monkeypatch.setattr(h.engine.execution, "forward", forward)
    gen.gate.clear()
    jobs = [await h.submit({"command": "probe", "options": {"text": t}, "seed": 1, "count": 2})
            for t in ("a", "poison", "b")]
    gen.gate.set()
    results = {t: await h.wait_done(j["id"]) for t, j in zip(("a", "poison", "b"), jobs)}
    assert results["a"]["status"] == results["b"]["status"] == "done"
    assert results["poison"]["status"] == "failed"
    assert f"died {execution.MAX_CRASHES_PER_OUTPUT} times" in results["poison"]["error"]["message"]

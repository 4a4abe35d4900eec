"""The /v1 HTTP contract: catalog, jobs, events, artifacts, auth, errors."""
from __future__ import annotations

import asyncio
import io
import json

from PIL import Image

from tests.conftest import TOKEN


async def test_health_and_ready_need_no_token(probe_engine):
    h, _ = probe_engine
    r = await h.client.get("/healthz")
    assert r.status == 200 and (await r.json())["status"] == "ok"
    r = await h.client.get("/readyz")
    assert r.status == 200 and (await r.json())["ready"] is True


async def test_v1_requires_bearer_token(probe_engine):
    h, _ = probe_engine
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"}):
        r = await h.client.get("/v1/catalog", headers=headers)
        assert r.status == 401
        body = await r.json()
        assert body["error"]["code"] == "unauthorized"
        assert r.headers["WWW-Authenticate"] == "Bearer"
        assert TOKEN not in json.dumps(body)


async def test_catalog_lists_commands_options_actions_and_localizations(probe_engine):
    h, _ = probe_engine
    r = await h.client.get("/v1/catalog", headers=h.headers)
    cat = await r.json()
    assert r.status == 200 and cat["api"] == "v1" and len(cat["hash"]) == 16
    (plugin,) = cat["plugins"]
    assert plugin["name"] == "probe" and plugin["version"] == "1.0.0" and plugin["source"] == "in-process"
    (cmd,) = plugin["commands"]
    assert cmd["modality"] == "image" and cmd["max_count"] == 4
    assert cmd["name_localizations"] == {"en-US": "probe", "zh-CN": "探针"}
    assert cmd["description_localizations"]["zh-CN"] == "测试用命令"
    opts = {o["name"]: o for o in cmd["options"]}
    assert opts["text"]["required"] and opts["text"]["max_length"] == 20
    assert opts["text"]["autocomplete"] == "words"
    assert (opts["level"]["min_value"], opts["level"]["max_value"]) == (1, 5)
    assert [c["value"] for c in opts["style"]["choices"]] == ["plain", "bold"]
    assert opts["seed"]["job_field"] == "seed" and opts["count"]["job_field"] == "count"
    assert [a["name"] for a in cmd["actions"]] == ["reroll", "variations", "echo"]
    assert {m["name"] for m in cat["modalities"]} >= {"image", "text"}
    # The hash is stable across calls.
    again = await (await h.client.get("/v1/catalog", headers=h.headers)).json()
    assert again["hash"] == cat["hash"]


async def test_job_lifecycle_and_png_artifact(probe_engine):
    h, _ = probe_engine
    acc = await h.submit({"command": "probe", "options": {"text": "hi"}, "seed": 5, "count": 2,
                          "requester": {"platform": "discord", "guild": "1", "channel": "2",
                                        "user": "3", "locale": "zh-CN"}})
    assert set(acc) == {"id", "status", "position"} and acc["status"] in ("queued", "running")
    done = await h.wait_done(acc["id"])
    assert done["status"] == "done" and done["progress"] == 1.0
    assert done["options"] == {"text": "hi", "level": 3, "style": "plain"}
    assert done["seed"] == 5 and done["count"] == 2
    assert done["model"] == {"name": "probe-model", "version": "1", "sha256": "0" * 64}
    t = done["timings"]
    assert t["queue_ms"] >= 0 and t["run_ms"] >= 0 and t["total_ms"] >= t["run_ms"]
    assert [a["index"] for a in done["artifacts"]] == [0, 1]
    art = done["artifacts"][0]
    r = await h.client.get(art["url"], headers=h.headers)
    assert r.status == 200 and r.headers["Content-Type"] == "image/png"
    data = await r.read()
    import hashlib
    assert hashlib.sha256(data).hexdigest() == art["sha256"] and len(data) == art["size"]
    img = Image.open(io.BytesIO(data))
    meta = json.loads(img.info["AIGC"])
    assert meta["job"] == acc["id"] and meta["seed"] == "5" and meta["label"] == "AI-generated"
    assert json.loads(meta["options"]) == done["options"]
    r = await h.client.get(f"/v1/jobs/{acc['id']}", headers=h.headers)
    assert (await r.json())["status"] == "done"


async def test_artifact_needs_token_and_unknown_ids_404(probe_engine):
    h, _ = probe_engine
    acc = await h.submit({"command": "probe", "options": {"text": "x"}})
    done = await h.wait_done(acc["id"])
    r = await h.client.get(done["artifacts"][0]["url"])
    assert r.status == 401
    for path in ("/v1/artifacts/nope", "/v1/jobs/nope", "/v1/jobs/nope/events"):
        r = await h.client.get(path, headers=h.headers)
        assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"
    r = await h.client.delete("/v1/jobs/nope", headers=h.headers)
    assert r.status == 404


async def test_events_stream_queued_running_done(probe_engine):
    h, gen = probe_engine
    gen.gate.clear()
    first = await h.submit({"command": "probe", "options": {"text": "a"}})
    second = await h.submit({"command": "probe", "options": {"text": "b"}})
    r = await h.client.get(f"/v1/jobs/{second['id']}/events", headers=h.headers)
    assert r.headers["Content-Type"] == "text/event-stream"
    events = []

    async def read():
        async for line in r.content:
            if line.startswith(b"event: "):
                events.append(line[7:].decode().strip())
    reader = asyncio.create_task(read())
    await asyncio.sleep(0.05)
    gen.gate.set()
    await asyncio.wait_for(reader, 10)
    assert events[0] == "queued" and events[-1] == "done" and "running" in events
    assert (await h.wait_done(first["id"]))["status"] == "done"


async def test_idempotency_key_returns_the_same_job(probe_engine):
    h, _ = probe_engine
    body = {"command": "probe", "options": {"text": "same"}, "idempotency_key": "interaction-1"}
    results = await asyncio.gather(*(h.submit(body) for _ in range(5)))
    assert len({r["id"] for r in results}) == 1
    again = await h.submit(body)
    assert again["id"] == results[0]["id"]
    other = await h.submit({**body, "idempotency_key": "interaction-2"})
    assert other["id"] != results[0]["id"]


async def test_wait_parameter_returns_the_finished_job(probe_engine):
    h, _ = probe_engine
    r = await h.client.post("/v1/jobs?wait=10", json={"command": "probe", "options": {"text": "w"}},
                            headers=h.headers)
    body = await r.json()
    assert r.status == 200 and body["status"] == "done" and len(body["artifacts"]) == 1
    r = await h.client.post("/v1/jobs?wait=abc", json={"command": "probe", "options": {"text": "w"}},
                            headers=h.headers)
    assert r.status == 422 and (await r.json())["error"]["field"] == "wait"


async def test_autocomplete_returns_at_most_25_choices(probe_engine):
    h, _ = probe_engine
    r = await h.client.post("/v1/autocomplete", headers=h.headers,
                            json={"command": "probe", "option": "text", "value": "word"})
    choices = (await r.json())["choices"]
    assert r.status == 200 and len(choices) == 25 and choices[0] == {
        "name": "word00", "value": "word00", "name_localizations": {}}
    r = await h.client.post("/v1/autocomplete", headers=h.headers,
                            json={"command": "probe", "option": "text", "value": "word3"})
    assert [c["value"] for c in (await r.json())["choices"]] == [f"word3{i}" for i in range(10)]
    r = await h.client.post("/v1/autocomplete", headers=h.headers,
                            json={"command": "probe", "option": "level", "value": ""})
    assert r.status == 422 and (await r.json())["error"]["field"] == "option"
    r = await h.client.post("/v1/autocomplete", headers=h.headers,
                            json={"command": "nope", "option": "text", "value": ""})
    assert r.status == 404


async def test_metrics_expose_queue_batches_latency_and_outcomes(probe_engine):
    h, _ = probe_engine
    acc = await h.submit({"command": "probe", "options": {"text": "m"}, "count": 3})
    await h.wait_done(acc["id"])
    text = await (await h.client.get("/metrics")).text()
    for name in ('aigc_queue_depth{generator="probe"}', 'aigc_batch_size_bucket{generator="probe"',
                 'aigc_job_seconds_bucket{generator="probe",le=', 'aigc_jobs_total{generator="probe",outcome="done"} 1.0',
                 "aigc_ready 1.0"):
        assert name in text, name


async def test_readyz_waits_for_the_warm_up(engine_factory):
    from tests.engine.probe_plugin import make_probe_plugin

    plugin, gen = make_probe_plugin()
    gen.gate.clear()  # the warm-up pass blocks here
    h = await engine_factory(extra_plugins=[plugin], builtin_plugins=False, warmup=True)
    r = await h.client.get("/readyz")
    assert r.status == 503 and (await r.json())["ready"] is False
    assert "aigc_ready 0.0" in await (await h.client.get("/metrics")).text()
    gen.gate.set()
    for _ in range(100):
        r = await h.client.get("/readyz")
        if r.status == 200:
            break
        await asyncio.sleep(0.05)
    assert r.status == 200
    assert gen.batches[0] == [("x", 0, "generate")]  # the warm-up item


def test_artifact_store_is_bounded_in_bytes_and_time(monkeypatch):
    import time as _time

    from engine.artifacts import ArtifactStore

    store = ArtifactStore(max_bytes=2048, ttl_s=60)
    for i in range(3):
        store.put(f"a{i}", b"x" * 1000, "image/png", f"a{i}.png")
    assert store.get("a0") is None and store.get("a2") is not None and store.total_bytes == 2000
    now = _time.monotonic()
    monkeypatch.setattr("engine.artifacts.time.monotonic", lambda: now + 61)
    assert store.get("a2") is None and store.total_bytes == 0

"""Follow-up actions are jobs with a parent; they need only the parent's description."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image


async def pixels(h, art) -> np.ndarray:
    r = await h.client.get(art["url"], headers=h.headers)
    return np.asarray(Image.open(io.BytesIO(await r.read())))


async def run(h, body) -> dict:
    acc = await h.submit(body)
    done = await h.wait_done(acc["id"])
    assert done["status"] == "done", done
    return done


async def test_reroll_keeps_options_and_changes_seed(probe_engine):
    h, _ = probe_engine
    parent = await run(h, {"command": "probe", "options": {"text": "cat", "level": 2}, "seed": 1, "count": 2})
    child = await run(h, {"command": "probe", "parent": {"job": parent["id"], "action": "reroll"}})
    assert child["options"] == parent["options"] and child["count"] == 2
    assert child["seed"] != parent["seed"] and child["parent"]["job"] == parent["id"]


async def test_variations_are_deterministic_and_near_the_source(probe_engine):
    h, _ = probe_engine
    parent = await run(h, {"command": "probe", "options": {"text": "cat"}, "seed": 9, "count": 2})
    req = {"command": "probe", "seed": 77, "count": 2,
           "parent": {"job": parent["id"], "action": "variations", "index": 1}}
    a, b = await run(h, req), await run(h, req)
    pa, pb = await pixels(h, a["artifacts"][0]), await pixels(h, b["artifacts"][0])
    assert np.array_equal(pa, pb)
    src = await pixels(h, parent["artifacts"][1])
    other = await pixels(h, parent["artifacts"][0])
    # A variation is closer to its source output than to a sibling.
    dist = lambda x, y: np.abs(x.astype(int) - y.astype(int)).mean()
    assert dist(pa, src) < dist(pa, other)


async def test_follow_up_works_from_the_parents_description_alone(probe_engine):
    h, gen = probe_engine
    req = {"command": "probe", "seed": 5,
           "parent": {"job": "gone-long-ago", "action": "variations", "index": 0,
                      "command": "probe", "options": {"text": "cat"}, "seed": 9}}
    done = await run(h, req)
    assert done["options"]["text"] == "cat"
    assert gen.batches[-1][0] == ("cat", 0, "variations")


async def test_plugin_declared_action_validates_its_options(probe_engine):
    h, gen = probe_engine
    parent = await run(h, {"command": "probe", "options": {"text": "cat"}, "seed": 3})
    ok = await run(h, {"command": "probe", "options": {"to": "dog"},
                       "parent": {"job": parent["id"], "action": "echo"}})
    assert gen.batches[-1] == [("cat", 0, "echo")] and ok["count"] == 1
    r = await h.client.post("/v1/jobs", headers=h.headers, json={
        "command": "probe", "options": {}, "parent": {"job": parent["id"], "action": "echo"}})
    err = (await r.json())["error"]
    assert r.status == 422 and err["field"] == "options.to" and "required" in err["message"]


async def test_bad_parents_are_named(probe_engine):
    h, _ = probe_engine
    parent = await run(h, {"command": "probe", "options": {"text": "cat"}})
    cases = [
        ({"job": "missing", "action": "reroll"}, 404, "parent.job"),
        ({"job": parent["id"], "action": "explode"}, 422, "parent.action"),
        ({"job": parent["id"], "action": "variations", "index": 3}, 422, "parent.index"),
    ]
    for parent_ref, status, field in cases:
        r = await h.client.post("/v1/jobs", headers=h.headers,
                                json={"command": "probe", "parent": parent_ref})
        err = (await r.json())["error"]
        assert (r.status, err["field"]) == (status, field), err

"""The display copy a front posts: one labelled picture per image job (a grid, or one output
scaled up with nearest-neighbour), naming who posts it, known to the ledger and /verify."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from engine.display import compose, layout
from engine.labels import read_labels

WHO = {"propagator": "Discord via AIGC Bot", "propagate_id": "discord:1/2/3"}


def test_layout_and_nearest_neighbour_cells():
    assert [layout(n) for n in (1, 2, 3, 4, 5, 9, 10, 16)] == [
        (1, 1), (2, 1), (2, 2), (2, 2), (3, 2), (3, 3), (4, 3), (4, 4)]
    rng = np.random.default_rng(0)
    tiles = [Image.fromarray(rng.integers(0, 255, (64, 64, 4), dtype=np.uint8)) for _ in range(3)]
    one = compose(tiles[:1])
    assert one.size == (256, 256)
    assert np.array_equal(np.asarray(one)[::4, ::4], np.asarray(tiles[0]))  # every pixel a 4x4 block
    grid = compose(tiles)
    assert grid.size == (2 * 256 + 3 * 4, 2 * 256 + 3 * 4)
    third = np.asarray(grid)[4 + 256 + 4:4 + 2 * 256 + 4, 4:4 + 256]
    assert np.array_equal(third[::4, ::4], np.asarray(tiles[2]))
    assert max(compose(tiles * 6).size) <= 1024  # 16+ outputs: smaller cells, never huge


async def test_the_display_copy_is_labelled_names_its_poster_and_is_recorded(probe_engine):
    h, _ = probe_engine
    done = await h.wait_done((await h.submit({"command": "probe", "options": {"text": "grid"}, "seed": 5,
                                              "count": 3}))["id"])
    r = await h.client.post(f"/v1/jobs/{done['id']}/display", json=WHO, headers=h.headers)
    assert r.status == 200 and r.headers["Content-Type"] == "image/png"
    data = await r.read()
    labels = read_labels(data)
    assert labels["ai_generated"]
    aigc = labels["aigc"]
    assert aigc["ContentPropagator"] == WHO["propagator"] and aigc["PropagateID"] == WHO["propagate_id"]
    assert aigc["ProduceID"] == f"{done['id']}:display"
    picture = Image.open(io.BytesIO(data))
    assert picture.size == (2 * 256 + 3 * 4, 2 * 256 + 3 * 4)
    # Each cell is the output as served (its own visible mark included), scaled 32x (8 px probe).
    first = await (await h.client.get(done["artifacts"][0]["url"], headers=h.headers)).read()
    cell = np.asarray(picture.convert("RGBA"))[4:4 + 256, 4:4 + 256]
    assert np.array_equal(cell[::32, ::32], np.asarray(Image.open(io.BytesIO(first)).convert("RGBA")))
    # /verify knows it for what it is.
    r = await h.client.post("/v1/verify", data=data, headers=h.headers)
    report = await r.json()
    assert report["finding"] == "recorded", report
    assert f"display copy of outputs 0-2 of job {done['id']}" in report["summary"]


async def test_display_copy_refusals_name_the_field(probe_engine):
    h, gen = probe_engine
    r = await h.client.post("/v1/jobs/nope/display", json=WHO, headers=h.headers)
    assert r.status == 404 and (await r.json())["error"]["field"] == "id"
    gen.gate.clear()
    running = await h.submit({"command": "probe", "options": {"text": "slow"}, "seed": 1})
    r = await h.client.post(f"/v1/jobs/{running['id']}/display", json=WHO, headers=h.headers)
    body = await r.json()
    assert r.status == 409 and body["error"]["code"] == "not_done", body
    gen.gate.set()
    r = await h.client.post(f"/v1/jobs/{running['id']}/display",
                            json={**WHO, "propagate_id": "x" * 129}, headers=h.headers)
    body = await r.json()
    assert r.status == 422 and body["error"]["field"] == "propagate_id", body
    r = await h.client.post(f"/v1/jobs/{running['id']}/display", json={"propagator": "x"}, headers=h.headers)
    assert r.status == 422 and (await r.json())["error"]["field"] == "propagate_id"
    r = await h.client.post(f"/v1/jobs/{running['id']}/display", json=WHO)
    assert r.status == 401

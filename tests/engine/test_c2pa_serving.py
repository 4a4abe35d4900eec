"""Content Credentials on every output (AIGC_C2PA_SIGN, on by default): the engine signs each
output when it finishes it, records the deterministic labelled file and the signed one in the
ledger, serves the signed one, and signs afresh (a new hash, recorded) when a file is made again;
follow-ups and display copies name their sources as C2PA ingredients."""
from __future__ import annotations

import hashlib
import io
import json
import stat

import numpy as np
import pytest
from PIL import Image

c2pa = pytest.importorskip("c2pa")

from engine.labels import read_labels  # noqa: E402
from engine.labels.metadata import DIGITAL_SOURCE_TYPE  # noqa: E402
from engine.provenance.credentials import read_credentials  # noqa: E402


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


async def test_every_output_is_signed_and_both_files_recorded(probe_engine, tmp_path):
    h, gen = probe_engine
    key = tmp_path / "engine-data" / "c2pa" / "signer.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600  # made at start, before anything is made
    done = await h.wait_done((await h.submit({"command": "probe", "options": {"text": "hi"}, "seed": 4}))["id"])
    art = done["artifacts"][0]
    r = await h.client.get(art["url"], headers=h.headers)
    signed = await r.read()
    assert r.status == 200 and r.headers["Content-Type"] == "image/png"
    # the view names the served file; labelled_sha256 the deterministic file under the manifest
    assert _sha(signed) == art["sha256"] and len(signed) == art["size"] != 0
    assert art["labelled_sha256"] != art["sha256"]
    assert r.headers["ETag"] == f'"{art["sha256"]}"'
    cred = read_credentials(signed)
    assert cred["state"] == "Valid" and cred["aigc"]["ProduceID"] == f"{done['id']}:0"
    assert cred["actions"][0]["action"] == "c2pa.created"
    assert cred["actions"][0]["softwareAgent"] == {"name": "probe-model", "version": "1"}
    assert cred["digital_source_type"] == DIGITAL_SOURCE_TYPE and cred["ingredients"] == []
    assert read_labels(signed)["ai_generated"]  # the labels under the manifest are still there
    # both files are in the ledger under the job and index, the signed one marked
    rows = h.engine.ledger.lookup_job(done["id"])
    assert {(r.sha256, r.signed) for r in rows} == {(art["labelled_sha256"], False), (art["sha256"], True)}
    assert len({r.content_sha256 for r in rows}) == 1  # the same pixels
    report = await (await h.client.post("/v1/verify", headers=h.headers, data=signed)).json()
    assert report["finding"] == "recorded" and report["made_here"] and report["ledger"][0]["signed"]
    assert "signature valid" in report["summary"]

    # Made again after the store let it go: checked against the labelled hash, signed afresh,
    # the new bytes recorded before they are served and named by the ETag.
    h.engine.artifacts.discard(art["id"])
    r = await h.client.get(art["url"], headers=h.headers)
    again = await r.read()
    assert again != signed and r.headers["ETag"] == f'"{_sha(again)}"'
    assert read_credentials(again)["state"] == "Valid"
    assert (_pixels(again) == _pixels(signed)).all()
    assert _sha(h.engine.execution.remake(h.engine.jobs[done["id"]], 0)) == art["labelled_sha256"]
    report = await (await h.client.post("/v1/verify", headers=h.headers, data=again)).json()
    assert report["finding"] == "recorded" and report["ledger"][0]["index"] == 0
    assert len(h.engine.ledger.lookup_job(done["id"])) == 3


async def test_signing_off_serves_the_labelled_bytes(engine_factory):
    from tests.engine.probe_plugin import make_probe_plugin

    plugin, _ = make_probe_plugin()
    h = await engine_factory(extra_plugins=[plugin], builtin_plugins=False, c2pa_sign=False)
    done = await h.wait_done((await h.submit({"command": "probe", "options": {"text": "hi"}, "seed": 4}))["id"])
    art = done["artifacts"][0]
    data = await (await h.client.get(art["url"], headers=h.headers)).read()
    assert _sha(data) == art["sha256"] == art["labelled_sha256"]
    assert read_credentials(data) is None
    assert [r.signed for r in h.engine.ledger.lookup_job(done["id"])] == [False]


async def test_a_follow_up_names_its_source_as_an_ingredient(probe_engine):
    h, _ = probe_engine
    parent = await h.wait_done((await h.submit({"command": "probe", "options": {"text": "hi"}, "seed": 4,
                                                "count": 2}))["id"])
    source = await (await h.client.get(parent["artifacts"][1]["url"], headers=h.headers)).read()
    child = await h.wait_done((await h.submit({"command": "probe", "options": {}, "count": 2,
                                               "parent": {"job": parent["id"], "action": "variations",
                                                          "index": 1}}))["id"])
    for art in child["artifacts"]:
        data = await (await h.client.get(art["url"], headers=h.headers)).read()
        cred = read_credentials(data)
        assert cred["state"] == "Valid"
        created = cred["actions"][0]
        assert created["action"] == "c2pa.created" and created["digitalSourceType"] == DIGITAL_SOURCE_TYPE
        assert created["description"] == f"variations of output 1 of job {parent['id']}"
        (ing,) = cred["ingredients"]
        assert ing["relationship"] == "inputTo" and ing["title"] == f"output 1 of job {parent['id']}"
        # the source's own manifest travels with it: a reader sees the chain
        assert ing["credentials"]["aigc"]["ProduceID"] == f"{parent['id']}:1"
        with c2pa.Reader("image/png", io.BytesIO(data)) as reader:
            store = json.loads(reader.json())
        assert len(store["manifests"]) == 2
        active = store["manifests"][store["active_manifest"]]
        assert active["ingredients"][0]["active_manifest"] in store["manifests"]
    # the ingredient is the file the parent served, byte for byte (c2pa hashed it)
    assert source and read_credentials(source)["ingredients"] == []

    # A reroll of a parent the engine no longer holds in memory: named by title only.
    h.engine.artifacts.discard(f"{parent['id']}-0")
    reroll = await h.wait_done((await h.submit({"command": "probe", "options": {}, "seed": 9,
                                                "parent": {"job": parent["id"], "action": "reroll"}}))["id"])
    data = await (await h.client.get(reroll["artifacts"][0]["url"], headers=h.headers)).read()
    cred = read_credentials(data)
    assert cred["state"] == "Valid"
    assert cred["actions"][0]["description"] == f"reroll of output 0 of job {parent['id']}"
    assert [(i["title"], i["relationship"]) for i in cred["ingredients"]] == [
        (f"output 0 of job {parent['id']}", "inputTo")]
    assert "credentials" not in cred["ingredients"][0]


async def test_a_jobs_sources_are_named_as_ingredients(probe_engine):
    """A job made from earlier outputs without being their follow-up (the bot's Blend names its
    two ends) lists each once as an inputTo ingredient, held ones with their own manifests."""
    h, _ = probe_engine
    a = await h.wait_done((await h.submit({"command": "probe", "options": {"text": "a"}, "seed": 1, "count": 2}))["id"])
    b = await h.wait_done((await h.submit({"command": "probe", "options": {"text": "b"}, "seed": 2}))["id"])
    h.engine.artifacts.discard(f"{b['id']}-0")  # expired: named by title only
    sources = [{"job": a["id"], "index": 1}, {"job": b["id"]}, {"job": a["id"], "index": 1}]
    made = await h.wait_done((await h.submit({"command": "probe", "options": {"text": "ab"}, "seed": 3,
                                              "sources": sources}))["id"])
    data = await (await h.client.get(made["artifacts"][0]["url"], headers=h.headers)).read()
    cred = read_credentials(data)
    assert cred["state"] == "Valid" and "description" not in cred["actions"][0]
    # (c2pa lists the ingredients named by title only before those it hashed)
    got = {i["title"]: i for i in cred["ingredients"]}
    assert sorted((t, i["relationship"]) for t, i in got.items()) == sorted([
        (f"output 1 of job {a['id']}", "inputTo"), (f"output 0 of job {b['id']}", "inputTo")])
    assert got[f"output 1 of job {a['id']}"]["credentials"]["aigc"]["ProduceID"] == f"{a['id']}:1"
    assert "credentials" not in got[f"output 0 of job {b['id']}"]
    # bad input: 422 naming the field and the rule
    for bad, field in (([{"job": a["id"]}] * 5, "sources"), ([{"job": a["id"], "index": 64}], "sources.0.index"),
                       ([{"job": ""}], "sources.0.job"), ([{"index": 0}], "sources.0.job"), ("x", "sources")):
        r = await h.client.post("/v1/jobs", json={"command": "probe", "options": {}, "sources": bad},
                                headers=h.headers)
        err = (await r.json())["error"]
        assert r.status == 422 and err["field"] == field, (bad, err)


@pytest.mark.parametrize("count", [1, 3])
async def test_a_display_copy_lists_the_outputs_it_shows(probe_engine, count):
    h, _ = probe_engine
    done = await h.wait_done((await h.submit({"command": "probe", "options": {"text": "hi"}, "seed": 4,
                                              "count": count}))["id"])
    r = await h.client.post(f"/v1/jobs/{done['id']}/display", headers=h.headers,
                            json={"propagator": "Discord", "propagate_id": "interaction:77"})
    assert r.status == 200, await r.text()
    data = await r.read()
    cred = read_credentials(data)
    assert cred["state"] == "Valid" and cred["aigc"]["ContentPropagator"] == "Discord"
    titles = [f"output {i} of job {done['id']}" for i in range(count)]
    assert [i["title"] for i in cred["ingredients"]] == titles
    actions = [a["action"] for a in cred["actions"]]
    if count == 1:  # one output scaled up: its parent
        assert cred["ingredients"][0]["relationship"] == "parentOf"
        assert actions == ["c2pa.opened", "c2pa.resized"]
    else:  # a grid: each output placed into it
        assert {i["relationship"] for i in cred["ingredients"]} == {"componentOf"}
        assert actions == ["c2pa.created"] + ["c2pa.placed"] * count
    assert cred["ai_generated"]
    assert all(i["credentials"]["aigc"]["ProduceID"] == f"{done['id']}:{k}" for k, i in enumerate(cred["ingredients"]))
    report = await (await h.client.post("/v1/verify", headers=h.headers, data=data)).json()
    assert report["finding"] == "recorded" and report["ledger"][0]["rendition"].startswith("display copy")
    assert f"made from {count} source file" in report["summary"]


async def test_a_served_file_changed_by_one_pixel_reads_as_tampered(probe_engine):
    from engine.labels import encode_png
    from tests.provenance.test_credentials import _png_chunks, _png_join

    h, _ = probe_engine
    done = await h.wait_done((await h.submit({"command": "probe", "options": {"text": "hi"}, "seed": 5}))["id"])
    signed = await (await h.client.get(done["artifacts"][0]["url"], headers=h.headers)).read()
    px = _pixels(signed)[..., :3].copy()
    px[3, 3, 0] ^= 1
    idat = dict(_png_chunks(encode_png(px, {"job": "x"}, visible_mark=False)))[b"IDAT"]
    tampered = _png_join([(t, idat if t == b"IDAT" else d) for t, d in _png_chunks(signed)])
    assert (_pixels(tampered) != _pixels(signed)).sum() == 1
    report = await (await h.client.post("/v1/verify", headers=h.headers, data=tampered)).json()
    assert report["content_credentials"]["state"] == "Invalid"
    assert report["finding"] == "recorded_job_bytes_differ" and not report["made_here"]
    assert "changed after signing" in report["summary"]

"""Content Credentials in what the bot posts, through the emulator: the picture of a result (a
grid of outputs, or one output shown large) is signed and lists the outputs it shows as C2PA
ingredients, each with its own manifest; a variation names the output it started from; any C2PA
reader (c2pa.Reader here, and exiftool) sees the chain."""
from __future__ import annotations

import io
import json
import shutil
import subprocess

import aiohttp
import pytest

from tests.conftest import TOKEN

c2pa = pytest.importorskip("c2pa")

from engine.labels.metadata import DIGITAL_SOURCE_TYPE  # noqa: E402
from engine.provenance.credentials import read_credentials  # noqa: E402


def posted(world, msg: dict) -> bytes:
    (att,) = msg["attachments"]
    return world.emu.world.files[int(att["id"])].data


def job_of(msg: dict) -> str:
    return [c["custom_id"] for row in msg["components"] for c in row["components"]][0].split(":")[2]


async def verify(world, data: bytes) -> dict:
    async with aiohttp.ClientSession() as s, s.post(f"{world.engine.url}/v1/verify", data=data,
                                                    headers={"Authorization": f"Bearer {TOKEN}"}) as r:
        assert r.status == 200
        return await r.json()


def exiftool_text(tmp_path, data: bytes, name: str) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return subprocess.run(["exiftool", "-a", "-G1", "-U", str(path)], capture_output=True, text=True,
                          check=True).stdout


async def test_a_posted_grid_is_signed_and_lists_its_outputs(world, tmp_path):
    msg = await world.result(await world.slash("emoji", {"prompt": "cat face", "seed": 7, "count": 4}))
    job = job_of(msg)
    grid = posted(world, msg)
    cred = read_credentials(grid)
    assert cred["state"] == "Valid" and cred["signer"]["issuer"] == "AIGC Bot"
    assert [a["action"] for a in cred["actions"]] == ["c2pa.created"] + ["c2pa.placed"] * 4
    assert cred["aigc"]["ContentPropagator"] and cred["ai_generated"]
    ings = cred["ingredients"]
    assert [(i["title"], i["relationship"]) for i in ings] == [(f"output {k} of job {job}", "componentOf")
                                                              for k in range(4)]
    for k, ing in enumerate(ings):  # each output's own credentials travel inside the grid's
        assert ing["credentials"]["aigc"]["ProduceID"] == f"{job}:{k}"
    with c2pa.Reader("image/png", io.BytesIO(grid)) as reader:
        store = json.loads(reader.json())
        assert reader.get_validation_state() == "Valid"
    assert len(store["manifests"]) == 5  # the grid's and the four outputs'
    for label, m in store["manifests"].items():
        if label != store["active_manifest"]:
            created = next(a for x in m["assertions"] if x["label"].startswith("c2pa.actions")
                           for a in x["data"]["actions"])
            assert created["digitalSourceType"] == DIGITAL_SOURCE_TYPE
    # /verify finds the posted file in the ledger, as a display copy
    report = await verify(world, grid)
    assert report["finding"] == "recorded" and report["ledger"][0]["rendition"] == "display copy of outputs 0-3"
    assert "made from 4 source files" in report["summary"]
    # exiftool (12.57) decodes the JUMBF boxes and their CBOR: the chain is there for it too
    assert shutil.which("exiftool"), "exiftool is required (scripts/install.sh installs it)"
    lines = [" ".join(line.split()) for line in exiftool_text(tmp_path, grid, "grid.png").splitlines()]
    assert sum(line.startswith("[JUMBF] JUMD Label : urn:c2pa:") for line in lines) == 5
    assert lines.count("[CBOR] Relationship : componentOf") == 4
    assert "[CBOR] Actions Action : c2pa.created, c2pa.placed, c2pa.placed, c2pa.placed, c2pa.placed" in lines
    assert all(f"[CBOR] Produce ID : {job}:{k}" in lines for k in range(4))


async def test_a_single_output_shown_large_and_a_variation_name_their_sources(world):
    msg = await world.result(await world.slash("emoji", {"prompt": "cat face", "seed": 8}))
    job = job_of(msg)
    cred = read_credentials(posted(world, msg))
    assert cred["state"] == "Valid"
    assert [a["action"] for a in cred["actions"]] == ["c2pa.opened", "c2pa.resized"]
    assert [(i["title"], i["relationship"]) for i in cred["ingredients"]] == [(f"output 0 of job {job}", "parentOf")]

    rec = await world.emu.click(int(msg["id"]), f"aigc:variations:{job}:0", world.alice)
    varied = await world.result(rec)
    child = job_of(varied)
    grid = read_credentials(posted(world, varied))
    assert grid["state"] == "Valid" and len(grid["ingredients"]) >= 2
    # each variation (inside the posted grid, as an ingredient with its own manifest) names
    # output 0 of the parent job as the input it started from
    assert all(i["title"].endswith(f"of job {child}") for i in grid["ingredients"])
    with c2pa.Reader("image/png", io.BytesIO(posted(world, varied))) as reader:
        store = json.loads(reader.json())
    active = store["manifests"][store["active_manifest"]]
    for ing in active["ingredients"]:
        variation = store["manifests"][ing["active_manifest"]]
        (source,) = variation["ingredients"]
        assert source["relationship"] == "inputTo" and source["title"] == f"output 0 of job {job}"
        created = next(a for x in variation["assertions"] if x["label"].startswith("c2pa.actions")
                       for a in x["data"]["actions"])
        assert created["description"] == f"variations of output 0 of job {job}"

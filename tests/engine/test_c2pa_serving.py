"""AIGC_C2PA_SIGN: artifacts are served with Content Credentials; the recorded artifact stays the
deterministic labelled file (sha-checked when made again), the signed copy is recorded too."""
from __future__ import annotations

import hashlib
import stat

import pytest

pytest.importorskip("c2pa")

from engine.labels import read_labels  # noqa: E402
from engine.provenance.credentials import read_credentials  # noqa: E402


async def test_served_artifacts_are_signed_and_recorded(engine_factory, tmp_path):
    from tests.engine.probe_plugin import make_probe_plugin

    plugin, gen = make_probe_plugin()
    h = await engine_factory(extra_plugins=[plugin], builtin_plugins=False, c2pa_sign=True)
    gen.gate.set()
    key = tmp_path / "engine-data" / "c2pa" / "signer.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600  # made at start, before anything is served
    done = await h.wait_done((await h.submit({"command": "probe", "options": {"text": "hi"}, "seed": 4}))["id"])
    art = done["artifacts"][0]
    r = await h.client.get(art["url"], headers=h.headers)
    signed = await r.read()
    assert r.status == 200 and r.headers["Content-Type"] == "image/png"
    assert hashlib.sha256(signed).hexdigest() != art["sha256"]  # the view names the labelled file
    assert r.headers["ETag"] == f'"{hashlib.sha256(signed).hexdigest()}"'
    cred = read_credentials(signed)
    assert cred["state"] == "Valid" and cred["aigc"]["ProduceID"] == f"{done['id']}:0"
    assert cred["actions"][0]["softwareAgent"]["name"] == "probe-model"
    assert read_labels(signed)["ai_generated"]
    # the same signed copy while it is kept
    assert await (await h.client.get(art["url"], headers=h.headers)).read() == signed
    # the labelled file underneath is the one recorded and sha-checked
    unsigned = await h.engine.files.unsigned(art["id"])
    assert unsigned.sha256 == art["sha256"]
    # the signed bytes are in the ledger: /verify finds them
    report = await (await h.client.post("/v1/verify", headers=h.headers, data=signed)).json()
    assert report["finding"] == "recorded" and report["made_here"]
    # made again after the stores let both go: sha-checked, signed afresh
    h.engine.artifacts.discard(art["id"])
    h.engine.files._signed.discard(art["id"])
    again = await (await h.client.get(art["url"], headers=h.headers)).read()
    assert read_credentials(again)["state"] == "Valid"
    assert (await h.engine.files.unsigned(art["id"])).sha256 == art["sha256"]


async def test_signing_off_serves_the_recorded_bytes(probe_engine):
    h, gen = probe_engine
    gen.gate.set()
    done = await h.wait_done((await h.submit({"command": "probe", "options": {"text": "hi"}, "seed": 4}))["id"])
    data = await (await h.client.get(done["artifacts"][0]["url"], headers=h.headers)).read()
    assert hashlib.sha256(data).hexdigest() == done["artifacts"][0]["sha256"]
    assert read_credentials(data) is None

"""The /sfx plugin: schema, determinism (alone vs inside any batch), follow-ups, the labelled
Opus/WAV files with the audible cue, and a real engine over loopback serving, verifying and
refusing bad input."""
from __future__ import annotations

import asyncio
import hashlib
import io

import numpy as np
import pytest
import soundfile

from engine import sdk
from engine.labels import read_labels
from engine.protocol import NAME_RE


@pytest.fixture(scope="module")
def gen():
    import plugins.sfx as sfx

    g = sfx.plugin.generators[0]
    g.load("cpu")
    return g


def items(kind="coin", seed=7, n=1, **opts):
    return [sdk.Item("sfx", {"kind": kind, "variety": 0.7, **opts}, seed=seed, index=i) for i in range(n)]


def test_command_schema_localizations_and_kinds_match_the_model(gen):
    import plugins.sfx as sfx

    (cmd,) = sfx.plugin.commands
    assert (cmd.name, cmd.modality, cmd.max_count) == ("sfx", "sfx", 4)
    opts = {o.name: o for o in cmd.options}
    assert opts["kind"].required and [c.value for c in opts["kind"].choices] == list(gen.classes)
    # one generator for both sets: the spoken digits are offered by name, within Discord's 25 choices
    names = {c.value: c.name for c in opts["kind"].choices}
    assert len(names) <= 25 and names["digit-seven"] == "Spoken digit: seven (7)" and names["coin"] == "Coin / pickup"
    assert all("zh-CN" in c.name_localizations for c in opts["kind"].choices)
    assert (opts["count"].job_field, opts["seed"].job_field) == ("count", "seed")
    for name in [cmd.name_localizations["zh-CN"]] + [o.name_localizations["zh-CN"] for o in cmd.options]:
        assert NAME_RE.match(name)
    assert all("zh-CN" in o.description_localizations for o in cmd.options)
    assert [a.name for a in cmd.actions] == ["reroll", "variations"]
    (mod,) = sfx.plugin.modalities
    assert (mod.mime, mod.extension, mod.presentation) == ("audio/ogg", "ogg", sdk.Presentation.audio)
    assert {(t.kind, t.name) for t in sfx.plugin.tools} >= {("data", "sfx"), ("data", "digits"),
                                                           ("train", "sfx"), ("eval", "sfx")}


def test_kind_names_must_cover_the_served_classes(tmp_path, monkeypatch):
    import json

    import plugins.sfx as sfx

    assert sfx.model_kinds()[-1] == "digit-nine"
    (tmp_path / "gan.json").write_text(json.dumps({"classes": ["coin", "digit-ten"]}))
    monkeypatch.setattr(sfx, "HERE", tmp_path)
    with pytest.raises(ValueError, match=r"classes \['digit-ten'\] have no name in KINDS"):
        sfx.model_kinds()


def test_output_is_alone_the_same_as_in_any_batch(gen):
    alone = [gen.generate([it])[0].data for it in items("laser", n=3)]
    mixed = items("explosion", seed=3, n=2) + items("laser", n=3) + items("coin", seed=1, n=5)
    batched = [o.data for o in gen.generate(mixed)][2:5]
    for a, b in zip(alone, batched):
        assert a.dtype == np.float32 and a.shape == (16384,) and np.array_equal(a, b)
    assert not np.array_equal(alone[0], alone[1])  # index matters
    assert np.abs(alone[0]).max() == pytest.approx(0.9, abs=1e-4)


def test_variations_stay_near_their_source(gen):
    src = gen.spectrograms(items("jump", seed=11))[0]
    var = [sdk.Item("sfx", {"kind": "jump", "variety": 0.7}, seed=s, index=0, action="variations", source=(11, 0))
           for s in (1, 2)]
    near = gen.spectrograms(var)
    far = gen.spectrograms(items("jump", seed=99))[0]
    d_var = [float((v - src).abs().mean()) for v in near]
    assert 0 < max(d_var) and float((near[0] - near[1]).abs().sum()) > 0
    latent = lambda it: gen._latent(it, gen.model.cfg.nz)  # noqa: E731
    import torch
    cos = torch.nn.functional.cosine_similarity(latent(var[0]), latent(items("jump", seed=11)[0]))
    assert float(cos) > 0.6 and float((far - src).abs().mean()) > 0


def test_truncation_calibration_per_kind(tmp_path):
    """gan.json's truncation_scale (all kinds) and truncation_scale_per_class widen or narrow the
    truncation threshold per kind; absent, the latents are the plain mapping's; variety 1 is
    never truncated; outputs stay the same alone as in a batch."""
    import json
    import shutil

    import torch

    from plugins.sfx.generator import HERE, SfxGenerator, latent

    for suffix in (".safetensors", ".json"):
        shutil.copy(HERE / f"gan{suffix}", tmp_path / f"gan{suffix}")
    cfg = json.loads((tmp_path / "gan.json").read_text())
    for key in ("truncation_scale", "truncation_scale_per_class"):
        cfg.pop(key, None)
    (tmp_path / "gan.json").write_text(json.dumps(cfg))
    plain = SfxGenerator(tmp_path / "gan")
    plain.load("cpu")
    nz = plain.model.cfg.nz
    assert plain.truncation_scale("coin") == 1.0
    assert torch.equal(plain._latent(items("coin", seed=5)[0], nz), latent(nz, 5, 0, 0.7))
    assert torch.equal(latent(nz, 5, 0, 0.7, 1.0), latent(nz, 5, 0, 0.7))
    (tmp_path / "gan.json").write_text(json.dumps({**cfg, "truncation_scale": 1.3,
                                                   "truncation_scale_per_class": {"blip": 0.5}}))
    cal = SfxGenerator(tmp_path / "gan")
    cal.load("cpu")
    assert (cal.truncation_scale("coin"), cal.truncation_scale("blip")) == (1.3, 0.5)
    for seed in range(20):
        z_coin = cal._latent(items("coin", seed=seed)[0], nz)
        z_blip = cal._latent(items("blip", seed=seed)[0], nz)
        assert float(z_coin.abs().max()) <= 1.55 * 1.3 + 1e-6 and float(z_blip.abs().max()) <= 1.55 * 0.5 + 1e-6
        assert torch.equal(z_coin, latent(nz, seed, 0, 0.7, 1.3))
        # variety 1: the plain normal whatever the scale
        assert torch.equal(cal._latent(items("blip", seed=seed, variety=1.0)[0], nz), latent(nz, seed, 0, 1.0))
    wider = [cal._latent(items("coin", seed=s)[0], nz) for s in range(20)]
    assert any(float(z.abs().max()) > 1.55 for z in wider)  # beyond the plain threshold: it did widen
    alone = [cal.generate([it])[0].data for it in items("blip", n=2)]
    batched = [o.data for o in cal.generate(items("coin", seed=2, n=3) + items("blip", n=2))][3:]
    for a, b in zip(alone, batched):
        assert np.array_equal(a, b)


def test_files_carry_the_labels_and_the_audible_cue(gen):
    from plugins.sfx.encode import audible_cue, encode_ogg, encode_wav

    (out,) = gen.generate(items("siren"))
    meta = {"job": "j1", "index": "0", "command": "sfx", "model": "sfx-specgan", "label": "AI-generated"}
    for encode, fmt in ((encode_ogg, "ogg"), (encode_wav, "wav")):
        marked = encode(out, sdk.EncodeContext(meta=meta, visible_mark=True))
        plain = encode(out, sdk.EncodeContext(meta=meta, visible_mark=False))
        got = read_labels(marked)
        assert (got["format"], got["ai_generated"]) == (fmt, True)
        assert got["provenance"]["job"] == "j1" and got["aigc"]["Label"] == "1"
        assert read_labels(plain)["ai_generated"] is True  # metadata labels are there either way
        a, rate = soundfile.read(io.BytesIO(marked), dtype="float32")
        b, _ = soundfile.read(io.BytesIO(plain), dtype="float32")
        assert rate == 16000 and len(a) - len(b) == len(audible_cue()) and abs(len(b) - 16384) < 400
        # the cue's pips are there, at 1760 Hz, in the marked file only
        def pip_level(x):
            seg = x[:960]
            spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
            return float(spec[round(1760 * len(seg) / 16000)] / (spec.sum() + 1e-9))
        assert pip_level(a) > 10 * pip_level(b)
    assert soundfile.info(io.BytesIO(encode_ogg(out, sdk.EncodeContext(meta=meta)))).subtype == "OPUS"


@pytest.fixture
async def sfx_engine(engine_factory):
    return await engine_factory(plugins_enabled=["sfx"])


async def _artifact(h, art) -> bytes:
    r = await h.client.get(art["url"], headers=h.headers)
    assert r.status == 200 and r.content_type == art["mime"]
    return await r.read()


def _where_they_differ(x: np.ndarray, y: np.ndarray) -> str:
    """What a determinism failure needs to be diagnosed: shapes, how many samples, where, how far."""
    if x.shape != y.shape:
        return f"shapes differ: {x.shape} vs {y.shape}"
    idx = np.flatnonzero(x != y)
    return (f"{len(idx)} of {x.size} samples differ, first {idx[:5].tolist()}, last {idx[-5:].tolist()}, "
            f"max |diff| {np.abs(x - y).max():.3g}")


async def test_engine_serves_verifies_and_refuses(sfx_engine):
    h = sfx_engine
    r = await h.client.get("/v1/catalog", headers=h.headers)
    cat = await r.json()
    (cmd,) = [c for p in cat["plugins"] for c in p["commands"] if c["name"] == "sfx"]
    assert cmd["modality"] == "sfx"
    body = {"command": "sfx", "options": {"kind": "coin"}, "seed": 5, "count": 2,
            "requester": {"platform": "test", "user": "u1"}}
    job = await h.wait_done((await h.submit(body))["id"])
    assert job["status"] == "done" and len(job["artifacts"]) == 2
    assert {a["presentation"] for a in job["artifacts"]} == {"audio"}
    data = [await _artifact(h, a) for a in job["artifacts"]]
    labels = read_labels(data[0])
    assert labels["ai_generated"] and labels["provenance"]["command"] == "sfx"
    r = await h.client.post("/v1/verify", data=data[1], headers=h.headers)
    v = await r.json()
    assert r.status == 200 and v["made_here"] is True and v["ledger"][0]["job"] == job["id"]
    # the same (command, options, seed) batched with other work decodes to the same audio
    # (the files differ: each names its own job)
    jobs = await asyncio.gather(*[h.submit({**body, "seed": 50 + i, "count": 3}) for i in range(2)],
                                h.submit({**body, "idempotency_key": "again"}))
    done = await h.wait_done(jobs[-1]["id"])
    assert done["id"] != job["id"]
    for a, b in zip(data, [await _artifact(h, x) for x in done["artifacts"]]):
        x, y = soundfile.read(io.BytesIO(a))[0], soundfile.read(io.BytesIO(b))[0]
        assert np.array_equal(x, y), _where_they_differ(x, y)
    # WAV on request: the same sound (PCM), a labelled RIFF file, signed and recorded
    wav = await h.wait_done((await h.submit({**body, "options": {"kind": "coin", "format": "wav"},
                                              "idempotency_key": "wav"}))["id"])
    art = wav["artifacts"][0]
    assert art["mime"] == "audio/wav" and art["filename"].endswith(".wav")
    wav_bytes = await _artifact(h, art)
    assert wav_bytes[:4] == b"RIFF" and read_labels(wav_bytes)["ai_generated"]
    pcm, rate = soundfile.read(io.BytesIO(wav_bytes))
    from plugins.sfx.encode import audible_cue

    assert rate == 16000 and pcm.shape == (len(audible_cue()) + 16384,)  # the cue, then 1 s of sound
    r = await h.client.post("/v1/verify", data=wav_bytes, headers=h.headers)
    assert (await r.json())["made_here"] is True
    # bad input: 422 naming the field and the rule
    for options, field in (({"kind": "kazoo"}, "options.kind"), ({"kind": "coin", "variety": 2}, "options.variety"),
                           ({}, "options.kind"), ({"kind": "coin", "format": "mp3"}, "options.format")):
        r = await h.client.post("/v1/jobs", json={**body, "options": options}, headers=h.headers)
        err = (await r.json())["error"]
        assert r.status == 422 and err["field"] == field, err


async def test_follow_ups_through_the_engine(sfx_engine):
    h = sfx_engine
    body = {"command": "sfx", "options": {"kind": "laser"}, "seed": 9, "requester": {"platform": "test", "user": "u"}}
    parent = await h.wait_done((await h.submit(body))["id"])
    reroll = await h.wait_done((await h.submit({**body, "parent": {"job": parent["id"], "action": "reroll"}}))["id"])
    var = await h.wait_done((await h.submit({**body, "parent": {"job": parent["id"], "action": "variations",
                                                                 "index": 0}}))["id"])
    shas = {parent["artifacts"][0]["sha256"], reroll["artifacts"][0]["sha256"], var["artifacts"][0]["sha256"]}
    assert reroll["status"] == var["status"] == "done" and len(shas) == 3


async def test_backpressure_429_and_everything_accepted_finishes(engine_factory):
    h = await engine_factory(plugins_enabled=["sfx"], queue_max=4)
    body = {"command": "sfx", "options": {"kind": "blip"}, "count": 4, "requester": {"platform": "test", "user": "u"}}
    answers = []
    for i in range(5):
        r = await h.client.post("/v1/jobs", json={**body, "seed": i}, headers=h.headers)
        answers.append((r.status, await r.json(), r.headers.get("Retry-After")))
    refused = [a for a in answers if a[0] == 429]
    accepted = [a for a in answers if a[0] == 202]
    assert refused and accepted and len(refused) + len(accepted) == 5
    assert all(a[1]["error"]["code"] == "queue_full" and int(a[2]) >= 1 for a in refused)
    for _, job, _ in accepted:
        done = await h.wait_done(job["id"])
        assert done["status"] == "done" and len(done["artifacts"]) == 4

"""POST /v1/verify (what a file's labels and the provenance ledger say; the bot's /verify
uses it) and the escalation signal on the refusal that blocks a requester."""
from __future__ import annotations

import io

from PIL import Image


async def test_verify_route_reports_ledger_and_labels(probe_engine):
    h, _ = probe_engine
    done = await h.wait_done((await h.submit({"command": "probe", "options": {"text": "ok"}, "seed": 3}))["id"])
    data = await (await h.client.get(done["artifacts"][0]["url"], headers=h.headers)).read()
    r = await h.client.post("/v1/verify", headers={**h.headers, "Content-Type": "application/octet-stream"},
                            data=data)
    report = await r.json()
    assert r.status == 200 and report["finding"] == "recorded" and report["made_here"] is True
    assert done["id"] in report["summary"] and report["ai_generated"] is True
    # Metadata stripped, same pixels: still found by content.
    stripped = io.BytesIO()
    Image.open(io.BytesIO(data)).save(stripped, format="PNG")
    report = await (await h.client.post("/v1/verify", headers=h.headers, data=stripped.getvalue())).json()
    assert report["finding"] == "recorded_same_content" and report["made_here"] is True
    # A photo from elsewhere.
    other = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(other, format="PNG")
    report = await (await h.client.post("/v1/verify", headers=h.headers, data=other.getvalue())).json()
    assert (report["finding"], report["made_here"], report["ai_generated"]) == ("unknown", False, False)


async def test_verify_route_errors_name_the_body(probe_engine, monkeypatch):
    h, _ = probe_engine
    r = await h.client.post("/v1/verify", headers=h.headers, data=b"")
    err = (await r.json())["error"]
    assert r.status == 422 and err["field"] == "body"
    import engine.server

    monkeypatch.setattr(engine.server, "VERIFY_MAX_BYTES", 1000)
    r = await h.client.post("/v1/verify", headers=h.headers, data=b"x" * 1001)
    err = (await r.json())["error"]
    assert r.status == 413 and err["code"] == "body_too_large" and err["field"] == "body"
    r = await h.client.post("/v1/verify", data=b"x")
    assert r.status == 401


async def test_the_refusal_that_blocks_says_so(probe_engine):
    h, _ = probe_engine
    body = {"command": "probe", "options": {"text": "gore"}, "requester": {"user": "troll2"}}
    seen = []
    for _ in range(3):
        r = await h.client.post("/v1/jobs", headers=h.headers, json=body)
        seen.append(((await r.json())["error"].get("escalation"), r.headers.get("Retry-After")))
    assert seen[0] == (None, None) and seen[1] == (None, None)
    assert seen[2][0] == "blocked" and int(seen[2][1]) > 60


async def test_hostile_files_get_an_answer_not_a_5xx(probe_engine):
    """Issue 18: nested JSON, an oversize image, an endless Ogg packet, a 30 MiB label."""
    from tests.provenance import hostile_files as hf

    h, _ = probe_engine
    answers = {}
    for name in ("png_nested_json", "wav_nested_json", "png_8192", "ogg_endless_packet", "png_big_itxt"):
        r = await h.client.post("/v1/verify", headers=h.headers, data=hf.HOSTILE[name]())
        assert r.status == 200, (name, await r.text())
        answers[name] = await r.json()
        assert len(await r.read()) < 300_000
    assert "JSON nested too deeply" in answers["png_nested_json"]["labels"]["malformed"][0]
    assert "JSON nested too deeply" in answers["wav_nested_json"]["labels"]["malformed"][0]
    big = answers["png_8192"]
    assert big["content_check"].startswith("skipped: image is 8192x8192") and "not compared" in big["summary"]
    assert "over 4194304 bytes" in answers["ogg_endless_packet"]["labels"]["error"]
    assert "over 131072 bytes, not read" in answers["png_big_itxt"]["labels"]["malformed"][0]


async def test_verify_answers_json_when_verification_itself_fails(probe_engine, monkeypatch):
    # Whatever a parser still misses must not surface as a 500 (issue 18): a 422 naming the body.
    import engine.provenance

    h, _ = probe_engine

    def broken(*args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(engine.provenance, "verify", broken)
    r = await h.client.post("/v1/verify", headers=h.headers, data=b"\x89PNG\r\n\x1a\n")
    err = (await r.json())["error"]
    assert r.status == 422 and err["code"] == "unreadable_file" and err["field"] == "body"


async def test_at_most_two_uploads_are_verified_at_once(probe_engine, monkeypatch):
    # Six 32 MiB uploads at once must not mean six bodies and six parses in memory (issue 18).
    import asyncio
    import threading
    import time as _time

    import engine.provenance

    h, _ = probe_engine
    running, peak, lock = 0, 0, threading.Lock()
    real = engine.provenance.verify

    def counting(*args, **kwargs):
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        _time.sleep(0.2)  # hold the slot long enough for the others to queue up behind it
        with lock:
            running -= 1
        return real(*args, **kwargs)

    monkeypatch.setattr(engine.provenance, "verify", counting)
    answers = await asyncio.gather(*(h.client.post("/v1/verify", headers=h.headers, data=b"not a file %d" % i)
                                     for i in range(6)))
    assert [r.status for r in answers] == [200] * 6
    assert peak == 2

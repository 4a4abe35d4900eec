"""The engine client against real aiohttp servers (FakeEngineHTTP) on 127.0.0.1."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest

from bot.engine_client import (
    EngineClient, EngineUnavailable, InvalidOption, JobFailed, NotFound, PromptRefused, QueueFull, RetryPolicy,
    Timeouts, Unauthorized,
)
from engine.protocol import AutocompleteRequest, JobRequest, JobStatus
from fake_engine_http import FakeEngineHTTP, unused_port_url

TOKEN = FakeEngineHTTP.token
FAST = RetryPolicy(attempts=3, backoff_s=0.01, max_backoff_s=0.05)
QUICK = Timeouts(connect_s=1.0, request_s=0.5, events_idle_s=0.5, health_s=0.5)


def request(key: str | None = "interaction-1") -> JobRequest:
    return JobRequest(command="emoji", options={"prompt": "cat"}, idempotency_key=key)


@pytest.fixture
async def engines() -> AsyncIterator[list[FakeEngineHTTP]]:
    started = [FakeEngineHTTP(name="a"), FakeEngineHTTP(name="b")]
    for e in started:
        await e.start()
    yield started
    for e in started:
        await e.stop()


def client(*urls: str, token: str = TOKEN, **kw) -> EngineClient:
    kw.setdefault("timeouts", QUICK)
    kw.setdefault("retry", FAST)
    kw.setdefault("health_interval_s", 0)  # no background probe unless a test wants one
    return EngineClient(list(urls), token, **kw)


async def test_catalog_with_bearer_token(engines) -> None:
    a, _ = engines
    async with client(a.url) as c:
        catalog = await c.catalog()
    assert catalog.plugins[0].commands[0].name == "emoji" and catalog.hash == "abc123"
    assert a.requests[-1].authorization == f"Bearer {TOKEN}"


async def test_fails_over_when_an_engine_is_down(engines) -> None:
    _, b = engines
    dead = unused_port_url()
    async with client(dead, b.url) as c:
        assert (await c.catalog()).hash == "abc123"
        assert [h.healthy for h in c.engines] == [False, True]
        submitted = await c.submit(request())
        assert submitted.engine_url == b.url and submitted.id in b.jobs
        await c.catalog()  # the dead engine is now tried last, not first
    assert len(b.calls("GET", "/v1/catalog")) == 2


async def test_jobs_stick_to_the_engine_that_accepted_them(engines) -> None:
    a, b = engines
    async with client(a.url, b.url) as c:
        first = await c.submit(request("k1"))
        assert first.engine_url == a.url
        assert (await c.job(first.id)).id == first.id
        await a.stop()
        with pytest.raises(EngineUnavailable):
            await c.job(first.id)  # b does not know it; asking b would be wrong
        assert b.calls("GET", "/v1/jobs") == []
        second = await c.submit(request("k2"))
        assert second.engine_url == b.url


async def test_after_a_restart_the_client_finds_the_job_or_is_told_where(engines) -> None:
    a, b = engines
    async with client(a.url, b.url) as c:
        job_id = (await c.submit(request())).id
    b.jobs[job_id + "-b"] = b.view(job_id + "-b", "done")
    async with client(a.url, b.url) as fresh:
        assert (await fresh.job(job_id + "-b")).status is JobStatus.done  # asked a (404), then b
        assert fresh.engine_of(job_id + "-b") == b.url
    async with client(a.url, b.url) as told:
        await told.job(job_id, engine_url=a.url)
        with pytest.raises(NotFound):
            await told.job("nobody-has-this")


async def test_background_probe_steers_away_from_an_unready_engine(engines) -> None:
    a, b = engines
    a.ready = False
    async with client(a.url, b.url, health_interval_s=0.02) as c:
        for _ in range(200):
            if not c.engines[0].healthy:
                break
            await asyncio.sleep(0.01)
        assert [h.healthy for h in c.engines] == [False, True]
        assert (await c.submit(request())).engine_url == b.url
        a.ready = True
        for _ in range(200):
            if c.engines[0].healthy:
                break
            await asyncio.sleep(0.01)
        assert (await c.submit(request("k-again"))).engine_url == a.url
    assert len(a.calls("POST", "/v1/jobs")) == 1
    assert all(r.authorization is None for r in a.calls("GET", "/readyz"))  # no token to health checks


async def test_a_lost_answer_is_retried_with_the_same_key_and_makes_one_job(engines) -> None:
    a, b = engines
    a.submit_script = ["stall"]
    a.stall_s = 2.0
    async with client(a.url, b.url, timeouts=Timeouts(request_s=0.3)) as c:
        submitted = await c.submit(request(key=None))
    posts = a.calls("POST", "/v1/jobs")
    assert len(posts) == 2 and posts[0].body["idempotency_key"] == posts[1].body["idempotency_key"]
    assert posts[0].body["idempotency_key"] == submitted.idempotency_key  # made by the client
    assert list(a.jobs) == [submitted.id] and b.requests == []  # one job, not failed over


async def test_a_dropped_connection_and_a_503_are_retried_on_the_same_engine(engines) -> None:
    a, b = engines
    a.submit_script = ["drop", "503"]
    async with client(a.url, b.url) as c:
        submitted = await c.submit(request())
    assert len(a.calls("POST", "/v1/jobs")) == 3 and len(a.jobs) == 1 and submitted.engine_url == a.url
    assert b.calls("POST", "/v1/jobs") == []


async def test_giving_up_says_engine_unavailable_with_a_retry_hint(engines) -> None:
    a, _ = engines
    a.submit_script = ["503", "503", "503"]
    async with client(a.url) as c:
        with pytest.raises(EngineUnavailable) as err:
            await c.submit(request())
    assert err.value.retry_after_s == 1.0 and "after 3 attempts" in str(err.value)
    async with client(unused_port_url(), health_interval_s=4) as c:
        with pytest.raises(EngineUnavailable) as down:
            await c.catalog()
    assert down.value.retry_after_s == 4 and "ClientConnectorError" in str(down.value)


async def test_queue_full_maps_to_queue_full_with_retry_after(engines) -> None:
    a, b = engines
    a.submit_script = ["429"]
    async with client(a.url, b.url) as c:
        with pytest.raises(QueueFull) as err:
            await c.submit(request())
    assert err.value.retry_after_s == 7 and err.value.status == 429 and err.value.code == "queue_full"
    assert len(a.calls("POST", "/v1/jobs")) == 1 and b.requests == []  # not retried elsewhere


async def test_422_maps_to_invalid_option_and_prompt_refused(engines) -> None:
    a, _ = engines
    a.submit_script = ["invalid", "refuse"]
    async with client(a.url) as c:
        with pytest.raises(InvalidOption) as bad:
            await c.submit(request("k1"))
        with pytest.raises(PromptRefused) as refused:
            await c.submit(request("k2"))
    assert bad.value.field == "options.steps" and bad.value.rule == "must be at most 50"
    assert refused.value.rule == "global.violence" and refused.value.category == "violence"
    assert len(a.calls("POST", "/v1/jobs")) == 2  # client errors are not retried


async def test_wrong_token_is_unauthorized_and_never_shown(engines, caplog) -> None:
    a, _ = engines
    wrong = "wrong-token-must-not-leak-42"
    caplog.set_level(logging.DEBUG)
    async with client(a.url, token=wrong) as c:
        with pytest.raises(Unauthorized) as err:
            await c.catalog()
        assert wrong not in repr(c) and "**********" in repr(c)
    assert "AIGC_ENGINE_TOKEN" in str(err.value) and wrong not in str(err.value) and wrong not in repr(err.value)
    # and the right token appears nowhere in the logs of failing calls either
    a.submit_script = ["503", "503", "503", "invalid"]
    async with client(unused_port_url(), a.url) as c:
        with pytest.raises(EngineUnavailable) as unavailable:
            await c.submit(request())
        with pytest.raises(InvalidOption) as invalid:
            await c.submit(request("k2"))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert logged and TOKEN not in logged and wrong not in logged
    assert TOKEN not in str(unavailable.value) and TOKEN not in str(invalid.value)


async def test_events_are_parsed_in_order_until_done(engines) -> None:
    a, _ = engines
    async with client(a.url) as c:
        job_id = (await c.submit(request())).id
        events = [(e.event, e.job.status.value, e.job.progress) async for e in c.events(job_id)]
        assert events == [("queued", "queued", 0.0), ("running", "running", 0.0), ("progress", "running", 0.5),
                          ("done", "done", 1.0)]
        view = await c.job(job_id)
        assert await c.artifact(view.artifacts[0].id) == f"PNG-bytes-of-{job_id}@a".encode()


async def test_a_broken_stream_is_reopened(engines) -> None:
    a, _ = engines
    a.event_script = [("queued", "queued", 0.0), ("drop", "", 0.0), ("running", "running", 0.3),
                      ("done", "done", 1.0)]
    async with client(a.url) as c:
        job_id = (await c.submit(request())).id
        done = await c.wait(job_id)
    assert done.status is JobStatus.done and a.streams_opened == 2
    assert [r.path for r in a.requests if r.method == "GET"] == [  # checked between streams
        f"/v1/jobs/{job_id}/events", f"/v1/jobs/{job_id}", f"/v1/jobs/{job_id}/events"]


async def test_a_quiet_stream_is_checked_and_a_stopped_engine_ends_the_wait(engines) -> None:
    a, _ = engines
    a.event_script = [("queued", "queued", 0.0)]  # then silence
    a.event_delay_s = 10
    async with client(a.url, timeouts=Timeouts(events_idle_s=0.2, request_s=0.5)) as c:
        job_id = (await c.submit(request())).id
        seen = []
        async with asyncio.timeout(5):
            async for ev in c.events(job_id):
                seen.append(ev.event)
                if ev.event == "queued":
                    a.jobs[job_id] = a.view(job_id, "done")  # finishes while the stream says nothing
        assert seen == ["queued", "done"] and a.streams_opened == 1
        assert [r.path for r in a.requests if r.method == "GET"] == [f"/v1/jobs/{job_id}/events", f"/v1/jobs/{job_id}"]
        a.event_script = [("queued", "queued", 0.0)]
        a.jobs[job_id] = a.view(job_id, "running")
        await a.stop()  # the engine goes away while the stream is quiet
        with pytest.raises(EngineUnavailable):
            async with asyncio.timeout(5):
                await c.wait(job_id)


async def test_failed_and_cancelled_jobs_raise_job_failed(engines) -> None:
    a, _ = engines
    a.event_script = [("running", "running", 0.0), ("failed", "failed", 0.0)]
    async with client(a.url) as c:
        job_id = (await c.submit(request())).id
        with pytest.raises(JobFailed) as err:
            await c.wait(job_id)
        assert err.value.code == "generation_failed" and err.value.job.id == job_id
        other = (await c.submit(request("k2"))).id
        assert (await c.cancel(other)).status is JobStatus.cancelled
        with pytest.raises(JobFailed, match="cancelled"):
            await c.wait(other)


async def test_slow_engine_times_out_within_the_bound(engines) -> None:
    a, _ = engines
    async with client(a.url) as c:
        job_id = (await c.submit(request())).id
        a.get_stall_s = 5
        started = time.monotonic()
        with pytest.raises(EngineUnavailable, match="TimeoutError"):
            await c.job(job_id)
        elapsed = time.monotonic() - started
    assert 1.4 < elapsed < 2.5  # 3 attempts of 0.5 s, short pauses


async def test_artifact_is_fetched_from_the_engine_that_made_it(engines) -> None:
    a, b = engines
    b.jobs["jb"] = b.view("jb", "done")
    async with client(a.url, b.url) as c:  # a fresh client that knows neither job nor artifact
        assert await c.artifact("jb-a0") == b"PNG-bytes-of-jb@b"
        assert c.engine_of("artifact:jb-a0") == b.url
        with pytest.raises(NotFound):
            await c.artifact("gone")


async def test_autocomplete_and_moderate(engines) -> None:
    a, _ = engines
    async with client(a.url) as c:
        choices = await c.autocomplete(AutocompleteRequest(command="emoji", option="prompt", value="fat"))
        verdict = await c.moderate("Kill it", guild="1")
        fine = await c.moderate("a cat", guild="1", rules={"keywords": []})
    assert choices.choices[0].value == "fat cat"
    assert (verdict.allowed, verdict.rule, verdict.category, verdict.normalized) == (
        False, "global.violence", "violence", "kill it")
    assert fine.allowed and a.calls("POST", "/v1/moderate")[1].body["rules"] == {"keywords": []}


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        EngineClient([], None)
    with pytest.raises(ValueError, match="must start with http"):
        EngineClient("ftp://user:pw@host/x", None)
    c = EngineClient("http://a:1/, http://b:2", "t")
    assert [h.url for h in c.engines] == ["http://a:1", "http://b:2"]
    with pytest.raises(ValueError, match="not one of the configured engines"):
        c.remember("j", "http://c:3")


def test_client_from_bot_settings() -> None:
    from bot.config import load_bot_settings

    s = load_bot_settings(engine_url="http://e1:1,http://e2:2", engine_token="tok-from-settings",
                          engine_timeout_s=12, engine_health_s=3)
    c = EngineClient.from_settings(s)
    assert [h.url for h in c.engines] == ["http://e1:1", "http://e2:2"]
    assert c.timeouts.request_s == 12 and c.health_interval_s == 3
    assert c._headers() == {"Authorization": "Bearer tok-from-settings"} and "tok-from" not in repr(c)

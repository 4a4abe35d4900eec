"""The bot's /healthz and Prometheus /metrics, served by the runner next to the real bot."""
from __future__ import annotations

import socket

import aiohttp
from prometheus_client.parser import text_string_to_metric_families


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _with_http(world) -> str:
    port = _free_port()
    await world.stop_bot()
    world.bot_settings = world.bot_settings.model_copy(update={"http_port": port})
    await world.start_bot()
    return f"http://127.0.0.1:{port}"


async def _get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return r.status, r.headers.get("Content-Type", ""), await r.text()


async def _samples(base: str) -> dict[tuple[str, tuple], float]:
    status, ctype, text = await _get(base + "/metrics")
    assert status == 200 and ctype.startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def _count(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_interactions_by_command_and_outcome(world):
    base = await _with_http(world)
    before = await _samples(base)
    assert _count(before, "aigc_bot_interactions_total", command="emoji", outcome="ok") == 0
    assert ("aigc_bot_gateway_latency_seconds", ()) in before
    await world.result(await world.slash("emoji", {"prompt": "cat", "seed": 1}))
    await world.bot.scoped.set("commands", {"emoji": False}, guild_id=str(world.guild))
    await world.error(await world.slash("emoji", {"prompt": "cat"}))
    await world.emu.wait_messages(await world.slash("quota"), 1, timeout=15)

    async def moved():
        s = await _samples(base)
        return s if _count(s, "aigc_bot_interactions_total", command="quota", outcome="ok") else None
    after = await world.eventually(moved)
    assert after, "the /quota interaction was not counted"
    assert _count(after, "aigc_bot_interactions_total", command="emoji", outcome="ok") == 1
    assert _count(after, "aigc_bot_interactions_total", command="emoji", outcome="refused") == 1


async def test_a_non_moderator_is_counted_as_denied(world):
    from tests.e2e.test_moderation import open_command_to_everyone

    base = await _with_http(world)
    open_command_to_everyone(world, "mod")
    await world.emu.wait_messages(await world.slash("mod audit"), 1, timeout=15)

    async def denied():
        s = await _samples(base)
        return _count(s, "aigc_bot_interactions_total", command="mod audit", outcome="denied")
    assert await world.eventually(denied) == 1


async def test_healthz_is_503_when_the_engine_is_down_and_200_when_back(world):
    base = await _with_http(world)
    status, ctype, body = await _get(base + "/healthz")
    assert status == 200 and ctype.startswith("application/json"), body
    assert '"connected": true' in body and '"reachable": true' in body
    await world.engine.stop()
    status, _, body = await _get(base + "/healthz")
    assert status == 503 and '"reachable": false' in body and '"connected": true' in body
    # an interaction meanwhile fails with an engine-client error, counted by kind
    await world.error(await world.slash("emoji", {"prompt": "cat"}), timeout=60)
    samples = await _samples(base)
    assert _count(samples, "aigc_bot_engine_errors_total", kind="EngineUnavailable") >= 1
    assert _count(samples, "aigc_bot_interactions_total", command="emoji", outcome="engine_error") == 1
    await world.engine.start()
    status, _, body = await _get(base + "/healthz")
    assert status == 200, body


async def test_healthz_is_503_when_the_gateway_is_gone(world):
    base = await _with_http(world)
    assert (await _get(base + "/healthz"))[0] == 200
    await world.running.bot.close()  # disconnects; the HTTP server is the runner's and stays up
    status, _, body = await _get(base + "/healthz")
    assert status == 503 and '"connected": false' in body

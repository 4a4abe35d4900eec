"""Shared fixtures: a real engine served over loopback HTTP."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

import engine  # noqa: F401  first: pins MKL_CBWR before any test module loads torch (engine/__init__.py)

os.environ.setdefault("AIGC_LOG_FORMAT", "text")

TOKEN = "test-token-0123456789"


@dataclass
class EngineHarness:
    engine: Any
    client: TestClient
    headers: dict[str, str]

    async def submit(self, body: dict, expect: int = 202, **kw) -> dict:
        r = await self.client.post("/v1/jobs", json=body, headers=self.headers, **kw)
        data = await r.json()
        assert r.status == expect, data
        return data

    async def wait_done(self, job_id: str) -> dict:
        r = await self.client.get(f"/v1/jobs/{job_id}/events", headers=self.headers)
        assert r.status == 200
        last = None
        async for line in r.content:
            if line.startswith(b"data: "):
                import json
                last = json.loads(line[6:])
        assert last is not None
        return last


@pytest.fixture
async def engine_factory(tmp_path):
    """Start engines (with optional extra in-process plugins); all are stopped at the end."""
    from engine.config import load_engine_settings
    from engine.server import build_app
    from engine.service import Engine

    started: list[TestClient] = []

    async def start(extra_plugins=None, **settings) -> EngineHarness:
        settings.setdefault("data_dir", tmp_path / "engine-data")
        settings.setdefault("warmup", False)
        engine = Engine(load_engine_settings(**settings), extra_plugins=extra_plugins)
        client = TestClient(TestServer(build_app(engine, TOKEN), host="127.0.0.1"))
        await client.start_server()
        started.append(client)
        return EngineHarness(engine, client, {"Authorization": f"Bearer {TOKEN}"})

    yield start
    for client in started:  # stops each engine through the app's cleanup context
        await client.close()


@pytest.fixture
async def probe_engine(engine_factory) -> AsyncIterator[tuple[EngineHarness, Any]]:
    from tests.engine.probe_plugin import make_probe_plugin

    plugin, gen = make_probe_plugin()
    h = await engine_factory(extra_plugins=[plugin], builtin_plugins=False)
    yield h, gen
    gen.gate.set()


@pytest.fixture
async def emoji_engine(engine_factory) -> EngineHarness:
    return await engine_factory(plugins_enabled=["emoji"])

"""The bot's own HTTP server: ``/healthz`` (gateway connected and an engine reachable) and
Prometheus ``/metrics``. Started by ``bot.runner.start_bot`` on AIGC_BOT_HTTP_HOST:PORT."""
from __future__ import annotations

import logging
from typing import Any

import discord
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.engine_client import redact_url
from bot.services import Services

log = logging.getLogger("aigc.bot.health")


def gateway_state(bot: discord.Client) -> dict[str, Any]:
    shards = getattr(bot, "shards", {}) or {}
    connected = bot.is_ready() and not bot.is_closed() and all(not s.is_closed() for s in shards.values())
    latency = bot.latency
    return {"connected": connected, "latency_s": round(latency, 4) if latency == latency and connected else None,
            "shards": len(shards)}


async def engine_state(services: Services) -> dict[str, Any]:
    engines = await services.engine.probe()  # GET /readyz of each engine, bounded by its health timeout
    return {"reachable": any(h.healthy for h in engines),
            "engines": [{"url": redact_url(h.url), "healthy": h.healthy, "detail": h.detail} for h in engines]}


def build_app(services: Services) -> web.Application:
    async def healthz(request: web.Request) -> web.Response:
        gateway = gateway_state(services.client)
        try:
            engine = await engine_state(services)
        except Exception as e:  # not started yet, or closed
            engine = {"reachable": False, "error": type(e).__name__}
        ok = gateway["connected"] and engine["reachable"]
        return web.json_response({"status": "ok" if ok else "unavailable", "gateway": gateway, "engine": engine},
                                 status=200 if ok else 503)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=services.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


class HealthServer:
    def __init__(self, services: Services, host: str, port: int):
        self.services, self.host, self.port = services, host, port
        self._runner: web.AppRunner | None = None

    async def start(self) -> HealthServer:
        self._runner = web.AppRunner(build_app(self.services), access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.host, self.port).start()
        except OSError as e:
            await self.stop()
            raise OSError(e.errno, f"AIGC_BOT_HTTP_HOST/PORT: cannot listen on {self.host}:{self.port}: "
                                   f"{e.strerror}") from None
        log.info("health and metrics on http://%s:%d/healthz, /metrics", self.host, self.port)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

"""The web playground: one static page (vanilla JS) driven by the /_control API."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).with_name("static")


async def _page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "playground.html", headers={"Cache-Control": "no-store"})


def playground_routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/playground", _page),
        web.static("/playground/static", STATIC),
    ]

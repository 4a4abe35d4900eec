"""The web playground: one static page (vanilla JS) driven by the /_control API."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).with_name("static")


async def _page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "playground.html", headers={"Cache-Control": "no-store"})


async def _favicon(request: web.Request) -> web.FileResponse:
    # Browsers ask for /favicon.ico whatever the page says; answer with the page's SVG icon.
    return web.FileResponse(STATIC / "favicon.svg", headers={"Content-Type": "image/svg+xml",
                                                             "Cache-Control": "max-age=86400"})


def playground_routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/playground", _page),
        web.get("/favicon.ico", _favicon),
        web.static("/playground/static", STATIC),
    ]

"""JSON responses with Content-Type exactly ``application/json`` (no charset: discord.py
compares the header string) and 204s without a body or content type."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

# The JSON a response carried, for the call recorder.
JSON_KEY: web.ResponseKey[Any] = web.ResponseKey("emulator_json", object)  # type: ignore[arg-type]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    body = json.dumps(data, separators=(",", ":")).encode()
    resp = web.Response(body=body, status=status, headers={**(headers or {}), "Content-Type": "application/json"})
    resp[JSON_KEY] = data
    return resp


def no_content(headers: dict[str, str] | None = None) -> web.Response:
    resp = web.Response(status=204, headers=headers or {})
    resp[JSON_KEY] = None
    return resp

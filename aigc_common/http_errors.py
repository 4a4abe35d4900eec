"""JSON bodies for the requests aiohttp refuses before any handler runs.

aiohttp's HTTP parser answers a request it cannot read (a control character in a header, a
line over 8 KiB, not HTTP at all) with a plain-text 400 built in
``RequestHandler.handle_error``, outside every middleware; so do its 500 and 504 for errors
that escape the application. Our services promise a JSON error body for every refusal
(``{"error": {"code", "message", "field"}}``, as engine/server.py's ``error_response``), so
``install()`` wraps that one method: aiohttp still logs (through
``aigc_common.logs.MalformedRequestFilter``) and still closes the connection; only the body
changes. The message names the parser's error class, never the bytes it refused (a malformed
line can hold a bearer token).

Process-wide on purpose: every aiohttp server we run (engine, worker, bot health, emulator)
owes its callers the same shape, and aiohttp offers no public hook for this response."""
from __future__ import annotations

from http import HTTPStatus

from aiohttp import web, web_protocol

_MARK = "_aigc_json_errors"


def _body(status: int, exc: BaseException | None) -> dict:
    if status < 500:
        what = type(exc).__name__ if exc is not None else HTTPStatus(status).phrase
        return {"code": "bad_request", "field": "request",
                "message": f"request: could not be read as HTTP/1.1 ({what}); nothing was done"}
    if status == HTTPStatus.GATEWAY_TIMEOUT:
        return {"code": "timeout", "field": None, "message": "the request took too long; retry"}
    return {"code": "internal_error", "field": None, "message": "internal error; it was logged"}


def install() -> None:
    """Make aiohttp's own error responses JSON (idempotent)."""
    handler = web_protocol.RequestHandler
    if getattr(handler.handle_error, _MARK, False):
        return
    original = handler.handle_error

    def handle_error(self, request, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        original(self, request, status, exc, message)  # logs; raises if a response is already under way
        resp = web.json_response({"error": _body(status, exc)}, status=status)
        resp.force_close()
        return resp

    setattr(handle_error, _MARK, True)
    handler.handle_error = handle_error

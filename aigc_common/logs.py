"""Structured log lines (one JSON object per line) for long-running services."""
from __future__ import annotations

import json
import logging
import sys
import time

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": round(record.created, 3), "level": record.levelname.lower(),
               "logger": record.name, "msg": record.getMessage()}
        out.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={v}" for k, v in record.__dict__.items() if k not in _STANDARD)
        base = f"{time.strftime('%H:%M:%S', time.localtime(record.created))} {record.levelname:<7} " \
               f"{record.name}: {record.getMessage()}"
        text = f"{base} {extra}".rstrip()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class MalformedRequestFilter(logging.Filter):
    """aiohttp logs a request it cannot parse (a header line over 8 KiB, a control character,
    not HTTP at all) as an error with a traceback whose message quotes the offending bytes; an
    ``Authorization: Bearer …`` line among them puts the engine's token in our logs, and any
    client can fill them with tracebacks. Such a record becomes one line: the error's class,
    status and the peer, no bytes. (The client gets aiohttp's 400 either way.)"""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or not any(c.__module__ == "aiohttp.http_exceptions" for c in type(exc).__mro__):
            return True
        record.remote = record.args[0] if isinstance(record.args, tuple) and record.args else None
        record.msg, record.args = "malformed HTTP request refused", ()
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.error, record.status = type(exc).__name__, getattr(exc, "code", 400)
        return True


def setup_logging(fmt: str = "json", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequestFilter) for f in server.filters):
        server.addFilter(MalformedRequestFilter())
    from aigc_common import http_errors  # aiohttp's own refusals answer JSON too

    http_errors.install()

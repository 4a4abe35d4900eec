from __future__ import annotations

import email.utils
import time

from hypothesis import given, settings, strategies as st

from bot.engine_client import SSEMessage, SSEParser, parse_retry_after, redact_url

STREAM = (
    "\ufeff: keep-alive\r\n"
    "event: queued\r\ndata: {\"a\": 1}\r\n\r\n"
    "data: first line\ndata: second line\nid: 7\nretry: 1500\n\n"
    "event: progress\rdata:no-space\r\r"
    "event: ignored-without-data\n\n"
    "data\n\n"
    "unknown: field\ndata:  two spaces\n\n"
    "event: done\ndata: ünïcødé ✓\n\n"
    "data: unterminated"
)
EXPECTED = [
    SSEMessage("queued", '{"a": 1}'),
    SSEMessage("message", "first line\nsecond line", id="7", retry_ms=1500),
    SSEMessage("progress", "no-space", id="7", retry_ms=1500),
    SSEMessage("message", "", id="7", retry_ms=1500),
    SSEMessage("message", " two spaces", id="7", retry_ms=1500),
    SSEMessage("done", "ünïcødé ✓", id="7", retry_ms=1500),
]


def test_parser_follows_the_event_stream_rules() -> None:
    assert SSEParser().feed(STREAM.encode()) == EXPECTED


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(STREAM.encode()) - 1), max_size=40))
def test_any_chunking_gives_the_same_events(cuts: list[int]) -> None:
    raw = STREAM.encode()
    bounds = [0, *sorted(set(cuts)), len(raw)]
    parser = SSEParser()
    got = [m for a, b in zip(bounds, bounds[1:]) for m in parser.feed(raw[a:b])]
    assert got == EXPECTED


def test_retry_after_seconds_date_and_garbage() -> None:
    assert parse_retry_after("7", 1.0) == 7.0
    assert parse_retry_after(None, 2.5) == 2.5
    assert parse_retry_after("soon", 3.0) == 3.0
    assert parse_retry_after("-4", 3.0) == 0.0
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 27 <= parse_retry_after(future, 0.0) <= 31


def test_redact_url_drops_credentials() -> None:
    assert redact_url("http://bot:hunter2@engine.local:8700/base?token=x") == "http://engine.local:8700/base"

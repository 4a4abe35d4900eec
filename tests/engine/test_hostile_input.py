"""Hostile input never gets a 500: bad bytes in the bearer token, deep or huge JSON, bad
encodings, lone surrogates. Each answer is a JSON error naming the field and the rule."""
from __future__ import annotations

import asyncio
import json
import logging

import pytest

from engine.jsonbody import MAX_DEPTH, MAX_INT_DIGITS, BodyError, decode_json_body, nesting_depth_exceeds
from tests.conftest import TOKEN

JSON_ROUTES = ("/v1/jobs", "/v1/autocomplete", "/v1/moderate")


async def raw_request(h, method: str, path: str, headers: list[tuple[bytes, bytes]],
                      body: bytes = b"") -> tuple[int, dict]:
    """One HTTP/1.1 exchange with exactly these bytes (clients refuse to send bad headers)."""
    reader, writer = await asyncio.open_connection(h.client.server.host, h.client.server.port)
    head = (f"{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n").encode()
    head += b"".join(k + b": " + v + b"\r\n" for k, v in headers)
    writer.write(head + b"\r\n" + body)
    data = await reader.read()
    writer.close()
    status = int(data.split(b" ", 2)[1])
    payload = data.split(b"\r\n\r\n", 1)[1]
    return status, json.loads(payload) if payload.startswith(b"{") else {"raw": payload}


def auth(content_type: bytes = b"application/json") -> list[tuple[bytes, bytes]]:
    return [(b"Authorization", f"Bearer {TOKEN}".encode()), (b"Content-Type", content_type)]


def assert_error(status: int, body: dict, expect: int, code: str, field: str, rule: str) -> None:
    assert status == expect, body
    err = body["error"]
    assert err["code"] == code and err["field"] == field, err
    assert err["message"].startswith(f"{field}: ") and rule in err["message"], err


# ---- 1. the bearer token ------------------------------------------------------------------

async def test_undecodable_bytes_in_the_bearer_token_answer_401_and_log_nothing(probe_engine, caplog):
    h, _ = probe_engine
    caplog.set_level(logging.DEBUG)
    secret = TOKEN.encode()
    for value in (b"Bearer \xff\xfe" + secret, b"Bearer " + secret + b"\x80", b"Bearer \xed\xa0\x80",
                  b"\xff " + secret, "Bearer é".encode(), b"Bearer \xc3" + secret[1:]):
        for path in ("/v1/catalog", "/v1/jobs/nope", "/v1/openapi.json"):
            status, body = await raw_request(h, "GET", path, [(b"Authorization", value)])
            assert status == 401, (value, path, body)
            assert body["error"]["code"] == "unauthorized"
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "") + repr(record.__dict__)
        assert TOKEN not in text and TOKEN[5:] not in text, record
        assert record.levelno < logging.ERROR, record.getMessage()


# ---- 2. bodies that break the JSON decoder ------------------------------------------------

@pytest.mark.parametrize("path", JSON_ROUTES)
async def test_deep_huge_and_badly_encoded_bodies_answer_4xx(probe_engine, path):
    h, _ = probe_engine
    deep = b"[" * 1000 + b"]" * 1000
    status, body = await raw_request(h, "POST", path, auth(), deep)
    assert_error(status, body, 400, "invalid_json", "body", f"nest at most {MAX_DEPTH} deep")
    deep_in_options = b'{"command": "probe", "options": {"x": ' + b'{"a": ' * 40 + b"1" + b"}" * 42
    status, body = await raw_request(h, "POST", path, auth(), deep_in_options)
    assert_error(status, body, 400, "invalid_json", "body", f"nest at most {MAX_DEPTH} deep")

    field = {"/v1/jobs": "seed", "/v1/autocomplete": "value", "/v1/moderate": "text"}[path]
    huge = b'{"command": "probe", "option": "text", "%s": %s}' % (field.encode(), b"9" * 5000)
    status, body = await raw_request(h, "POST", path, auth(), huge)
    assert_error(status, body, 422, "invalid_request", field, f"at most {MAX_INT_DIGITS} digits")

    for bad in (b'{"text": "\xff"}', '{"command": "probe"}'.encode("utf-16"),
                b'{"text": "\xed\xa0\x80"}'):  # a surrogate encoded as UTF-8 is not UTF-8
        status, body = await raw_request(h, "POST", path, auth(), bad)
        assert status == 400, (bad, body)
        assert body["error"]["code"] == "invalid_json" and body["error"]["field"] == "body"
    status, body = await raw_request(h, "POST", path, auth(), b'{"text": NaN}')
    assert_error(status, body, 400, "invalid_json", "body", "NaN is not JSON")

    for charset in (b"x-nope", b"utf-16", b"latin-1"):
        status, body = await raw_request(h, "POST", path, auth(b"application/json; charset=" + charset),
                                         b'{"text": "hi"}')
        assert_error(status, body, 415, "unsupported_media_type", "charset", "must be utf-8")


async def test_utf8_charset_and_bom_are_accepted(probe_engine):
    h, _ = probe_engine
    for ctype in (b"application/json; charset=utf-8", b"application/json; charset=UTF8"):
        status, body = await raw_request(h, "POST", "/v1/moderate", auth(ctype),
                                         '\ufeff{"text": "héllo"}'.encode())
        assert status == 200 and body["allowed"] is True, body


def test_decoder_limits_in_isolation():
    assert not nesting_depth_exceeds("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    assert nesting_depth_exceeds("[" * (MAX_DEPTH + 1))
    assert not nesting_depth_exceeds('["' + "[" * 100 + '"]')  # brackets inside strings
    assert not nesting_depth_exceeds('["\\"' + "[" * 100 + '"]')  # after an escaped quote
    assert nesting_depth_exceeds('["\\\\"' + ", [" * 40)  # an escaped backslash ends the string
    assert decode_json_body(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    assert decode_json_body(b'{"n": -%s}' % (b"9" * MAX_INT_DIGITS))["n"] == -int("9" * MAX_INT_DIGITS)
    with pytest.raises(BodyError, match=r"^a\.1: integers may have at most"):
        decode_json_body(b'{"a": [0, 1%s]}' % (b"0" * MAX_INT_DIGITS))
    with pytest.raises(BodyError, match=r"^a: numbers must be finite"):
        decode_json_body(b'{"a": 1e400}')
    # An unterminated string full of quotes is scanned in linear time.
    import time
    t0 = time.perf_counter()
    with pytest.raises(BodyError, match="not valid JSON"):
        decode_json_body(b'["' + b'\\"' * 200_000)
    assert time.perf_counter() - t0 < 1.0


# ---- 3. lone surrogates -------------------------------------------------------------------

async def test_lone_surrogates_are_refused_at_admission_naming_the_field(probe_engine):
    h, _ = probe_engine
    cases = [
        ("/v1/jobs", '{"command": "probe", "options": {"text": "a\\ud800"}}', "options.text"),
        ("/v1/jobs", '{"command": "probe", "options": {"text": "ok"}, "requester": {"user": "\\udfff"}}',
         "requester.user"),
        ("/v1/jobs", '{"command": "probe", "options": {"text": "ok"}, "idempotency_key": "k\\udc80"}',
         "idempotency_key"),
        ("/v1/jobs", '{"command": "probe", "options": {"text": "ok"}, '
                     '"policy": {"rules": [{"id": "r", "terms": ["\\ud83d"]}]}}', "policy.rules.0.terms.0"),
        ("/v1/jobs", '{"command": "probe", "options": {"\\ud800": "x"}}', "options"),
        ("/v1/autocomplete", '{"command": "probe", "option": "text", "value": "\\ud800"}', "value"),
        ("/v1/moderate", '{"text": "fine \\udbff"}', "text"),
    ]
    for path, body, field in cases:
        status, answer = await raw_request(h, "POST", path, auth(), body.encode())
        assert_error(status, answer, 422, "invalid_request", field, "must be valid Unicode text")
        assert "surrogates" in answer["error"]["message"]
    assert h.engine.jobs == {}  # nothing was admitted, so nothing can fail to serialise later
    # A proper pair (an emoji) is text.
    acc = await h.submit({"command": "probe", "options": {"text": "\U0001F600"}})
    r = await h.client.get(f"/v1/jobs/{acc['id']}", headers=h.headers)
    assert r.status == 200


async def test_oversized_body_is_413_json(probe_engine):
    h, _ = probe_engine
    limit = h.engine.settings.max_body_bytes
    status, body = await raw_request(h, "POST", "/v1/moderate", auth(), b'{"text": "' + b"a" * limit + b'"}')
    assert status == 413 and body["error"]["code"] == "body_too_large", body

"""A bounded, deterministic property-based fuzz of every route (issue 18): request bodies drawn
from the engine's own OpenAPI document (hypothesis-jsonschema), then hostile bytes (random
bodies, bad headers, deep JSON, huge numbers, lone surrogates, foreign charsets, odd paths).

The engine is real (the probe plugin: cheap 8x8 images) and served by aiohttp on a random
loopback port, from a thread; requests are raw bytes over a socket, so nothing is sanitised
on the way. Properties: never a 5xx; every 4xx is JSON {"error": {"code", "message"}};
every JSON 2xx is valid UTF-8 JSON, and a job accepted can be read, streamed and cancelled.
About 450 examples in all (derandomized), well under a minute on two cores.
"""
from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from engine.server import bearer_matches
from tests.conftest import TOKEN
from tests.engine.schema_strategies import from_schema

GOOD_AUTH = f"Bearer {TOKEN}".encode()
FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=False,
                suppress_health_check=list(HealthCheck))


def fuzz(examples: int) -> settings:
    return settings(FUZZ, max_examples=examples)


@dataclass
class Live:
    host: str
    port: int
    openapi: dict
    engine: object


def _serve(ready: threading.Event, box: dict, data_dir) -> None:
    from aiohttp import web

    from engine.config import load_engine_settings
    from engine.server import build_app
    from engine.service import Engine
    from tests.engine.probe_plugin import make_probe_plugin

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    plugin, _ = make_probe_plugin()
    engine = Engine(load_engine_settings(data_dir=data_dir, warmup=False, builtin_plugins=False),
                    extra_plugins=[plugin])
    runner = web.AppRunner(build_app(engine, TOKEN), access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    box.update(loop=loop, runner=runner, engine=engine, port=runner.addresses[0][1])
    ready.set()
    loop.run_forever()
    loop.run_until_complete(runner.cleanup())  # stops the engine (the app's cleanup context)
    loop.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    ready, box = threading.Event(), {}
    thread = threading.Thread(target=_serve, args=(ready, box, tmp_path_factory.mktemp("fuzz")), daemon=True)
    thread.start()
    assert ready.wait(60), "the engine did not start"
    status, _, body = request("127.0.0.1", box["port"], b"GET", b"/v1/openapi.json", [(b"Authorization", GOOD_AUTH)])
    assert status == 200
    yield Live("127.0.0.1", box["port"], json.loads(body), box["engine"])
    box["loop"].call_soon_threadsafe(box["loop"].stop)
    thread.join(30)


def request(host: str, port: int, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]],
            body: bytes | None = None) -> tuple[int, dict[bytes, bytes], bytes]:
    head = method + b" " + target + b" HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n"
    if body is not None:
        head += b"Content-Length: %d\r\n" % len(body)
    head += b"".join(k + b": " + v + b"\r\n" for k, v in headers)
    with socket.create_connection((host, port), timeout=20) as s:
        s.sendall(head + b"\r\n" + (body or b""))
        chunks = []
        while chunk := s.recv(1 << 16):
            chunks.append(chunk)
    raw = b"".join(chunks)
    head_part, _, payload = raw.partition(b"\r\n\r\n")
    lines = head_part.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    hdrs = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:])}
    if hdrs.get(b"transfer-encoding") == b"chunked":
        payload = _dechunk(payload)
    return status, hdrs, payload


def _dechunk(data: bytes) -> bytes:
    out = []
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out.append(rest[:size])
        data = rest[size + 2:]
    return b"".join(out)


STATS: dict[str, int] = {}


def check(live: Live, method: bytes, target: bytes, headers, body=None) -> tuple[int, bytes]:
    """Send one request and check the properties that hold for every answer."""
    status, hdrs, payload = request(live.host, live.port, method, target, headers, body)
    STATS[str(status)] = STATS.get(str(status), 0) + 1
    what = (method, target[:80], headers, (body or b"")[:120], status, payload[:300])
    assert status < 500, what
    ctype = hdrs.get(b"content-type", b"")
    if method == b"HEAD":  # no body to check
        return status, payload
    if status >= 400 or ctype.startswith(b"application/json"):
        assert ctype.startswith(b"application/json"), what
        doc = json.loads(payload.decode("utf-8"))  # strict UTF-8, strict JSON
        if status >= 400:
            assert isinstance(doc["error"]["code"], str) and isinstance(doc["error"]["message"], str), what
            assert doc["error"]["message"], what
    return status, payload


def json_headers(ctype: bytes = b"application/json") -> list[tuple[bytes, bytes]]:
    return [(b"Authorization", GOOD_AUTH), (b"Content-Type", ctype)]


def follow_job(live: Live, job_id: str) -> None:
    """A job that was admitted serialises everywhere: read, wait, stream, cancel."""
    jid = quote(job_id, safe="").encode()
    auth = [(b"Authorization", GOOD_AUTH)]
    check(live, b"GET", b"/v1/jobs/" + jid, auth)
    status, payload = check(live, b"GET", b"/v1/jobs/" + jid + b"/events", auth)
    assert status == 200 and b"data: " in payload
    for line in payload.split(b"\n"):
        if line.startswith(b"data: "):
            json.loads(line[6:].decode("utf-8"))
    status, _ = check(live, b"DELETE", b"/v1/jobs/" + jid, auth)
    assert status in (200, 409)  # cancelled, or finished already


# ---- 1. bodies from the OpenAPI document --------------------------------------------------

def schema_of(doc: dict, name: str) -> st.SearchStrategy:
    return from_schema({"$ref": f"#/components/schemas/{name}"}, doc)


def _body_strategy(doc: dict, path: str) -> st.SearchStrategy:
    return from_schema(doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"], doc)


JSON_ROUTES = ("/v1/jobs", "/v1/autocomplete", "/v1/moderate")


@pytest.mark.parametrize("path", JSON_ROUTES)
def test_fuzz_bodies_from_the_openapi_schema(live, path):
    schema = _body_strategy(live.openapi, path)
    # Bias towards the command that exists, so validation goes past "unknown command".
    probe = {"/v1/jobs": {"command": "probe"}, "/v1/autocomplete": {"command": "probe", "option": "text"},
             "/v1/moderate": {}}[path]
    # ... and a share of jobs that pass it (admitted, then read, streamed and cancelled).
    plausible = st.fixed_dictionaries(
        {"command": st.just("probe"), "options": st.fixed_dictionaries(
            {"text": st.text(min_size=1, max_size=20)}, optional={"level": st.integers(0, 6)})},
        optional={"count": st.integers(0, 5), "seed": st.integers(-1, 2**32),
                  "idempotency_key": st.text(min_size=1, max_size=8), "priority": st.just("high"),
                  "requester": schema_of(live.openapi, "Requester")})
    bodies = st.one_of(schema, schema.map(lambda b: {**b, **probe}),
                       plausible if path == "/v1/jobs" else schema.map(lambda b: {**b, **probe}))
    waits = st.one_of(st.just(b""), st.sampled_from([b"?wait=0", b"?wait=1.5", b"?wait=-1", b"?wait=nan",
                                                     b"?wait=1e999", b"?wait=%ff"]))

    @fuzz(60)
    @given(body=bodies, wait=waits if path == "/v1/jobs" else st.just(b""), ascii_only=st.booleans())
    def run(body, wait, ascii_only):
        data = json.dumps(body, ensure_ascii=ascii_only).encode("utf-8")
        status, payload = check(live, b"POST", path.encode() + wait, json_headers(), data)
        if path == "/v1/jobs" and status in (200, 202):
            STATS["admitted"] = STATS.get("admitted", 0) + 1
            follow_job(live, json.loads(payload)["id"])

    if path == "/v1/jobs":  # a few jobs that surely pass, however the draws fall on a loaded machine
        for n, wait in enumerate([b"", b"?wait=0", b"?wait=1.5", b"", b""]):
            data = json.dumps({"command": "probe", "options": {"text": f"ok {n}"}, "seed": n}).encode()
            status, payload = check(live, b"POST", b"/v1/jobs" + wait, json_headers(), data)
            assert status in (200, 202), payload
            STATS["admitted"] = STATS.get("admitted", 0) + 1
            follow_job(live, json.loads(payload)["id"])
    run()


# ---- 2. hostile bytes -----------------------------------------------------------------------

def _header_bytes(max_size: int = 40):
    # What an HTTP/1.1 parser lets through to the app: visible ASCII, space, tab, obs-text.
    allowed = [b for b in range(256) if b in (9, 32) or 33 <= b <= 126 or b >= 128]
    return st.lists(st.sampled_from(allowed), max_size=max_size).map(bytes)


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) \
    | st.text(max_size=12)
json_values = st.recursive(json_scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                           max_leaves=8)
SURROGATES = ["\\ud800", "\\udfff", "\\udc80", "\\ud83d", "a\\udbffz"]


def _surrogate_body(route_field: tuple[str, str], s: str) -> bytes:
    path, field = route_field
    base = {"/v1/jobs": {"command": "probe", "options": {"text": "ok"}},
            "/v1/autocomplete": {"command": "probe", "option": "text"}, "/v1/moderate": {"text": "ok"}}[path]
    text = json.dumps(base)[:-1] + f', "{field}": "{s}"}}'
    return text.encode()


hostile_bodies = st.one_of(
    st.binary(max_size=300),
    st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(1, 1500).map(lambda n: b'{"options": ' * n + b"{}" + b"}" * n),
    st.tuples(st.integers(1, 6000), st.sampled_from([b"seed", b"count", b"value", b"text", b"x"]))
    .map(lambda t: b'{"command": "probe", "%s": -%s}' % (t[1], b"7" * t[0])),
    st.sampled_from([b"NaN", b"-Infinity", b"1e999", b'"\\u0000"', b"-0", b"1e-999", b"[1.5e308, 2e308]"])
    .map(lambda v: b'{"command": "probe", "deadline_s": %s, "text": %s}' % (v, v)),
    st.tuples(json_values, st.sampled_from(["utf-16", "utf-32", "latin-1", "cp1252", "utf-8-sig", "utf-16-be"]))
    .map(lambda t: json.dumps(t[0], ensure_ascii=False).encode(t[1], "replace")),
    st.tuples(json_values, st.integers(0, 50)).map(lambda t: json.dumps(t[0]).encode()[: t[1]]),
)
surrogate_bodies = st.builds(_surrogate_body, st.sampled_from(
    [("/v1/jobs", "idempotency_key"), ("/v1/jobs", "command"), ("/v1/autocomplete", "value"),
     ("/v1/moderate", "text"), ("/v1/moderate", "guild")]), st.sampled_from(SURROGATES))
content_types = st.one_of(st.sampled_from([
    b"application/json", b"application/json; charset=utf-8", b"application/json; charset=x-nope",
    b"application/json; charset=utf-16", b"application/json; charset=\xff\xfe", b"application/json;;charset=",
    b"text/plain", b"multipart/form-data; boundary=zz", b"application/x-www-form-urlencoded", b""]),
    _header_bytes(30))


@fuzz(150)
@given(path=st.sampled_from(JSON_ROUTES + ("/v1/verify",)), body=st.one_of(hostile_bodies, surrogate_bodies),
       ctype=st.one_of(st.just(b"application/json"), content_types))
def test_fuzz_hostile_bodies(live, path, body, ctype):
    check(live, b"POST", path.encode(), json_headers(ctype), body)


@fuzz(50)
@given(path=st.sampled_from(JSON_ROUTES), field=st.sampled_from(["options", "requester", "policy", "rules",
                                                                 "parent", "automod"]),
       value=json_values, surrogate=st.sampled_from(SURROGATES), data=st.data())
def test_fuzz_surrogates_anywhere(live, path, field, value, surrogate, data):
    """A lone surrogate in any string or key of the body is refused at admission."""
    text = json.dumps({"command": "probe", "option": "text", "text": "t", field: value})
    strings = list(re.finditer(r'"(?:[^"\\]|\\.)*"', text))
    at = strings[data.draw(st.integers(0, len(strings) - 1))].start() + 1
    text = text[:at] + surrogate + text[at:]
    status, payload = check(live, b"POST", path.encode(), json_headers(), text.encode())
    assert status == 422 and b"surrogates" in payload, payload


ALL_PATHS = ["/healthz", "/readyz", "/metrics", "/v1/openapi.json", "/v1/catalog", "/v1/jobs", "/v1/jobs/{id}",
             "/v1/jobs/{id}/events", "/v1/jobs/{id}/display", "/v1/artifacts/{id}", "/v1/autocomplete", "/v1/moderate", "/v1/verify",
             "/v1/nope", "/v1/", "/"]


@fuzz(150)
@given(method=st.sampled_from([b"GET", b"POST", b"DELETE", b"PUT", b"PATCH", b"OPTIONS", b"HEAD"]),
       path=st.sampled_from(ALL_PATHS), ident=st.one_of(st.binary(max_size=24), st.text(max_size=12)),
       query=st.one_of(st.just(b""), st.binary(max_size=16).map(lambda b: b"?wait=" + quote(b, safe="").encode())),
       auth=st.one_of(st.just(GOOD_AUTH), _header_bytes().map(lambda b: b"Bearer " + b), _header_bytes(),
                      st.sampled_from([GOOD_AUTH + b"\xff", b"Bearer \xed\xa0\x80", b"bearer " + TOKEN.encode(),
                                       b"Bearer  " + TOKEN.encode(), b"Bearer\t" + TOKEN.encode()])),
       body=st.one_of(st.none(), st.binary(max_size=64)))
def test_fuzz_methods_paths_headers(live, method, path, ident, query, auth, body):
    raw_id = ident if isinstance(ident, bytes) else ident.encode("utf-8", "surrogatepass")
    target = path.replace("{id}", quote(raw_id, safe="") or "x").encode() + query
    status, _ = check(live, method, target, [(b"Authorization", auth)], body)
    if path.startswith("/v1/") and not bearer_matches(auth.decode("utf-8", "surrogateescape").strip(" \t"), TOKEN):
        assert status == 401, (method, target, auth, status)


def test_fuzz_left_the_engine_serving(live):
    """After the fuzz, the engine still answers, and no accepted job is broken."""
    status, _ = check(live, b"GET", b"/v1/catalog", [(b"Authorization", GOOD_AUTH)])
    assert status == 200
    for job_id in list(live.engine.jobs)[:20]:
        check(live, b"GET", b"/v1/jobs/" + job_id.encode(), [(b"Authorization", GOOD_AUTH)])
    assert sum(v for k, v in STATS.items() if k.isdigit()) >= 400 and STATS.get("admitted", 0) >= 5, STATS



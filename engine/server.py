"""HTTP API (/v1) over the engine service. Handlers are thin: parse, call, serialise."""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Any, Awaitable, Callable

from aiohttp import web
from pydantic import BaseModel, ValidationError

from engine.jsonbody import BodyError, decode_json_body
from engine.openapi import Param, RouteDoc, app_routes, openapi_document
from engine.protocol import (
    AutocompleteRequest, AutocompleteResponse, DisplayRequest, Catalog, Health, JobAccepted, JobRequest, JobView,
    ModerateRequest, ModerateResponse, Readiness,
)
from engine.provenance.verify import VerifyReport
from engine.errors import EngineError
from engine.service import Engine

log = logging.getLogger("aigc.engine.http")
ENGINE_KEY: web.AppKey[Engine] = web.AppKey("engine", Engine)
TOKEN_KEY: web.AppKey[str] = web.AppKey("token", str)
OPENAPI_KEY: web.AppKey[dict[str, bytes]] = web.AppKey("openapi", dict)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(status: int, code: str, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None, **extra: str | None) -> web.Response:
    err: dict[str, Any] = {"code": code, "message": message}
    if field:
        err["field"] = field
    err.update({k: v for k, v in extra.items() if v is not None})
    return web.json_response({"error": err}, status=status, headers=headers)


def _http_code(status: int) -> str:
    return {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
            413: "body_too_large", 415: "unsupported_media_type"}.get(status, "http_error")


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as JSON {error:{code, message, field?}}."""
    try:
        return await handler(request)
    except EngineError as e:
        return error_response(e.status, e.code, e.message, e.field, e.headers, rule=e.rule,
                              category=e.category, **e.extra)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        message = e.text if e.text and not e.text.startswith(str(e.status)) else e.reason
        return error_response(e.status, _http_code(e.status), message)
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        return error_response(500, "internal", "internal error; see the engine log")


def bearer_matches(authorization: str, expected: str) -> bool:
    """Whether an Authorization header carries the expected bearer token. Never raises:
    aiohttp hands undecodable header bytes over as lone surrogates, which compare as bytes
    (an exception here would be logged, with the header in its traceback)."""
    scheme, _, token = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/v1/"):
        if not bearer_matches(request.headers.get("Authorization", ""), request.app[TOKEN_KEY]):
            return error_response(401, "unauthorized", "missing or wrong bearer token",
                                  headers={"WWW-Authenticate": "Bearer"})
    return await handler(request)


async def parse(request: web.Request, model: type[BaseModel]) -> Any:
    """The body as ``model``: JSON in UTF-8 (engine.jsonbody's limits), then the model's rules."""
    if request.content_type != "application/json":
        raise EngineError(415, "unsupported_media_type", "send a JSON body (application/json)")
    try:  # read() is bounded by the app's client_max_size (413 beyond it)
        raw = decode_json_body(await request.read(), request.charset)
    except BodyError as e:
        raise EngineError(e.status, e.code, e.message, e.field) from None
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        # A validator may name a place inside its field (ctx["loc"]): rules.0.keywords.
        loc = (*first["loc"], *first.get("ctx", {}).get("loc", ()))
        field = ".".join(str(p) for p in loc) or "body"
        rule = first["msg"]
        if first["type"] == "extra_forbidden":
            rule = "is not a known field"
        raise EngineError(422, "invalid_request", f"{field}: {rule}" if field else rule, field) from None


def _json(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=model.model_dump_json(), status=status, headers=headers,
                        content_type="application/json")


# ---- handlers ---------------------------------------------------------------------------

async def healthz(request: web.Request) -> web.Response:
    return _json(Health())


async def readyz(request: web.Request) -> web.Response:
    engine = request.app[ENGINE_KEY]
    ready, backing_off = engine.readiness()  # a generator backing off after crashes: not ready
    return _json(Readiness(ready=ready, device=engine.device, unavailable=backing_off or None),
                 200 if ready else 503)


async def openapi(request: web.Request) -> web.Response:
    """This API's OpenAPI document, generated from the routes and the wire models."""
    cache = request.app[OPENAPI_KEY]
    if "json" not in cache:  # built once, on first use
        cache["json"] = json.dumps(openapi_document(app_routes(request.app.router, ROUTE_DOCS))).encode()
    return web.Response(body=cache["json"], content_type="application/json")


async def metrics(request: web.Request) -> web.Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    return web.Response(body=request.app[ENGINE_KEY].metrics.render(),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})


async def catalog(request: web.Request) -> web.Response:
    return _json(request.app[ENGINE_KEY].catalog())


async def submit_job(request: web.Request) -> web.Response:
    """202 with {id, status, position}; with ?wait=S, holds up to S seconds for the result."""
    engine = request.app[ENGINE_KEY]
    req = await parse(request, JobRequest)
    wait = _wait_param(request)
    job = await engine.submit(req)
    if wait:
        job = await engine.wait(job.id, wait)
        if job.status.terminal:
            return _json(job.view(), 200)
    await engine.acknowledge(job)
    return _json(JobAccepted(id=job.id, status=job.status, position=job.position), 202,
                 headers={"Location": f"/v1/jobs/{job.id}"})


def _wait_param(request: web.Request) -> float:
    raw = request.query.get("wait")
    if raw is None:
        return 0.0
    try:
        wait = float(raw)
    except ValueError:
        raise EngineError(422, "invalid_request", "wait: must be a number of seconds", "wait") from None
    if not 0 <= wait <= 300:
        raise EngineError(422, "invalid_request", "wait: must be from 0 to 300 seconds", "wait")
    return wait


async def get_job(request: web.Request) -> web.Response:
    return _json((await request.app[ENGINE_KEY].get(request.match_info["id"])).view())


async def cancel_job(request: web.Request) -> web.Response:
    return _json((await request.app[ENGINE_KEY].cancel(request.match_info["id"])).view())


async def job_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: one `event: <status>` with the job as JSON per change."""
    engine = request.app[ENGINE_KEY]
    stream = engine.events(request.match_info["id"])
    first = await stream.__anext__()  # raises 404 before the stream starts
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                       "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    await resp.prepare(request)

    async def send(event: str, data: BaseModel) -> None:
        await resp.write(f"event: {event}\ndata: {data.model_dump_json()}\n\n".encode())

    try:
        await send(*first)
        async for event, view in stream:
            await send(event, view)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        await stream.aclose()
    return resp


async def get_artifact(request: web.Request) -> web.Response:
    art = await request.app[ENGINE_KEY].artifact(request.match_info["id"])
    return web.Response(body=art.data, headers={
        "Content-Type": art.mime, "Content-Disposition": f'inline; filename="{art.filename}"',
        "ETag": f'"{art.sha256}"', "Cache-Control": "private, max-age=3600"})


async def job_display(request: web.Request) -> web.Response:
    """The job's labelled display copy (a grid, or one output scaled up), recorded in the ledger."""
    req = await parse(request, DisplayRequest)
    art = await request.app[ENGINE_KEY].display(request.match_info["id"], req)
    return web.Response(body=art.data, headers={
        "Content-Type": art.mime, "Content-Disposition": f'inline; filename="{art.filename}"',
        "ETag": f'"{art.sha256}"'})


async def autocomplete(request: web.Request) -> web.Response:
    req = await parse(request, AutocompleteRequest)
    choices = request.app[ENGINE_KEY].autocomplete(req)
    return _json(AutocompleteResponse(choices=choices))


async def moderate(request: web.Request) -> web.Response:
    req = await parse(request, ModerateRequest)
    verdict = await request.app[ENGINE_KEY].moderate(req.text, req.rules, req.automod)
    return _json(ModerateResponse(**verdict.public()))


VERIFY_MAX_BYTES = 32 * 2**20  # Discord's largest attachments (boosted servers: 25-100 MiB) are rare


async def verify_file(request: web.Request) -> web.Response:
    """The file is the raw body (any content type); answers engine.provenance's VerifyReport."""
    if request.content_length is not None and request.content_length > VERIFY_MAX_BYTES:
        raise EngineError(413, "body_too_large", f"body: at most {VERIFY_MAX_BYTES} bytes", "body")
    engine = request.app[ENGINE_KEY]
    async with engine.verify_slots:  # bounds memory: VERIFY_SLOTS bodies (and parses) at a time
        chunks, size = [], 0
        async for chunk in request.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size > VERIFY_MAX_BYTES:
                raise EngineError(413, "body_too_large", f"body: at most {VERIFY_MAX_BYTES} bytes", "body")
            chunks.append(chunk)
        if not size:
            raise EngineError(422, "invalid_request", "body: send the file's bytes", "body")
        data = b"".join(chunks)
        del chunks  # one copy of the body from here on
        report = await engine.verify(data)
    return _json(report)


_WAIT = Param("wait", "query", {"type": "number", "minimum": 0, "maximum": 300},
              "hold up to this many seconds for the result (200 with the finished job)")

# Every route with its OpenAPI description (engine/openapi.py builds the document from these).
ROUTES: list[tuple[str, str, Handler, RouteDoc]] = [
    ("GET", "/healthz", healthz, RouteDoc("Liveness", responses={200: Health}, public=True)),
    ("GET", "/readyz", readyz, RouteDoc("Readiness: models loaded and warm",
                                        responses={200: Readiness, 503: Readiness}, public=True)),
    ("GET", "/metrics", metrics, RouteDoc("Prometheus metrics", responses={200: "text/plain"}, public=True)),
    ("GET", "/v1/openapi.json", openapi, RouteDoc("This document", responses={200: "application/json"})),
    ("GET", "/v1/catalog", catalog, RouteDoc("Plugins, commands, options, modalities",
                                             responses={200: Catalog})),
    ("POST", "/v1/jobs", submit_job, RouteDoc(
        "Submit a job", body=JobRequest, responses={202: JobAccepted, 200: JobView},
        errors=(403, 404, 429), query=(_WAIT,))),
    ("GET", "/v1/jobs/{id}", get_job, RouteDoc("A job's state", responses={200: JobView}, errors=(404,))),
    ("DELETE", "/v1/jobs/{id}", cancel_job, RouteDoc("Cancel a job", responses={200: JobView},
                                                     errors=(404, 409))),
    ("GET", "/v1/jobs/{id}/events", job_events, RouteDoc(
        "Server-sent events: the job (JobView as JSON) at each change", responses={200: "text/event-stream"},
        errors=(404,))),
    ("POST", "/v1/jobs/{id}/display", job_display, RouteDoc(
        "The job's display copy: one labelled picture of its image outputs (a grid, or one scaled up), "
        "naming who posts it, recorded in the provenance ledger", body=DisplayRequest,
        responses={200: "image/png"}, errors=(404, 409, 410, 503))),
    ("GET", "/v1/artifacts/{id}", get_artifact, RouteDoc("An artifact's bytes",
                                                         responses={200: "application/octet-stream"},
                                                         errors=(404, 410, 503))),
    ("POST", "/v1/autocomplete", autocomplete, RouteDoc("Autocomplete choices for an option",
                                                        body=AutocompleteRequest,
                                                        responses={200: AutocompleteResponse}, errors=(404,))),
    ("POST", "/v1/moderate", moderate, RouteDoc("The content policy's verdict on a text", body=ModerateRequest,
                                                responses={200: ModerateResponse})),
    ("POST", "/v1/verify", verify_file, RouteDoc(
        "What a file's AI labels and the provenance ledger say", body="application/octet-stream",
        responses={200: VerifyReport}, errors=(413, 422))),
]
ROUTE_DOCS = {(method, path): doc for method, path, _, doc in ROUTES}


def build_app(engine: Engine, token: str, *, manage_engine: bool = True) -> web.Application:
    """The aiohttp app. With ``manage_engine`` the app starts and stops the engine."""
    if not token:
        raise ValueError("the engine token must not be empty")
    app = web.Application(middlewares=[errors_middleware, auth_middleware],
                          client_max_size=engine.settings.max_body_bytes)
    app[ENGINE_KEY] = engine
    app[TOKEN_KEY] = token
    app[OPENAPI_KEY] = {}
    for method, path, handler, _ in ROUTES:
        app.router.add_route(method, path, handler)
    if manage_engine:
        async def _lifecycle(app: web.Application):
            await engine.start()
            yield
            await engine.stop()
        app.cleanup_ctx.append(_lifecycle)
    return app

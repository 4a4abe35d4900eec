"""The engine's OpenAPI 3.1 document, generated from the app's routes and the pydantic wire
models (engine.protocol), never written by hand: ``GET /v1/openapi.json``.

Each route is registered together with a :class:`RouteDoc` (engine/server.py's ``ROUTES``);
:func:`openapi_document` walks the app's router, so a route without its doc fails loudly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from engine.protocol import API_VERSION, ErrorBody

REF = "#/components/schemas/{model}"
SECURITY_SCHEME = "bearer"
JSON = "application/json"


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # "query" or "path"
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class RouteDoc:
    summary: str
    # A JSON body validated as this model, or the media type of a raw body.
    body: type[BaseModel] | str | None = None
    # status -> a model (JSON) or a media type (anything else)
    responses: dict[int, type[BaseModel] | str] = field(default_factory=dict)
    errors: tuple[int, ...] = ()  # statuses answered with the error body
    query: tuple[Param, ...] = ()
    public: bool = False  # no bearer token needed


BODY_ERRORS = (400, 413, 415, 422)  # what engine.server.parse may answer
ERROR_TEXT = {400: "malformed body (not UTF-8 JSON, nested too deep, ...)", 401: "missing or wrong bearer token",
              403: "refused", 404: "not found", 409: "conflict", 410: "gone", 413: "body too large",
              415: "not application/json in UTF-8", 422: "a field breaks a rule (`error.field` names it)",
              429: "queue full (see Retry-After)", 503: "not ready"}


def _models(docs: Iterable[RouteDoc]) -> tuple[list[type[BaseModel]], list[type[BaseModel]]]:
    inputs = {d.body for d in docs if isinstance(d.body, type)}
    outputs = {m for d in docs for m in d.responses.values() if isinstance(m, type)} | {ErrorBody}
    key = lambda m: m.__name__  # noqa: E731 - a stable order, so the document is too
    return sorted(inputs, key=key), sorted(outputs, key=key)


def _content(kind: type[BaseModel] | str, refs: dict[Any, dict[str, Any]], mode: str) -> dict[str, Any]:
    if isinstance(kind, str):
        schema: dict[str, Any] = {"type": "string"}
        if kind.startswith(("image/", "audio/", "application/octet-stream", "*/*")):
            schema["format"] = "binary"
        return {kind: {"schema": schema}}
    return {JSON: {"schema": refs[(kind, mode)]}}


def _operation(method: str, path: str, doc: RouteDoc, refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": f"{method.lower()}_{path.strip('/').replace('/', '_')}"
                          .replace("{", "").replace("}", "").replace(".", "_"),
                          "summary": doc.summary}
    params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
              for name in _path_params(path)]
    params += [{"name": p.name, "in": p.where, "required": p.required, "schema": p.schema,
                "description": p.description} for p in doc.query]
    if params:
        op["parameters"] = params
    if doc.body is not None:
        op["requestBody"] = {"required": True, "content": _content(doc.body, refs, "validation")}
    responses: dict[str, Any] = {
        str(status): {"description": _describe(kind), "content": _content(kind, refs, "serialization")}
        for status, kind in sorted(doc.responses.items())}
    errors = set(doc.errors) | (set(BODY_ERRORS) if isinstance(doc.body, type) else set())
    if not doc.public:
        errors.add(401)
    error = {JSON: {"schema": refs[(ErrorBody, "serialization")]}}
    for status in sorted(errors):
        responses[str(status)] = {"description": ERROR_TEXT.get(status, "error"), "content": error}
    responses["default"] = {"description": "any other error", "content": error}
    op["responses"] = responses
    op["security"] = [] if doc.public else [{SECURITY_SCHEME: []}]
    return op


def _describe(kind: type[BaseModel] | str) -> str:
    if isinstance(kind, str):
        return kind
    return (kind.__doc__ or kind.__name__).strip().splitlines()[0]


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


def openapi_document(routes: Iterable[tuple[str, str, RouteDoc]], *, title: str = "AIGC engine",
                     version: str = "1") -> dict[str, Any]:
    """The document for ``(method, path, doc)`` routes (methods upper case, aiohttp paths)."""
    routes = list(routes)
    inputs, outputs = _models([d for _, _, d in routes])
    refs, top = models_json_schema([(m, "validation") for m in inputs] + [(m, "serialization") for m in outputs],
                                   ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for method, path, doc in routes:
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, doc, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": f"The engine's HTTP API ({API_VERSION}). Every error is "
                                "`{\"error\": {\"code\", \"message\", \"field\"?}}`."},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": top.get("$defs", {}),
                       "securitySchemes": {SECURITY_SCHEME: {"type": "http", "scheme": "bearer"}}},
        "security": [{SECURITY_SCHEME: []}],
    }


def app_routes(router: Any, docs: dict[tuple[str, str], RouteDoc]) -> list[tuple[str, str, RouteDoc]]:
    """``(method, path, doc)`` for every route of an aiohttp router (HEAD twins of GET left
    out). A route registered without a doc raises KeyError: the document is never partial."""
    out = []
    for route in router.routes():
        if route.method in ("HEAD", "*"):
            continue
        key = (route.method, route.resource.canonical)
        if key not in docs:
            raise KeyError(f"route {key[0]} {key[1]} has no RouteDoc; add one beside it in engine/server.py")
        out.append((*key, docs[key]))
    return out

"""GET /v1/openapi.json: generated from build_app's routes and the pydantic wire models."""
from __future__ import annotations

import json

import pytest

from engine.openapi import RouteDoc, app_routes


def _refs(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for v in node.values():
            yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


async def test_openapi_document_lists_every_route_of_the_app(probe_engine):
    h, _ = probe_engine
    r = await h.client.get("/v1/openapi.json")
    assert r.status == 401  # like every /v1 route
    r = await h.client.get("/v1/openapi.json", headers=h.headers)
    assert r.status == 200 and r.headers["Content-Type"].startswith("application/json")
    doc = await r.json()
    assert doc["openapi"].startswith("3.1")
    registered = {(route.method.lower(), route.resource.canonical)
                  for route in h.client.app.router.routes() if route.method != "HEAD"}
    documented = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert registered == documented
    assert {"/v1/openapi.json", "/v1/jobs", "/v1/jobs/{id}/events", "/healthz"} <= set(doc["paths"])

    schemas = doc["components"]["schemas"]
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    for ref in set(_refs(doc)):  # every reference resolves
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            public = path in ("/healthz", "/readyz", "/metrics")
            assert op["security"] == ([] if public else [{"bearer": []}]), (method, path)
            assert op["responses"]["default"]["content"]["application/json"]["schema"] == error_ref
            if not public:
                assert op["responses"]["401"]["content"]["application/json"]["schema"] == error_ref
            for name in [p[1:-1] for p in path.split("/") if p.startswith("{")]:
                assert {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} \
                    in op["parameters"]
    bodies = {path: ops["post"]["requestBody"]["content"] for path, ops in doc["paths"].items()
              if "post" in ops}
    assert bodies["/v1/jobs"]["application/json"]["schema"] == {"$ref": "#/components/schemas/JobRequest"}
    assert bodies["/v1/autocomplete"]["application/json"]["schema"]["$ref"].endswith("/AutocompleteRequest")
    assert bodies["/v1/moderate"]["application/json"]["schema"]["$ref"].endswith("/ModerateRequest")
    assert "application/octet-stream" in bodies["/v1/verify"]
    jobs = doc["paths"]["/v1/jobs"]["post"]
    assert set(jobs["responses"]) >= {"200", "202", "400", "401", "413", "415", "422", "429", "default"}
    assert jobs["parameters"][0]["name"] == "wait"
    # The schemas are the models' own (e.g. the request's limits), and valid JSON Schema.
    assert schemas["JobRequest"]["additionalProperties"] is False
    assert schemas["JobRequest"]["properties"]["count"]["anyOf"][0]["maximum"] == 64
    assert set(schemas["ErrorInfo"]["required"]) == {"code", "message"}
    from jsonschema import Draft202012Validator
    for name, schema in schemas.items():
        Draft202012Validator.check_schema(schema)
    # Served from a cache: the same bytes each time.
    again = await (await h.client.get("/v1/openapi.json", headers=h.headers)).read()
    assert json.loads(again) == doc


def test_a_route_without_a_doc_fails_loudly():
    from aiohttp import web

    async def handler(request):  # pragma: no cover - never called
        return web.Response()

    app = web.Application()
    app.router.add_get("/v1/documented", handler)
    app.router.add_post("/v1/undocumented", handler)
    docs = {("GET", "/v1/documented"): RouteDoc("documented")}
    with pytest.raises(KeyError, match="POST /v1/undocumented has no RouteDoc"):
        app_routes(app.router, docs)
    assert [(m, p) for m, p, _ in app_routes(app.router, {**docs, ("POST", "/v1/undocumented"): RouteDoc("x")})] \
        == [("GET", "/v1/documented"), ("POST", "/v1/undocumented")]

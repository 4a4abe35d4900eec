"""FakeEngineHTTP: a test double of the engine's HTTP surface (/v1), only for the engine
client's own tests (failover, retries, error mapping, SSE). It runs a real aiohttp server on
127.0.0.1:0 and records every request. End-to-end tests use the real engine instead.
"""
from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from engine.protocol import JobAccepted, JobRequest, JobStatus, JobView

CATALOG = {
    "api": "v1", "hash": "abc123", "failed": [],
    "modalities": [{"name": "image", "mime": "image/png", "extension": "png", "presentation": "image"}],
    "plugins": [{"name": "emoji", "version": "1.0", "source": "builtin", "modalities": [], "commands": [
        {"name": "emoji", "description": "Draw an emoji", "plugin": "emoji", "modality": "image",
         "generator": "emoji-gan", "options": [
             {"name": "prompt", "type": "string", "description": "what to draw", "required": True,
              "autocomplete": "prompts"}]}]}],
}


@dataclass
class Recorded:
    method: str
    path: str
    authorization: str | None
    body: Any


@dataclass
class FakeEngineHTTP:
    token: str = "fake-engine-token-0123456789"
    name: str = "engine"
    ready: bool = True
    # What the next POST /v1/jobs do, in order: "accept", "stall" (take the job, answer too
    # late), "503", "429", "invalid", "refuse", "drop" (take the job, close the connection).
    submit_script: list[str] = field(default_factory=list)
    stall_s: float = 3.0
    get_stall_s: float = 0.0
    # Events a stream sends for a job: (event, status, progress); "drop" ends the stream early.
    event_script: list[tuple[str, str, float]] = field(default_factory=lambda: [
        ("queued", "queued", 0.0), ("running", "running", 0.0), ("progress", "running", 0.5),
        ("done", "done", 1.0)])
    event_delay_s: float = 0.0
    split_writes: bool = True  # write each event in small pieces to exercise the parser
    streams_opened: int = 0
    requests: list[Recorded] = field(default_factory=list)
    jobs: dict[str, JobView] = field(default_factory=dict)
    by_key: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, bytes] = field(default_factory=dict)
    url: str = ""
    _runner: web.AppRunner | None = None

    # -- lifecycle --

    async def start(self) -> str:
        app = web.Application(middlewares=[self._record, self._auth])
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/v1/catalog", self._catalog)
        app.router.add_post("/v1/jobs", self._submit)
        app.router.add_get("/v1/jobs/{id}", self._get)
        app.router.add_delete("/v1/jobs/{id}", self._cancel)
        app.router.add_get("/v1/jobs/{id}/events", self._events)
        app.router.add_get("/v1/artifacts/{id}", self._artifact)
        app.router.add_post("/v1/autocomplete", self._autocomplete)
        app.router.add_post("/v1/moderate", self._moderate)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def calls(self, method: str, path_prefix: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    # -- helpers --

    def view(self, job_id: str, status: str = "queued", progress: float = 0.0) -> JobView:
        arts = []
        if status == "done":
            art_id = f"{job_id}-a0"
            self.artifacts.setdefault(art_id, f"PNG-bytes-of-{job_id}@{self.name}".encode())
            arts = [{"id": art_id, "index": 0, "url": f"/v1/artifacts/{art_id}", "mime": "image/png",
                     "filename": "out.png", "size": 10, "sha256": "0" * 64, "presentation": "image"}]
        error = {"code": "generation_failed", "message": "the generator crashed"} if status == "failed" else None
        return JobView.model_validate({
            "id": job_id, "status": status, "command": "emoji", "plugin": "emoji", "modality": "image",
            "options": {"prompt": "cat"}, "seed": 7, "count": 1, "progress": progress,
            "requester": {"platform": "discord", "user": "u1"}, "model": {"name": "emoji-gan"},
            "timings": {"created": time.time()}, "artifacts": arts, "error": error})

    @staticmethod
    def _error(status: int, code: str, message: str, field_: str | None = None,
               headers: dict[str, str] | None = None, **extra: str) -> web.Response:
        err: dict[str, Any] = {"code": code, "message": message, **extra}
        if field_:
            err["field"] = field_
        return web.json_response({"error": err}, status=status, headers=headers)

    # -- middlewares --

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        self.requests.append(Recorded(request.method, request.path, request.headers.get("Authorization"), body))
        return await handler(request)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/v1/") and request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._error(401, "unauthorized", "missing or wrong bearer token")
        return await handler(request)

    # -- handlers --

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        return web.json_response({"ready": self.ready}, status=200 if self.ready else 503)

    async def _catalog(self, request: web.Request) -> web.Response:
        return web.json_response(CATALOG)

    def _take(self, req: JobRequest) -> JobView:
        if req.idempotency_key and req.idempotency_key in self.by_key:
            return self.jobs[self.by_key[req.idempotency_key]]
        job_id = f"{self.name}-job{len(self.jobs) + 1}"
        self.jobs[job_id] = self.view(job_id)
        if req.idempotency_key:
            self.by_key[req.idempotency_key] = job_id
        return self.jobs[job_id]

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        req = JobRequest.model_validate(await request.json())
        action = self.submit_script.pop(0) if self.submit_script else "accept"
        if action == "503":
            return self._error(503, "not_ready", "warming up", headers={"Retry-After": "1"})
        if action == "429":
            return self._error(429, "queue_full", "the queue for emoji-gan is full; retry later",
                               headers={"Retry-After": "7"})
        if action == "invalid":
            return self._error(422, "invalid_option", "options.steps: must be at most 50", "options.steps")
        if action == "refuse":  # as the engine does: the rule and category, never the matched term
            return self._error(422, "prompt_refused", "refused by content rule global.violence (violence)",
                               "options.prompt", rule="global.violence", category="violence")
        job = self._take(req)
        if action == "stall":
            await asyncio.sleep(self.stall_s)
        if action == "drop":
            assert request.transport is not None
            request.transport.close()
            await asyncio.sleep(1)
        return web.Response(body=JobAccepted(id=job.id, status=job.status, position=1).model_dump_json(),
                            status=202, content_type="application/json")

    async def _get(self, request: web.Request) -> web.Response:
        if self.get_stall_s:
            await asyncio.sleep(self.get_stall_s)
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return self._error(404, "not_found", "no such job", "id")
        return web.Response(body=job.model_dump_json(), content_type="application/json")

    async def _cancel(self, request: web.Request) -> web.Response:
        job_id = request.match_info["id"]
        if job_id not in self.jobs:
            return self._error(404, "not_found", "no such job", "id")
        self.jobs[job_id] = self.view(job_id, "cancelled")
        return web.Response(body=self.jobs[job_id].model_dump_json(), content_type="application/json")

    async def _events(self, request: web.Request) -> web.StreamResponse:
        job_id = request.match_info["id"]
        if job_id not in self.jobs:
            return self._error(404, "not_found", "no such job", "id")
        self.streams_opened += 1
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b": hello\r\n\r\n")  # a comment, as keep-alives are sent
        while self.event_script:
            event, status, progress = self.event_script.pop(0)
            if event == "drop":
                break
            self.jobs[job_id] = self.view(job_id, status, progress)
            frame = f"event: {event}\r\ndata: {self.jobs[job_id].model_dump_json()}\r\n\r\n".encode()
            if self.split_writes:
                for i in range(0, len(frame), 7):
                    await resp.write(frame[i:i + 7])
            else:
                await resp.write(frame)
            if self.event_delay_s:
                await asyncio.sleep(self.event_delay_s)
            if JobStatus(status).terminal:
                break
        return resp

    async def _artifact(self, request: web.Request) -> web.Response:
        data = self.artifacts.get(request.match_info["id"])
        if data is None:
            return self._error(404, "not_found", "no such artifact (it may have expired)", "id")
        return web.Response(body=data, content_type="image/png")

    async def _autocomplete(self, request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"choices": [{"name": f"{body['value']} cat", "value": f"{body['value']} cat"}]})

    async def _moderate(self, request: web.Request) -> web.Response:
        body = await request.json()
        bad = "kill" in body["text"].lower()
        return web.json_response({"allowed": not bad, "rule": "global.violence" if bad else None,
                                  "category": "violence" if bad else None, "normalized": body["text"].lower()})


def unused_port_url() -> str:
    """A loopback URL where nothing listens (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"

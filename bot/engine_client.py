"""aiohttp client of the engine's HTTP API (/v1, schemas in ``engine.protocol``).

Over 400 lines on purpose: one concept (calling the engines), and its failover, stickiness
and retry rules below only make sense read together; each route's method is a few lines.

- Several engine URLs: a background probe (GET /readyz) keeps each one's health; calls go
  to the first healthy engine in the configured order and fail over on connection errors.
- A job sticks to the engine that accepted it (the client remembers job → engine; after a
  restart pass ``engine_url`` from the job record, or the client asks each engine).
- Retries with exponential backoff. A submit always carries an idempotency key (one is made
  when the request has none) and a retry reuses it, so a retried submit never makes two jobs
  on one engine. A submit fails over to another engine only when the request was never
  delivered (connection refused), or when the engine that may have it has become unreachable;
  in that last case the dead engine may still run its copy after a restart (wasted compute,
  never a second result for the bot, which only knows the job id it got back).
- Every error is a typed ``EngineClientError``. The bearer token appears in no log line and
  no exception message: it is only ever put into the Authorization header.
"""
from __future__ import annotations

import asyncio
import codecs
import email.utils
import json as jsonlib
import logging
import random
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from engine.protocol import (
    AutocompleteRequest, AutocompleteResponse, Catalog, JobAccepted, JobRequest, JobStatus, JobView,
    ModerateResponse,
)

if TYPE_CHECKING:
    from bot.config import BotSettings

log = logging.getLogger("aigc.bot.engine_client")

# ---- errors ---------------------------------------------------------------------------


class EngineClientError(Exception):
    """Base of every error this client raises. ``code`` is the engine's error code if any."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 engine_url: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.engine_url = engine_url


class EngineUnavailable(EngineClientError):
    """No engine answered usefully; try again after ``retry_after_s``."""

    def __init__(self, message: str, *, retry_after_s: float, **kw: Any):
        super().__init__(message, **kw)
        self.retry_after_s = retry_after_s


class QueueFull(EngineClientError):
    """429: the engine's queue is full; the engine asks to retry after ``retry_after_s``."""

    def __init__(self, message: str, *, retry_after_s: float, **kw: Any):
        super().__init__(message, **kw)
        self.retry_after_s = retry_after_s


class InvalidOption(EngineClientError):
    """422/400: ``field`` broke ``rule`` (the engine's message)."""

    def __init__(self, message: str, *, field: str | None, rule: str, **kw: Any):
        super().__init__(message, **kw)
        self.field = field
        self.rule = rule


class PromptRefused(EngineClientError):
    """422 prompt_refused: the content policy refused the prompt; ``rule`` and ``category``
    name the rule (never the matched term)."""

    def __init__(self, message: str, *, rule: str | None, category: str | None,
                 blocked_for_s: float | None = None, **kw: Any):
        super().__init__(message, **kw)
        self.rule = rule
        self.category = category
        # Set when this refusal made the engine block the requester (repeated near misses).
        self.blocked_for_s = blocked_for_s


class RequesterBlocked(EngineClientError):
    """403 requester_blocked: too many refused prompts; the engine takes none from this
    requester for ``retry_after_s`` seconds."""

    def __init__(self, message: str, *, retry_after_s: float, **kw: Any):
        super().__init__(message, **kw)
        self.retry_after_s = retry_after_s


class JobFailed(EngineClientError):
    """The job ended failed or cancelled; ``job`` is its last view."""

    def __init__(self, job: JobView):
        err = job.error
        detail = f"{err.code}: {err.message}" if err else job.status.value
        super().__init__(f"job {job.id} {job.status.value} ({detail})", code=err.code if err else job.status.value)
        self.job = job


class NotFound(EngineClientError):
    """404: no such job, artifact or command (it may have expired)."""


class Unauthorized(EngineClientError):
    """401/403: the engine refused the token (check AIGC_ENGINE_TOKEN)."""


# ---- options and results ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect_s: float = 3.0
    request_s: float = 30.0  # one attempt of an ordinary call
    autocomplete_s: float = 2.0  # Discord gives autocomplete 3 seconds in all
    artifact_s: float = 120.0
    events_idle_s: float = 30.0  # an event stream quiet this long is checked and reopened
    health_s: float = 2.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3  # per call, failovers included
    backoff_s: float = 0.25  # first pause; doubles each time
    max_backoff_s: float = 5.0
    jitter: float = 0.2  # +-20% so that many bots do not retry in step

    def pause(self, attempt: int) -> float:
        base = min(self.max_backoff_s, self.backoff_s * 2**attempt)
        return max(0.0, base * (1 + random.uniform(-self.jitter, self.jitter)))


@dataclass(frozen=True, slots=True)
class SubmittedJob:
    accepted: JobAccepted
    engine_url: str
    idempotency_key: str

    @property
    def id(self) -> str:
        return self.accepted.id


@dataclass(frozen=True, slots=True)
class JobEvent:
    event: str  # queued | running | progress | done | failed | cancelled
    job: JobView


class VerifyReport(BaseModel):
    """POST /v1/verify: what a file's labels and the engine's provenance ledger say."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    sha256: str
    size: int
    format: str = ""
    finding: str
    made_here: bool
    ai_generated: bool
    labels: dict[str, Any] = {}
    ledger: list[dict[str, Any]] = []
    ledger_status: str = ""
    # C2PA, any signer's: state, signer, actions, digital_source_type, ingredients (engine/provenance/credentials.py)
    content_credentials: dict[str, Any] | None = None
    summary: str = ""


@dataclass
class EngineHealth:
    url: str
    healthy: bool = True  # optimistic until the first probe or failure says otherwise
    checked_at: float | None = None
    detail: str = "not probed yet"


# ---- server-sent events -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SSEMessage:
    event: str
    data: str
    id: str | None = None
    retry_ms: int | None = None


class SSEParser:
    """Incremental parser of a text/event-stream (WHATWG HTML §9.2), fed arbitrary chunks."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._first = True
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEMessage]:
        text = self._decoder.decode(chunk)
        if self._first and text:
            text = text.removeprefix("\ufeff")
            self._first = False
        self._buffer += text
        out: list[SSEMessage] = []
        while True:
            m = re.search(r"\r\n|\r|\n", self._buffer)
            if m is None:
                break
            if m.group() == "\r" and m.end() == len(self._buffer):
                break  # a lone CR at the end may be the first half of CRLF
            line, self._buffer = self._buffer[:m.start()], self._buffer[m.end():]
            msg = self._line(line)
            if msg is not None:
                out.append(msg)
        return out

    def _line(self, line: str) -> SSEMessage | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None  # comment (keep-alive)
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> SSEMessage | None:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return SSEMessage(event=event or "message", data="\n".join(data), id=self._id, retry_ms=self._retry)


# ---- the client -----------------------------------------------------------------------


def redact_url(url: str) -> str:
    """The URL without user:password, for logs and messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def parse_retry_after(value: str | None, default: float) -> float:
    """Retry-After as seconds or an HTTP date; ``default`` when absent or unreadable."""
    if not value:
        return default
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


_RETRYABLE_STATUS = frozenset({500, 502, 503, 504})


class _NotDelivered(Exception):
    """The request never reached the engine (connection refused, DNS): safe to fail over."""


class _MaybeDelivered(Exception):
    """The request may have reached the engine (timeout, dropped connection)."""


@dataclass
class _Response:
    status: int
    headers: Mapping[str, str]
    body: bytes
    engine_url: str

    def json(self) -> Any:
        return jsonlib.loads(self.body)


@dataclass
class _CallPlan:
    retry_same_engine: bool = False  # submits: a maybe-delivered request is retried where it went
    pinned: str | None = None  # job calls: only this engine knows the job
    attempts: int | None = None
    timeout_s: float | None = None
    tried: set[str] = field(default_factory=set)


class EngineClient:
    """Use as ``async with EngineClient(urls, token) as engine: ...`` (or start()/close())."""

    def __init__(self, urls: str | Sequence[str], token: str | SecretStr | None = None, *,
                 timeouts: Timeouts = Timeouts(), retry: RetryPolicy = RetryPolicy(),
                 health_interval_s: float = 10.0, remember_jobs: int = 10_000):
        if isinstance(urls, str):
            urls = [u for u in (p.strip() for p in urls.split(",")) if u]
        if not urls:
            raise ValueError("at least one engine URL is needed")
        self._urls = [u.rstrip("/") for u in urls]
        for u in self._urls:
            if urlsplit(u).scheme not in ("http", "https"):
                raise ValueError(f"engine URL {redact_url(u)!r} must start with http:// or https://")
        self._token = token if isinstance(token, SecretStr) or token is None else SecretStr(token)
        self.timeouts = timeouts
        self.retry = retry
        self.health_interval_s = health_interval_s
        self._health = {u: EngineHealth(u) for u in self._urls}
        self._job_engine: OrderedDict[str, str] = OrderedDict()  # job id / artifact id -> engine url
        self._remember = remember_jobs
        self._session: aiohttp.ClientSession | None = None
        self._probe_task: asyncio.Task[None] | None = None
        self.on_error: Callable[[EngineClientError], None] | None = None  # e.g. a metrics counter

    @classmethod
    def from_settings(cls, settings: BotSettings) -> EngineClient:
        return cls(settings.engine_url, settings.engine_token,
                   timeouts=Timeouts(request_s=settings.engine_timeout_s),
                   health_interval_s=settings.engine_health_s)

    def __repr__(self) -> str:
        return f"EngineClient(urls={[redact_url(u) for u in self._urls]!r}, token={'**********' if self._token else None})"

    # -- lifecycle --

    async def start(self, *, probe: bool = True) -> EngineClient:
        if self._session is None:
            self._session = aiohttp.ClientSession(raise_for_status=False)
        if probe and self._probe_task is None and self.health_interval_s > 0:
            self._probe_task = asyncio.create_task(self._probe_forever(), name="engine-health-probe")
        return self

    async def close(self) -> None:
        if self._probe_task is not None:
            self._probe_task.cancel()
            try:
                await self._probe_task
            except asyncio.CancelledError:
                pass
            self._probe_task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> EngineClient:
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("EngineClient is not started; use `async with EngineClient(...)` or await start()")
        return self._session

    # -- health --

    @property
    def engines(self) -> list[EngineHealth]:
        return [self._health[u] for u in self._urls]

    async def probe(self) -> list[EngineHealth]:
        """Probe every engine once now (GET /readyz, no token: it is outside /v1)."""
        await asyncio.gather(*(self._probe_one(u) for u in self._urls))
        return self.engines

    async def _probe_one(self, url: str) -> None:
        h = self._health[url]
        timeout = aiohttp.ClientTimeout(total=self.timeouts.health_s, connect=self.timeouts.connect_s)
        try:
            async with self.session.get(url + "/readyz", timeout=timeout) as resp:
                await resp.read()
                ok = resp.status == 200
                self._mark(url, ok, f"readyz {resp.status}")
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            self._mark(url, False, type(e).__name__)
        h.checked_at = time.monotonic()

    async def _probe_forever(self) -> None:
        while True:
            try:
                await self.probe()
            except Exception:  # a probe must never kill the loop
                log.exception("engine health probe failed")
            await asyncio.sleep(self.health_interval_s)

    def _mark(self, url: str, healthy: bool, detail: str) -> None:
        h = self._health[url]
        if h.healthy != healthy:
            log.warning("engine %s is now %s (%s)", redact_url(url), "healthy" if healthy else "unhealthy", detail)
        h.healthy, h.detail = healthy, detail

    def _candidates(self, plan: _CallPlan) -> list[str]:
        if plan.pinned is not None:
            return [plan.pinned]
        healthy = [u for u in self._urls if self._health[u].healthy and u not in plan.tried]
        unhealthy = [u for u in self._urls if not self._health[u].healthy and u not in plan.tried]
        return healthy + unhealthy  # the unhealthy ones last: the probe may be out of date

    # -- job stickiness --

    def remember(self, job_id: str, engine_url: str) -> None:
        """Tell the client which engine holds a job (e.g. from the store after a restart)."""
        url = engine_url.rstrip("/")
        if url not in self._health:
            raise ValueError(f"{redact_url(url)!r} is not one of the configured engines")
        self._job_engine[job_id] = url
        self._job_engine.move_to_end(job_id)
        while len(self._job_engine) > self._remember:
            self._job_engine.popitem(last=False)

    def engine_of(self, job_id: str) -> str | None:
        return self._job_engine.get(job_id)

    def _learn(self, view: JobView, url: str) -> None:
        self.remember(view.id, url)
        for art in view.artifacts:
            self.remember(f"artifact:{art.id}", url)

    async def _locate(self, key: str, path: str) -> str:
        """The engine that knows a job/artifact: remembered, else the first that answers 200."""
        known = self._job_engine.get(key)
        if known is not None:
            return known
        last: EngineClientError | None = None
        for url in self._candidates(_CallPlan()):
            try:
                resp = await self._call("HEAD" if key.startswith("artifact:") else "GET", path,
                                        plan=_CallPlan(pinned=url, attempts=1))
            except NotFound:
                continue
            except EngineClientError as e:
                last = e
                continue
            self.remember(key, resp.engine_url)
            return resp.engine_url
        if last is not None:
            raise last
        raise NotFound(f"no engine knows {key.removeprefix('artifact:')}", status=404)

    # -- API --

    async def catalog(self) -> Catalog:
        resp = await self._call("GET", "/v1/catalog")
        return _model(Catalog, resp)

    async def submit(self, request: JobRequest) -> SubmittedJob:
        """POST /v1/jobs. Retries reuse the idempotency key (made here if the request has none)."""
        if request.idempotency_key is None:
            request = request.model_copy(update={"idempotency_key": uuid.uuid4().hex})
        key = request.idempotency_key
        assert key is not None
        resp = await self._call("POST", "/v1/jobs", json=request.model_dump(mode="json"),
                                plan=_CallPlan(retry_same_engine=True))
        if resp.status == 200:  # an engine that answered with the finished job (?wait)
            view = _model(JobView, resp)
            accepted = JobAccepted(id=view.id, status=view.status, position=view.position)
            self._learn(view, resp.engine_url)
        else:
            accepted = _model(JobAccepted, resp)
            self.remember(accepted.id, resp.engine_url)
        return SubmittedJob(accepted=accepted, engine_url=resp.engine_url, idempotency_key=key)

    async def job(self, job_id: str, *, engine_url: str | None = None) -> JobView:
        url = await self._job_url(job_id, engine_url)
        resp = await self._call("GET", f"/v1/jobs/{job_id}", plan=_CallPlan(pinned=url))
        view = _model(JobView, resp)
        self._learn(view, url)
        return view

    async def cancel(self, job_id: str, *, engine_url: str | None = None) -> JobView:
        url = await self._job_url(job_id, engine_url)
        resp = await self._call("DELETE", f"/v1/jobs/{job_id}", plan=_CallPlan(pinned=url))
        return _model(JobView, resp)

    async def artifact(self, artifact_id: str, *, job_id: str | None = None) -> bytes:
        """GET /v1/artifacts/{id}: the file's bytes, from the engine that made it."""
        key = f"artifact:{artifact_id}"
        path = f"/v1/artifacts/{artifact_id}"
        url = self._job_engine.get(key) or (self._job_engine.get(job_id) if job_id else None)
        if url is None:
            url = await self._locate(key, path)
        resp = await self._call("GET", path, plan=_CallPlan(pinned=url, timeout_s=self.timeouts.artifact_s))
        return resp.body

    async def display(self, job_id: str, *, propagator: str, propagate_id: str) -> bytes:
        """POST /v1/jobs/{id}/display: the job's one labelled picture (a grid, or its output
        scaled up), naming who posts it; the engine records it in its provenance ledger."""
        url = await self._job_url(job_id, None)
        resp = await self._call("POST", f"/v1/jobs/{job_id}/display",
                                json={"propagator": propagator, "propagate_id": propagate_id},
                                plan=_CallPlan(pinned=url, timeout_s=self.timeouts.artifact_s))
        return resp.body

    async def autocomplete(self, request: AutocompleteRequest) -> AutocompleteResponse:
        resp = await self._call("POST", "/v1/autocomplete", json=request.model_dump(mode="json"),
                                plan=_CallPlan(attempts=max(1, len(self._urls)), timeout_s=self.timeouts.autocomplete_s))
        return _model(AutocompleteResponse, resp)

    async def moderate(self, text: str, *, guild: str | None = None, rules: Any | None = None,
                       automod: Any | None = None) -> ModerateResponse:
        """POST /v1/moderate: the policy's verdict on a text (global rules plus the given
        guild rules and imported AutoMod rules)."""
        body: dict[str, Any] = {"text": text, "guild": guild}
        if rules is not None:
            body["rules"] = rules
        if automod is not None:
            body["automod"] = automod
        resp = await self._call("POST", "/v1/moderate", json=body)
        return _model(ModerateResponse, resp)

    async def verify(self, data: bytes) -> VerifyReport:
        """POST /v1/verify with the file as the body."""
        resp = await self._call("POST", "/v1/verify", data=data,
                                plan=_CallPlan(timeout_s=self.timeouts.artifact_s))
        return _model(VerifyReport, resp)

    async def events(self, job_id: str, *, engine_url: str | None = None) -> AsyncIterator[JobEvent]:
        """The job's events until it is finished (GET /v1/jobs/{id}/events, server-sent events).

        A dropped or quiet stream is checked with GET /v1/jobs/{id} (which raises
        EngineUnavailable once its retries are spent) and reopened; the last event is always
        the finished job."""
        url = await self._job_url(job_id, engine_url)
        empty_streams = 0
        while True:
            got_any = False
            try:
                async for ev in self._stream_events(url, job_id):
                    got_any = True
                    yield ev
                    if ev.job.status.terminal:
                        return
            except (_NotDelivered, _MaybeDelivered) as e:
                log.info("event stream of job %s on %s broke (%s); checking the job", job_id, redact_url(url), e)
            view = await self.job(job_id, engine_url=url)
            if view.status.terminal:
                yield JobEvent(view.status.value, view)
                return
            empty_streams = 0 if got_any else empty_streams + 1
            if empty_streams:  # a stream that gives nothing is not reopened in a tight loop
                await asyncio.sleep(self.retry.pause(min(empty_streams - 1, 5)))

    async def wait(self, job_id: str, *, engine_url: str | None = None, timeout_s: float | None = None) -> JobView:
        """Until the job is finished: the done view, or JobFailed (failed/cancelled)."""
        async def _last() -> JobView:
            last: JobView | None = None
            async for ev in self.events(job_id, engine_url=engine_url):
                last = ev.job
            assert last is not None
            return last

        try:
            view = await asyncio.wait_for(_last(), timeout_s)
        except asyncio.TimeoutError:
            raise EngineUnavailable(f"job {job_id} did not finish within {timeout_s:g}s",
                                    retry_after_s=self.health_interval_s) from None
        if view.status is not JobStatus.done:
            raise JobFailed(view)
        return view

    async def _stream_events(self, url: str, job_id: str) -> AsyncIterator[JobEvent]:
        timeout = aiohttp.ClientTimeout(total=None, connect=self.timeouts.connect_s,
                                        sock_read=self.timeouts.events_idle_s)
        parser = SSEParser()
        try:
            async with self.session.get(f"{url}/v1/jobs/{job_id}/events", headers=self._headers(),
                                        timeout=timeout) as resp:
                if resp.status != 200:
                    _raise_for(_Response(resp.status, resp.headers, await resp.read(), redact_url(url)),
                               self.health_interval_s)
                async for chunk in resp.content.iter_any():
                    for msg in parser.feed(chunk):
                        try:
                            view = JobView.model_validate_json(msg.data)
                        except ValidationError:
                            log.warning("skipping an unreadable %r event of job %s", msg.event, job_id)
                            continue
                        self._learn(view, url)
                        yield JobEvent(msg.event if msg.event != "message" else view.status.value, view)
        except aiohttp.ClientConnectorError as e:
            self._mark(url, False, type(e).__name__)
            raise _NotDelivered(type(e).__name__) from None
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as e:
            raise _MaybeDelivered(type(e).__name__) from None

    async def _job_url(self, job_id: str, engine_url: str | None) -> str:
        if engine_url is not None:
            self.remember(job_id, engine_url)
            return engine_url.rstrip("/")
        return await self._locate(job_id, f"/v1/jobs/{job_id}")

    # -- transport --

    def _headers(self) -> dict[str, str]:
        if self._token is None:
            return {}
        return {"Authorization": f"Bearer {self._token.get_secret_value()}"}

    async def _once(self, method: str, url: str, path: str, json: Any, timeout_s: float,
                    data: bytes | None = None) -> _Response:
        timeout = aiohttp.ClientTimeout(total=timeout_s, connect=self.timeouts.connect_s)
        headers = self._headers()
        if data is not None:
            headers["Content-Type"] = "application/octet-stream"
        try:
            async with self.session.request(method, url + path, json=json, data=data, headers=headers,
                                            timeout=timeout) as resp:
                body = await resp.read()
                return _Response(resp.status, resp.headers, body, url)
        except aiohttp.ClientConnectorError as e:  # refused, unreachable, DNS: nothing was sent
            raise _NotDelivered(f"{type(e).__name__}") from None
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as e:
            raise _MaybeDelivered(f"{type(e).__name__}") from None

    async def _call(self, method: str, path: str, *, json: Any = None, plan: _CallPlan | None = None,
                    data: bytes | None = None) -> _Response:
        """One API call with retries and failover; returns a 2xx response or raises."""
        try:
            return await self._call_engines(method, path, json=json, plan=plan, data=data)
        except EngineClientError as e:
            if self.on_error is not None:
                self.on_error(e)
            raise

    async def _call_engines(self, method: str, path: str, *, json: Any, plan: _CallPlan | None,
                            data: bytes | None) -> _Response:
        plan = plan or _CallPlan()
        attempts = plan.attempts or self.retry.attempts
        timeout_s = plan.timeout_s or self.timeouts.request_s
        sticky: str | None = None  # submit: where a maybe-delivered request went
        problems: list[str] = []
        retry_after = self.health_interval_s
        for attempt in range(attempts):
            candidates = [sticky] if sticky else self._candidates(plan)
            if not candidates:
                plan.tried.clear()  # everyone failed once: go round again after a pause
                candidates = self._candidates(plan)
            url = candidates[0]
            try:
                resp = await self._once(method, url, path, json, timeout_s, data)
            except _NotDelivered as e:
                self._mark(url, False, str(e))
                plan.tried.add(url)
                sticky = None  # it is down: another engine may take the request
                problems.append(f"{redact_url(url)}: {e}")
                log.info("%s %s: %s unreachable (%s), attempt %d/%d", method, path, redact_url(url), e,
                         attempt + 1, attempts)
                if plan.pinned is None and self._candidates(plan):
                    continue  # fail over at once
            except _MaybeDelivered as e:
                problems.append(f"{redact_url(url)}: {e}")
                log.info("%s %s: no answer from %s (%s), attempt %d/%d", method, path, redact_url(url), e,
                         attempt + 1, attempts)
                if plan.retry_same_engine:
                    sticky = url
                else:
                    plan.tried.add(url)
            else:
                if resp.status < 400:
                    if not self._health[url].healthy:
                        self._mark(url, True, f"{method} {path} {resp.status}")
                    return resp
                if resp.status not in _RETRYABLE_STATUS:
                    _raise_for(_Response(resp.status, resp.headers, resp.body, redact_url(url)),
                               self.health_interval_s)
                retry_after = parse_retry_after(resp.headers.get("Retry-After"), retry_after)
                problems.append(f"{redact_url(url)}: HTTP {resp.status}")
                if resp.status == 503:
                    self._mark(url, False, "HTTP 503")
                if plan.retry_same_engine:
                    sticky = url  # a 5xx says nothing about whether the job was taken
                else:
                    plan.tried.add(url)
            if attempt + 1 < attempts:
                await asyncio.sleep(self.retry.pause(attempt))
        raise EngineUnavailable(f"{method} {path} failed after {attempts} attempts: {'; '.join(problems[-3:])}",
                                retry_after_s=retry_after)


def _model(model: type[BaseModel], resp: _Response) -> Any:
    try:
        return model.model_validate_json(resp.body)
    except ValidationError as e:
        raise EngineClientError(f"{redact_url(resp.engine_url)} sent a {model.__name__} this bot cannot read: "
                                f"{e.errors()[0]['msg']}", status=resp.status, engine_url=resp.engine_url) from None


def _raise_for(resp: _Response, default_retry_s: float) -> None:
    """Map an engine error response to the typed exception."""
    err: dict[str, Any] = {}
    try:
        body = resp.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            err = body["error"]
    except ValueError:
        pass
    code = err.get("code")
    message = str(err.get("message") or f"HTTP {resp.status}")
    fieldname = err.get("field")
    kw: dict[str, Any] = {"status": resp.status, "code": code, "engine_url": resp.engine_url}
    status = resp.status
    if code == "requester_blocked":
        raise RequesterBlocked(message, retry_after_s=parse_retry_after(resp.headers.get("Retry-After"), 900.0),
                               **kw)
    if status in (401, 403):
        raise Unauthorized(f"the engine at {resp.engine_url} refused the bot's token (HTTP {status}); "
                           "check AIGC_ENGINE_TOKEN", **kw)
    if status == 404:
        raise NotFound(message, **kw)
    if status == 429:
        retry = parse_retry_after(resp.headers.get("Retry-After"), 5.0)
        raise QueueFull(f"{message} (retry after {retry:g}s)", retry_after_s=retry, **kw)
    if code == "prompt_refused":
        blocked = (parse_retry_after(resp.headers.get("Retry-After"), 900.0)
                   if err.get("escalation") == "blocked" else None)
        raise PromptRefused(message, rule=err.get("rule"), category=err.get("category"), blocked_for_s=blocked,
                            **kw)
    if status in (400, 413, 415, 422):
        rule = message
        if fieldname and message.startswith(f"{fieldname}: "):
            rule = message[len(fieldname) + 2:]
        raise InvalidOption(message, field=fieldname, rule=rule, **kw)
    if status >= 500:
        raise EngineUnavailable(message, retry_after_s=parse_retry_after(resp.headers.get("Retry-After"),
                                                                          default_retry_s), **kw)
    raise EngineClientError(message, **kw)


__all__ = [
    "EngineClient", "EngineClientError", "EngineHealth", "EngineUnavailable", "InvalidOption", "JobEvent",
    "JobFailed", "NotFound", "PromptRefused", "QueueFull", "RequesterBlocked", "RetryPolicy", "SSEMessage",
    "SSEParser", "SubmittedJob", "Timeouts", "Unauthorized", "VerifyReport", "parse_retry_after", "redact_url",
]

"""Admission: from a request to a queued, journalled job, or a 4xx that names the field and rule.

Idempotency (the same key gives the same job, also across restarts), follow-ups resolved from
their parent, options validated against the command's schema, every text checked by the prompt
gate before any compute, then the queue (429 when full) and the journal.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.config import EngineSettings
from engine.errors import EngineError
from engine.job_table import JobTable
from engine.jobs import Job
from engine.journal import Journal, JournalEntry
from engine.metrics import EngineMetrics
from engine.prompt_gate import PromptGate
from engine.protocol import SEED_MAX, CommandSpec, JobRequest
from engine.registry import Registry
from engine.sdk import OptionError
from engine.scheduler import QueueFull, Scheduler
from engine.validation import FieldError, validate_job_options, validate_option_values

log = logging.getLogger("aigc.engine")


@dataclass(frozen=True)
class Resolved:
    """What a request resolves to once its parent (if any) is looked up."""

    spec: CommandSpec
    options: dict[str, Any]
    seed: int | None
    count: int | None
    action: str = "generate"
    source: tuple[int, int] | None = None
    action_options: dict[str, Any] = field(default_factory=dict)


class Ingress(Protocol):
    """Where an admitted job goes: queued (``QueueFull`` when there is no room) and journalled."""

    async def enqueue(self, job: Job) -> None: ...

    def depth(self, generator: str) -> int: ...


class LocalIngress:
    """One process: the scheduler's lanes, then the SQLite journal."""

    def __init__(self, scheduler: Scheduler, journal: Journal) -> None:
        self.scheduler, self.journal = scheduler, journal

    async def enqueue(self, job: Job) -> None:
        self.scheduler.submit(job)
        await self.journal.accept(journal_entry(job))

    def depth(self, generator: str) -> int:
        return self.scheduler.depth(generator)


class DuplicateKey(Exception):
    """Another node journalled a job under this idempotency key first (the ingress says so)."""


class Admission:
    def __init__(self, settings: EngineSettings, registry: Registry, ingress: Ingress,
                 table: JobTable, gate: PromptGate, metrics: EngineMetrics) -> None:
        self.settings, self.registry, self.ingress = settings, registry, ingress
        self.table, self.gate, self.metrics = table, gate, metrics
        # One lock per idempotency key: retries of one request serialise, others do not wait.
        self._key_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def submit(self, req: JobRequest) -> Job:
        """Validate, check the prompt, and queue. Raises EngineError (4xx) on refusal."""
        key = req.idempotency_key
        if not key:
            return await self._accept(req)
        lock = self._key_locks.setdefault(key, asyncio.Lock())
        async with lock:  # two retries racing must not make two jobs
            try:
                return await self.table.find_key(key) or await self._accept(req)
            except DuplicateKey:  # a retry raced us on another node: its job is the one
                job = await self.table.find_key(key)
                if job is None:
                    raise EngineError(409, "conflict", "idempotency_key: a job under this key is being "
                                      "accepted elsewhere; retry", "idempotency_key") from None
                return job

    async def _accept(self, req: JobRequest) -> Job:
        resolved = await self._resolve(req)
        spec = resolved.spec
        try:
            v = validate_job_options(spec, resolved.options, resolved.seed, resolved.count, self.settings.max_count)
            check = self.registry.checks.get(spec.name)
            if check is not None and resolved.action == "generate":
                try:
                    check(dict(v.options))
                except OptionError as e:
                    raise FieldError(f"options.{e.option}", e.rule) from None
        except FieldError as e:
            self.metrics.refused.labels("invalid").inc()
            raise EngineError(422, e.code, str(e), e.field) from None
        texts = {f"options.{k}": val for k, val in v.options.items() if isinstance(val, str)}
        texts.update({f"options.{k}": val for k, val in resolved.action_options.items() if isinstance(val, str)})
        await self.gate.check(texts, req)
        seed = v.seed if v.seed is not None else secrets.randbelow(SEED_MAX + 1)
        deadline_s = req.deadline_s or self.settings.job_deadline_s
        job = Job(id=secrets.token_hex(8), request=req, spec=spec, options=v.options, seed=seed, count=v.count,
                  deadline=time.monotonic() + deadline_s, action=resolved.action,
                  source=resolved.source, action_options=resolved.action_options,
                  visible_mark=self.settings.visible_mark if req.visible_mark is None else req.visible_mark,
                  model=self.table.model_of(spec.generator))
        try:
            await self.ingress.enqueue(job)
        except QueueFull as e:
            self.metrics.refused.labels("queue_full").inc()
            raise EngineError(429, "queue_full", f"the queue for {e.generator} is full; retry later",
                              headers={"Retry-After": str(int(e.retry_after + 0.999))}) from None
        self.table.remember(job)
        self.metrics.queue_depth.labels(spec.generator).set(self.ingress.depth(spec.generator))
        log.debug("job queued", extra={"job": job.id, "command": spec.name, "count": job.count,
                                      "requester": req.requester.key, "action": job.action})
        return job

    async def _resolve(self, req: JobRequest) -> Resolved:
        spec = self.registry.command(req.command)
        if spec is None:
            raise EngineError(404 if req.parent is None else 422, "unknown_command",
                              f"no command named {req.command!r}", "command")
        if req.parent is None:
            return Resolved(spec, req.options, req.seed, req.count)
        p = req.parent
        parent = await self.table.parent(p.job)
        command = parent[0] if parent else p.command
        options = parent[1] if parent else p.options
        seed = parent[2] if parent else p.seed
        if command is None or options is None or seed is None:
            raise EngineError(404, "unknown_parent", f"job {p.job!r} is not known here; send the "
                              "parent's command, options and seed with it", "parent.job")
        if command != req.command:
            raise EngineError(422, "invalid_parent", "parent.command must match command", "command")
        action_names = [a.name for a in spec.actions]
        if p.action not in action_names:
            raise EngineError(422, "unknown_action", f"/{spec.name} has no action {p.action!r} "
                              f"(one of {', '.join(action_names)})", "parent.action")
        parent_count = parent[3] if parent else None
        if parent_count is not None and p.index >= parent_count:
            raise EngineError(422, "invalid_parent",
                              f"must be below the parent's count ({parent_count})", "parent.index")
        job_fields = {o.name for o in spec.options if o.job_field}
        base = {k: v for k, v in options.items() if k not in job_fields}
        if p.action == "reroll":
            return Resolved(spec, base, req.seed, req.count or parent_count)
        if p.action == "variations":
            return Resolved(spec, base, req.seed, req.count or spec.max_count, "variations", (seed, p.index))
        action = next(a for a in spec.actions if a.name == p.action)
        try:
            action_options = validate_option_values(action.options, req.options, prefix="options")
        except FieldError as e:
            raise EngineError(422, e.code, str(e), e.field) from None
        return Resolved(spec, base, req.seed, req.count or 1, p.action, (seed, p.index), action_options)


def journal_entry(job: Job) -> JournalEntry:
    return JournalEntry(id=job.id, idempotency_key=job.request.idempotency_key,
                        request=job.request.model_dump(mode="json"), command=job.spec.name,
                        options=job.options, seed=job.seed, count=job.count, action=job.action,
                        source=job.source, action_options=job.action_options,
                        visible_mark=job.visible_mark, status=job.status.value, created=job.created)

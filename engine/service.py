"""The engine as plain async functions: submit, inspect, cancel, autocomplete, artifacts.

HTTP handlers (engine/server.py) and the in-process CLI both drive this class; nothing here
knows about HTTP beyond the status code an error maps to.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import struct
import time
import weakref
from dataclasses import dataclass, field as dc_field
from datetime import datetime, timezone
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from pydantic import ValidationError

from engine.artifacts import ArtifactStore, StoredArtifact
from engine.config import EngineSettings
from engine.generator_process import GeneratorDied, GeneratorProcess, GeneratorUnavailable
from engine.jobs import Job
from engine.journal import Journal, JournalEntry
from engine.metrics import EngineMetrics
from engine.protocol import (
    SEED_MAX, ArtifactView, AutocompleteRequest, DisplayRequest, Catalog, Choice, CommandSpec, ErrorInfo,
    JobRequest, JobStatus, JobView,
)
from engine.registry import Registry, build_registry
from engine.scheduler import QueueFull, Requeue, Scheduler
from engine.sdk import EncodeContext, Generator, Output, Plugin
from engine.validation import FieldError, validate_job_options, validate_option_values

if TYPE_CHECKING:
    from engine.provenance.ledger import LedgerRecord

log = logging.getLogger("aigc.engine")
BUILTIN_ACTIONS = ("reroll", "variations")


@dataclass
class EngineError(Exception):
    status: int
    code: str
    message: str
    field: str | None = None
    headers: dict[str, str] = dc_field(default_factory=dict)
    rule: str | None = None
    category: str | None = None
    extra: dict[str, str] = dc_field(default_factory=dict)  # more fields for the error body

    def info(self) -> ErrorInfo:
        return ErrorInfo(code=self.code, message=self.message, field=self.field, rule=self.rule,
                         category=self.category)


STUCK_CHILD_S = 60.0  # a generator process silent this long on a batch is killed
MAX_CRASHES_PER_OUTPUT = 3  # an output whose generator process died under it this often fails


@dataclass
class Generated:
    """One output of the forward stage, with its file bytes when the generator's process
    encoded it already."""

    output: Output
    data: bytes | None = None
    ctx: EncodeContext | None = None  # what the child encoded with


class OutputRefused(Exception):
    """An output that an output check refused (its job fails; nothing is published)."""

    def __init__(self, rule: str | None, category: str | None):
        super().__init__(f"an output was refused by content rule {rule} ({category})")
        self.rule, self.category = rule, category


@dataclass(frozen=True)
class Resolved:
    """What a request resolves to once its parent (if any) is looked up."""

    spec: CommandSpec
    options: dict[str, Any]
    seed: int | None
    count: int | None
    action: str = "generate"
    source: tuple[int, int] | None = None
    action_options: dict[str, Any] = dc_field(default_factory=dict)




class Engine:
    def __init__(self, settings: EngineSettings, *, extra_plugins: list[Plugin] | None = None):
        from engine.policy import NearMissTracker, Policy

        self.settings = settings
        self.extra_plugins = extra_plugins or []
        self.policy = Policy()  # global rules compiled once, at start-up
        self.near_misses = NearMissTracker()
        # Compiling and matching big guild rule sets happens here, not on the event loop.
        self._policy_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="aigc-policy")
        self.output_checks = None  # built at start from the plugins (and optional classifiers)
        self.ledger = None  # provenance ledger: sha256 of every artifact -> job, model, time
        self.metrics = EngineMetrics()
        self.artifacts = ArtifactStore(settings.artifact_max_bytes, settings.artifact_ttl_s)
        self.registry: Registry | None = None
        self.scheduler: Scheduler | None = None
        self.journal: Journal | None = None
        self.device = "cpu"
        self.model_info: dict[str, dict[str, str]] = {}  # generator -> name, version, weights sha256
        self.jobs: dict[str, Job] = {}
        self.by_key: dict[str, str] = {}
        self.ready = False
        self._janitor: asyncio.Task | None = None
        self._warming: asyncio.Task | None = None
        self._remaking = asyncio.Semaphore(1)  # artifacts made again on demand, one at a time
        # One lock per idempotency key: retries of one request serialise, others do not wait.
        self._key_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    # ---- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        from engine.runtime import configure_threads, pick_device

        s = self.settings
        self.device = pick_device(s.device)
        threads = configure_threads(s.threads)
        loop = asyncio.get_running_loop()
        self.registry = await loop.run_in_executor(None, lambda: build_registry(
            self.device, enabled=s.plugins_enabled, disabled=s.plugins_disabled,
            builtin=s.builtin_plugins, extra=self.extra_plugins, processes=s.generator_processes,
            threads=s.threads))
        from engine.policy import OutputChecks, available_image_checks
        from engine.provenance import ProvenanceLedger

        self.output_checks = OutputChecks([*available_image_checks(),
                                           *(c for lp in self.registry.plugins.values()
                                             for c in lp.plugin.output_checks)])
        self.ledger = ProvenanceLedger(Path(s.data_dir) / "provenance.sqlite3")
        self.model_info = {name: {k: str(v) for k, v in g.model_info().items()}
                           for name, g in self.registry.generators.items()}
        self.scheduler = Scheduler(self.registry.generators, self._generate, self._on_result, finish=self._finish,
                                   capacity=s.queue_max, max_queue_delay_ms=s.max_queue_delay_ms,
                                   on_batch=self._on_batch, on_expire=self._finished)
        self.scheduler.start()
        self.journal = Journal(Path(s.data_dir) / "engine-journal.sqlite3")
        await self._replay()
        log.info("engine started", extra={"device": self.device, "threads": threads,
                                          "plugins": sorted(self.registry.plugins),
                                          "failed": [f.name for f in self.registry.failed]})
        self._janitor = loop.create_task(self._janitor_loop())
        if s.warmup:  # serve at once; /readyz says ready only once every generator ran once
            self._warming = loop.create_task(self._warm_then_ready())
        else:
            self._set_ready()

    def readiness(self) -> tuple[bool, dict[str, str]]:
        """Ready once warm, and while no generator is backing off after crashes (its jobs
        wait in the queue meanwhile); the reasons per generator otherwise."""
        paused = self.scheduler.paused() if self.scheduler else {}
        return self.ready and not paused, paused

    def _set_ready(self) -> None:
        self.ready = True
        self.metrics.ready.set(1)

    async def _warm_then_ready(self) -> None:
        await self._warmup()
        self._set_ready()
        log.info("engine warm and ready")

    async def stop(self) -> None:
        self.ready = False
        for task in (self._janitor, self._warming):
            if task:
                task.cancel()
        if self.scheduler:
            await self.scheduler.stop()
        if self.registry:
            await asyncio.get_running_loop().run_in_executor(None, self.registry.close)
        if self.journal:
            self.journal.close()
        if self.ledger:
            self.ledger.close()
        self._policy_pool.shutdown(wait=False, cancel_futures=True)

    async def _warmup(self) -> None:
        """One forward pass per generator so the first user does not pay for lazy init."""
        assert self.registry is not None
        loop = asyncio.get_running_loop()
        for spec in {c.generator: c for c in self.registry.commands.values()}.values():
            g = self.registry.generators[spec.generator]
            try:
                opts = validate_option_values([o for o in spec.options if not o.job_field],
                                              _warmup_options(spec))
                job = Job(id="warmup", request=JobRequest(command=spec.name), spec=spec,
                          options=opts, seed=0, count=1, deadline=time.monotonic() + 600)
                await loop.run_in_executor(None, self._run_batch, g, [(job, 0)])
            except Exception:
                log.exception("warm-up failed", extra={"generator": g.name})

    async def _janitor_loop(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(1.0)
            ticks += 1
            if ticks % 600 == 0 and self.journal is not None:  # finished descriptions age out
                await self.journal.prune(self.settings.job_ttl_s)
            assert self.scheduler is not None
            self.scheduler.expire_overdue()
            cutoff = time.time() - self.settings.job_ttl_s
            for job_id in [j.id for j in self.jobs.values() if j.finished and j.finished < cutoff]:
                job = self.jobs.pop(job_id)
                if job.request.idempotency_key:
                    self.by_key.pop(job.request.idempotency_key, None)

    # ---- catalog --------------------------------------------------------------------

    def catalog(self) -> Catalog:
        assert self.registry is not None
        return self.registry.catalog()

    # ---- submit ---------------------------------------------------------------------

    async def submit(self, req: JobRequest) -> Job:
        """Validate, check the prompt, and queue. Raises EngineError (4xx) on refusal."""
        key = req.idempotency_key
        if key:
            lock = self._key_locks.setdefault(key, asyncio.Lock())
            async with lock:  # two retries racing must not make two jobs
                if key in self.by_key and self.by_key[key] in self.jobs:
                    return self.jobs[self.by_key[key]]
                assert self.journal is not None
                old = await self.journal.by_idempotency_key(key)
                if old is not None:  # kept for job_ttl_s, also across restarts
                    job = self.jobs.get(old.id) or self._remember(self._job_from_entry(old))
                    if job is not None:
                        return job
                return await self._accept(req)
        return await self._accept(req)

    async def _accept(self, req: JobRequest) -> Job:
        assert self.scheduler is not None and self.journal is not None
        resolved = await self._resolve(req)
        spec = resolved.spec
        try:
            v = validate_job_options(spec, resolved.options, resolved.seed, resolved.count,
                                     self.settings.max_count)
        except FieldError as e:
            self.metrics.refused.labels("invalid").inc()
            raise EngineError(422, e.code, str(e), e.field) from None
        texts = {f"options.{k}": val for k, val in v.options.items() if isinstance(val, str)}
        texts.update({f"options.{k}": val for k, val in resolved.action_options.items() if isinstance(val, str)})
        await self.check_prompts(texts, req)
        seed = v.seed if v.seed is not None else secrets.randbelow(SEED_MAX + 1)
        deadline_s = req.deadline_s or self.settings.job_deadline_s
        job = Job(id=_new_id(), request=req, spec=spec, options=v.options, seed=seed, count=v.count,
                  deadline=time.monotonic() + deadline_s, action=resolved.action,
                  source=resolved.source, action_options=resolved.action_options,
                  visible_mark=self.settings.visible_mark if req.visible_mark is None else req.visible_mark,
                  model=self._model_info(spec))
        try:
            self.scheduler.submit(job)
        except QueueFull as e:
            self.metrics.refused.labels("queue_full").inc()
            raise EngineError(429, "queue_full", f"the queue for {e.generator} is full; retry later",
                              headers={"Retry-After": str(int(e.retry_after + 0.999))}) from None
        await self.journal.accept(_entry(job))
        self.jobs[job.id] = job
        if req.idempotency_key:
            self.by_key[req.idempotency_key] = job.id
        self.metrics.queue_depth.labels(spec.generator).set(self.scheduler.depth(spec.generator))
        log.debug("job queued", extra={"job": job.id, "command": spec.name, "count": job.count,
                                      "requester": req.requester.key, "action": job.action})
        return job

    async def moderate(self, text: str, rules: Any = None, automod: Any = None):
        """The policy's verdict on a text (POST /v1/moderate). Large or not yet compiled rule
        sets, and long texts, are matched on the policy's own threads, off the event loop."""
        return await self._policy_call(self.policy.is_quick(text, rules, automod),
                                       self.moderate_now, text, rules, automod)

    def moderate_now(self, text: str, rules: Any = None, automod: Any = None):
        """The verdict on the calling thread (worker threads: the output checks)."""
        from engine.policy import RuleError

        try:
            return self.policy.check(text, rules, automod)
        except RuleError as e:
            raise EngineError(422, "invalid_rules", str(e), "rules") from None

    def first_refusal(self, texts: dict[str, str], rules: Any = None,
                      automod: Any = None) -> tuple[str, Any] | None:
        """(field, verdict) of the first text the policy refuses, or None."""
        for field_name, text in texts.items():
            verdict = self.moderate_now(text, rules, automod)
            if not verdict.allowed:
                return field_name, verdict
        return None

    async def _policy_call(self, quick: bool, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` here when ``quick``, else on the policy pool (the loop stays free)."""
        if quick:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._policy_pool, fn, *args)

    async def check_prompts(self, texts: dict[str, str], req: JobRequest) -> None:
        """Check every text input before any compute; refusals name the rule, never the term,
        and repeated refusals block the requester for a while."""
        key = req.requester.key
        until = self.near_misses.blocked_until(key)
        if until is not None:
            retry = max(1, int(until - time.time()))
            raise EngineError(403, "requester_blocked", "too many refused prompts; try again later",
                              headers={"Retry-After": str(retry)})
        rules, automod = (req.policy.rules, req.policy.automod) if req.policy else (None, None)
        longest = max(texts.values(), key=len, default="")
        try:
            refused = await self._policy_call(self.policy.is_quick(longest, rules, automod),
                                              self.first_refusal, texts, rules, automod)
        except EngineError as e:
            e.field = "policy.rules"
            raise
        if refused is not None:
            field_name, verdict = refused
            self.metrics.refused.labels("prompt_refused").inc()
            escalation = (self.near_misses.record_refusal(key) if req.requester.escalation == "engine"
                          else None)  # "front": the front counts refusals and blocks
            blocked = escalation is not None and escalation.blocked_until is not None
            log.info("prompt refused", extra={"rule": verdict.rule, "category": verdict.category,
                                              "requester": key, "blocked": blocked})
            headers, extra = {}, {}
            if escalation is not None and escalation.notify_moderators and escalation.blocked_until is not None:
                # This refusal blocked the requester: say so, so that a front tells moderators.
                headers["Retry-After"] = str(max(1, int(escalation.blocked_until - time.time())))
                extra["escalation"] = "blocked"
            raise EngineError(422, "prompt_refused",
                              f"refused by content rule {verdict.rule} ({verdict.category})",
                              field_name, headers, rule=verdict.rule, category=verdict.category,
                              extra=extra)

    async def verify(self, data: bytes) -> Any:
        """What a file's labels and the provenance ledger say about it (POST /v1/verify)."""
        from engine.provenance import verify

        def run() -> Any:  # every served artifact is in the ledger already (_commit)
            try:
                return verify(data, self.ledger, ledger_status=None if self.ledger else "no ledger")
            except (RecursionError, MemoryError, ValueError, IndexError, struct.error) as exc:
                # The parsers are bounded and report what they refuse; one that still trips
                # on an upload answers a 4xx naming the body (issue 18), and is logged to fix.
                log.warning("verify could not read an upload (%d bytes)", len(data), exc_info=True)
                raise EngineError(422, "unreadable_file", f"body: the file could not be read "
                                  f"({type(exc).__name__})", "body") from None

        return await asyncio.get_running_loop().run_in_executor(None, run)

    async def _resolve(self, req: JobRequest) -> Resolved:
        assert self.registry is not None
        spec = self.registry.command(req.command)
        if spec is None:
            raise EngineError(404 if req.parent is None else 422, "unknown_command",
                              f"no command named {req.command!r}", "command")
        if req.parent is None:
            return Resolved(spec, req.options, req.seed, req.count)
        p = req.parent
        parent = await self._parent(p.job)
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
            return Resolved(spec, base, req.seed, req.count or spec.max_count, "variations",
                            (seed, p.index))
        action = next(a for a in spec.actions if a.name == p.action)
        try:
            action_options = validate_option_values(action.options, req.options, prefix="options")
        except FieldError as e:
            raise EngineError(422, e.code, str(e), e.field) from None
        return Resolved(spec, base, req.seed, req.count or 1, p.action, (seed, p.index), action_options)

    async def _parent(self, job_id: str) -> tuple[str, dict, int, int] | None:
        job = self.jobs.get(job_id)
        if job is not None:
            return job.spec.name, job.options, job.seed, job.count
        assert self.journal is not None
        e = await self.journal.get(job_id)
        return (e.command, e.options, e.seed, e.count) if e else None

    def _model_info(self, spec: CommandSpec) -> dict[str, str]:
        return dict(self.model_info.get(spec.generator, {"name": spec.generator}))

    # ---- replay after a crash ---------------------------------------------------------

    async def _replay(self) -> None:
        assert self.journal is not None and self.scheduler is not None
        for e in await self.journal.unfinished():
            job = self._job_from_entry(e)
            if job is None:
                self.journal.set_status(e.id, "failed")
                continue
            if job.pending_items == 0:  # every output was recorded before the crash: done
                self._remember(job)
                job.finish(JobStatus.done)
                self._finished(job)
                continue
            try:
                self.scheduler.submit(job)
            except QueueFull:
                job.finish(JobStatus.failed, ErrorInfo(code="queue_full", message="lost on restart"))
                self.journal.set_status(e.id, "failed")
                continue
            self.jobs[job.id] = job
            if e.idempotency_key:
                self.by_key[e.idempotency_key] = job.id
            log.info("job replayed from journal", extra={"job": job.id})

    def _job_from_entry(self, e: JournalEntry) -> Job | None:
        """The job a journal entry describes: a finished one as it ended (its files are made
        again on demand), an unfinished one from its first output not yet recorded."""
        assert self.registry is not None
        spec = self.registry.command(e.command)
        if spec is None:
            return None
        try:
            request = JobRequest.model_validate(e.request)
        except ValidationError as err:  # journalled by an engine with looser rules: not ours to run
            log.warning("journalled job no longer valid", extra={"job": e.id, "error": str(err)[:300]})
            return None
        job = Job(id=e.id, request=request, spec=spec,
                  options=e.options, seed=e.seed, count=e.count,
                  deadline=time.monotonic() + self.settings.job_deadline_s, action=e.action,
                  source=e.source, action_options=e.action_options, visible_mark=e.visible_mark,
                  model=e.model if e.terminal and e.model else self._model_info(spec),
                  created=e.created, started=e.started)
        for index, art in e.outputs.items():
            if 0 <= index < job.count:
                job.outputs[index] = ArtifactView.model_validate(art)
        if e.terminal:
            job.status = JobStatus(e.status)
            job.error = ErrorInfo.model_validate(e.error) if e.error else None
            job.finished = e.finished or e.created
            job.next_index = job.count
            job.done_event.set()
        else:  # outputs are recorded in order per job: resume after the recorded prefix
            job.next_index = next((i for i, o in enumerate(job.outputs) if o is None), job.count)
        return job

    def _remember(self, job: Job | None) -> Job | None:
        if job is not None:
            self.jobs[job.id] = job
            if job.request.idempotency_key:
                self.by_key[job.request.idempotency_key] = job.id
        return job

    # ---- running (worker threads) -------------------------------------------------------

    def _generate(self, g: Generator, batch: list[tuple[Job, int]], busy: bool = False) -> list[Any]:
        """The forward pass of a batch (the scheduler's first stage); if the batch fails,
        its items run one by one so one bad item fails alone."""
        try:
            return self._forward(g, batch, busy)
        except GeneratorUnavailable as e:  # nothing ran: wait for the back-off, keep the jobs
            log.warning("generator unavailable; batch kept queued", extra={"generator": g.name, "error": str(e)})
            return [Requeue(str(e), e.retry_after)] * len(batch)
        except GeneratorDied as e:
            return self._after_crash(g, batch, e)
        except Exception as e:
            if len(batch) == 1:
                log.exception("generation failed", extra={"generator": g.name, "job": batch[0][0].id})
                return [e]
            out: list[Any] = []
            for one in batch:
                try:
                    out.extend(self._forward(g, [one], busy))
                except Exception as e1:
                    log.exception("generation failed", extra={"generator": g.name, "job": one[0].id})
                    out.append(e1)
            return out

    def _after_crash(self, g: Generator, batch: list[tuple[Job, int]], e: GeneratorDied) -> list[Any]:
        """The generator process died under this batch. Its items run again, each alone, so
        that an output which kills the process every time fails by itself (after
        MAX_CRASHES_PER_OUTPUT tries alone) while its neighbours finish."""
        log.warning("generator process died under a batch; its items run again",
                    extra={"generator": g.name, "items": len(batch), "error": str(e)})
        if len(batch) > 1:
            return [Requeue(str(e), solo=True)] * len(batch)
        job, index = batch[0]
        job.crashes[index] = tries = job.crashes.get(index, 0) + 1
        if tries >= MAX_CRASHES_PER_OUTPUT:
            return [GeneratorDied(f"the generator process died {tries} times while making this output")]
        return [Requeue(str(e), solo=True)]

    def _forward(self, g: Generator, batch: list[tuple[Job, int]], busy: bool = False) -> list[Generated]:
        import torch

        items = [job.item(i) for job, i in batch]
        if isinstance(g, GeneratorProcess):  # the child encodes too, outside this process's GIL
            ctxs = [self._encode_context(job, i) for job, i in batch]
            # a guard against a stuck child, not the jobs' deadline: never under STUCK_CHILD_S
            timeout = max(STUCK_CHILD_S, max(job.deadline for job, _ in batch) - time.monotonic())
            made = g.generate_encoded(items, [(job.spec.modality, c) for (job, _), c in zip(batch, ctxs)],
                                      busy, timeout)
            outputs = [Generated(o, data, c) for (o, data), c in zip(made, ctxs)]
        else:
            with torch.inference_mode():
                outputs = [Generated(o) for o in g.generate(items)]
        if len(outputs) != len(items):
            raise RuntimeError(f"generator {g.name} returned {len(outputs)} outputs for {len(items)} items")
        return outputs

    def _finish(self, g: Generator, batch: list[tuple[Job, int]], outputs: list[Any],
                record: bool = True) -> list[Any]:
        """The second stage: output checks, encoding (unless the generator process did) and storing."""
        results: list[Any] = []
        records: list[LedgerRecord] = []
        for (job, i), made in zip(batch, outputs):
            if isinstance(made, BaseException) or job.status.terminal:  # failed, or cancelled meanwhile
                results.append(made)
                continue
            try:
                results.append(self._check_output(job, made.output) or self._store(job, i, made, records))
            except Exception as e:
                log.exception("finishing an output failed", extra={"generator": g.name, "job": job.id})
                results.append(e)
        return self._commit(batch, results, records) if record else results

    def _run_batch(self, g: Generator, batch: list[tuple[Job, int]]) -> list[Any]:
        """Both stages at once, for the warm-up: nothing is served, so nothing is recorded."""
        return self._finish(g, batch, self._forward(g, batch), record=False)

    def _commit(self, batch: list[tuple[Job, int]], results: list[Any], records: list[LedgerRecord]) -> list[Any]:
        """Make a finished batch durable before anyone sees it (finishing thread): the
        provenance ledger's rows first (an output is not done until its file is recorded; one
        transaction per batch), then the journal's note of each output, so that a crash after
        this point neither loses the record nor runs the output again."""
        assert self.ledger is not None and self.journal is not None
        try:
            if records:
                self.ledger.record_meta_many(records)
        except Exception as e:
            log.exception("provenance ledger write failed", extra={"jobs": sorted({m.get("job") for _, m, _ in records})})
            failed = RuntimeError(f"the provenance ledger could not record this output, so it was not published: {e}"[:300])
            for r in results:
                if isinstance(r, ArtifactView):
                    self.artifacts.discard(r.id)
            return [failed if isinstance(r, ArtifactView) else r for r in results]
        done: dict[Job, dict[int, dict[str, Any]]] = {}
        for (job, i), r in zip(batch, results):
            if isinstance(r, ArtifactView):
                done.setdefault(job, {})[i] = r.model_dump(mode="json")
        for job, outputs in done.items():
            try:
                self.journal.record_outputs(job.id, outputs)
            except Exception:  # the result stands; only a crash now would make it again, identically
                log.exception("journal write failed", extra={"job": job.id})
        return results

    def _check_output(self, job: Job, out: Output) -> OutputRefused | None:
        """Text outputs meet the same rules as prompts; other modalities the output checks."""
        ctx = job.request.policy
        if out.text is not None:
            verdict = self.moderate_now(out.text, ctx.rules if ctx else None, ctx.automod if ctx else None)
            if not verdict.allowed:
                return OutputRefused(verdict.rule, verdict.category)
        if self.output_checks is not None:
            v = self.output_checks.run(job.spec.modality, out.data)
            if not v.allowed:
                return OutputRefused(v.rule or v.check, v.category)
        return None

    def _encode_context(self, job: Job, index: int) -> EncodeContext:
        return EncodeContext(meta=provenance_meta(job, index), visible_mark=job.visible_mark,
                             compress_level=self.settings.png_compress_level)

    def _store(self, job: Job, index: int, made: Generated,
               records: list[LedgerRecord]) -> ArtifactView:
        """Keep the artifact; its ledger record is appended to ``records``."""
        assert self.registry is not None
        modality = self.registry.modalities[job.spec.modality]
        ctx = made.ctx or self._encode_context(job, index)
        meta, out = ctx.meta, made.output
        data = made.data if made.data is not None else modality.encode(out, ctx)
        r = job.request.requester
        records.append((data, meta, {"platform": r.platform, "guild": r.guild, "mime": modality.mime}))
        art_id = f"{job.id}-{index}"
        filename = f"{job.spec.name}-{job.seed}-{index}.{modality.extension}"
        stored = self.artifacts.put(art_id, data, modality.mime, filename)
        return ArtifactView(id=art_id, index=index, url=f"/v1/artifacts/{art_id}", mime=modality.mime,
                            filename=filename, size=len(data), sha256=stored.sha256,
                            presentation=modality.presentation, text=out.text,
                            meta={k: v for k, v in out.meta.items() if isinstance(v, (str, int, float, bool))})

    # ---- results (event loop) -----------------------------------------------------------

    def _on_result(self, job: Job, index: int, result: Any) -> None:
        if job.status.terminal:  # cancelled or expired while running: discard
            if isinstance(result, ArtifactView):
                self.artifacts.discard(result.id)
            return
        if isinstance(result, BaseException):
            if isinstance(result, OutputRefused):
                error = ErrorInfo(code="output_refused", message=str(result), rule=result.rule,
                                  category=result.category)
            else:
                error = ErrorInfo(code="generation_failed", message=f"{type(result).__name__}: {result}"[:300])
            job.finish(JobStatus.failed, error)
            if self.scheduler:
                self.scheduler.cancel(job)
        else:
            job.set_output(index, result)
        if job.status.terminal:
            self._finished(job)

    def _finished(self, job: Job) -> None:
        """Bookkeeping for a finished job, after its waiters have been woken: the callback
        is queued behind theirs, so a lone request's response goes out first."""
        asyncio.get_running_loop().call_soon(self._account, job)

    def _account(self, job: Job) -> None:
        gen = job.spec.generator
        self.metrics.jobs.labels(gen, job.status.value).inc()
        if job.started:
            self.metrics.job_seconds.labels(gen, "queue").observe(job.started - job.created)
        if job.finished:
            if job.started:
                self.metrics.job_seconds.labels(gen, "run").observe(job.finished - job.started)
            self.metrics.job_seconds.labels(gen, "total").observe(job.finished - job.created)
        if self.journal:
            self.journal.set_status(job.id, job.status.value,
                                    error=job.error.model_dump(mode="json") if job.error else None,
                                    started=job.started, finished=job.finished)
        total_ms = round((job.finished - job.created) * 1000, 1) if job.finished else None
        log.info("job finished", extra={"job": job.id, "status": job.status.value, "ms": total_ms})

    def _on_batch(self, generator: str, size: int, seconds: float) -> None:
        self.metrics.batch_size.labels(generator).observe(size)
        self.metrics.batch_seconds.labels(generator).observe(seconds)
        if self.scheduler:
            self.metrics.queue_depth.labels(generator).set(self.scheduler.depth(generator))

    # ---- queries ----------------------------------------------------------------------

    async def get(self, job_id: str) -> Job:
        """A job of this engine: in memory, or finished before a restart (from the journal)."""
        job = self.jobs.get(job_id)
        if job is None and self.journal is not None and len(job_id) <= 64:
            entry = await self.journal.get(job_id)
            if entry is not None and entry.terminal:
                job = self._remember(self._job_from_entry(entry))
        if job is None:
            raise EngineError(404, "not_found", f"no job {job_id[:64]!r}", "id")
        return job

    async def artifact(self, artifact_id: str) -> StoredArtifact:
        """An artifact's bytes: from the store, or made again from its job's description
        (after a restart, or once the store let it go) and checked against the recorded sha256."""
        art = self.artifacts.get(artifact_id)
        if art is not None:
            return art
        gone = EngineError(404, "not_found", "no such artifact (its job has expired)", "id")
        job_id, _, tail = artifact_id.rpartition("-")
        if not job_id or not (tail.isascii() and tail.isdigit()) or len(tail) > 6:
            raise gone
        try:
            job = await self.get(job_id)
        except EngineError:
            raise gone from None
        index = int(tail)
        view = job.outputs[index] if job.status is JobStatus.done and index < job.count else None
        if view is None:
            raise gone
        async with self._remaking:
            art = self.artifacts.get(artifact_id)  # made by a request that held the semaphore
            if art is None:
                try:
                    data = await asyncio.get_running_loop().run_in_executor(None, self._remake, job, index)
                except GeneratorUnavailable as e:
                    raise EngineError(503, "generator_unavailable", f"cannot make this file now: {e}",
                                      headers={"Retry-After": str(max(1, round(e.retry_after)))}) from None
                if hashlib.sha256(data).hexdigest() != view.sha256:
                    raise EngineError(410, "artifact_gone", "this file can no longer be made identically "
                                      "(the model or the encoder changed since); run the command again", "id")
                art = self.artifacts.put(artifact_id, data, view.mime, view.filename)
        return art

    async def display(self, job_id: str, req: DisplayRequest) -> StoredArtifact:
        """The picture a front posts for a finished image job: its outputs in one labelled PNG
        (engine/display.py) naming who posts it, recorded in the ledger as a display copy."""
        from engine.display import display_png

        job = await self.get(job_id)
        if job.status is not JobStatus.done:
            raise EngineError(409, "not_done", f"job {job.id} is {job.status.value}; only a finished job "
                              "has a display copy", "id")
        shown = [a for a in job.outputs if a is not None and a.mime == "image/png"]
        if not shown:
            raise EngineError(409, "not_an_image", f"job {job.id} made no PNG images to display", "id")
        files = [(await self.artifact(a.id)).data for a in shown]
        first, last = shown[0].index, shown[-1].index
        meta = {**provenance_meta(job, first), "index": "display",
                "rendition": f"display copy of output {first}" if first == last else
                             f"display copy of outputs {first}-{last}",
                "content_propagator": req.propagator, "propagate_id": req.propagate_id}
        r = job.request.requester

        def make() -> bytes:  # worker thread: compose, label, record before anyone gets it
            assert self.ledger is not None
            data = display_png(files, meta, cell=req.cell, compress_level=self.settings.png_compress_level)
            self.ledger.record_meta(data, meta, platform=r.platform, guild=r.guild, mime="image/png")
            return data

        data = await asyncio.get_running_loop().run_in_executor(None, make)
        digest = hashlib.sha256(data).hexdigest()
        return StoredArtifact(f"{job.id}-display", data, "image/png",
                              f"{job.spec.name}-{job.seed}-display.png", digest)

    def _remake(self, job: Job, index: int) -> bytes:
        """Output ``index`` of a finished job, encoded again (worker thread)."""
        assert self.registry is not None
        g = self.registry.generators[job.spec.generator]
        made = self._forward(g, [(job, index)])[0]
        if made.data is not None:
            return made.data
        return self.registry.modalities[job.spec.modality].encode(made.output, self._encode_context(job, index))

    async def cancel(self, job_id: str) -> Job:
        job = await self.get(job_id)
        if job.status.terminal:
            raise EngineError(409, "already_finished", f"job {job_id} is already {job.status.value}")
        assert self.scheduler is not None
        self.scheduler.cancel(job)
        job.finish(JobStatus.cancelled)
        for art in job.outputs:
            if art is not None:
                self.artifacts.discard(art.id)
        self._finished(job)
        return job

    async def events(self, job_id: str) -> AsyncIterator[tuple[str, JobView]]:
        """The job's current state, then every change, until it is finished."""
        job = await self.get(job_id)
        q: asyncio.Queue = asyncio.Queue()
        job.subscribers.add(q)
        try:
            yield job.status.value, job.view()
            if job.status.terminal:
                return
            while True:
                event, view = await q.get()
                yield event, view
                if view.status.terminal:
                    return
        finally:
            job.subscribers.discard(q)

    async def wait(self, job_id: str, timeout: float) -> Job:
        """The job once it is finished, or as it is after ``timeout`` seconds."""
        job = await self.get(job_id)
        try:
            await asyncio.wait_for(job.done_event.wait(), timeout)
        except TimeoutError:
            pass
        return job

    def autocomplete(self, req: AutocompleteRequest) -> list[Choice]:
        assert self.registry is not None
        spec = self.registry.command(req.command)
        if spec is None:
            raise EngineError(404, "unknown_command", f"no command named {req.command!r}", "command")
        opt = next((o for o in spec.options if o.name == req.option), None)
        if opt is None:
            raise EngineError(422, "invalid_option", f"/{spec.name} has no option {req.option!r}", "option")
        if not opt.autocomplete:
            raise EngineError(422, "invalid_option", f"option {req.option!r} has no autocomplete", "option")
        source = self.registry.plugin_of(spec.name).autocomplete[opt.autocomplete]
        choices: list[Choice] = []
        for c in source(req.value, dict(req.options)):
            if isinstance(c, str):
                c = Choice(name=c[:100], value=c[:100])
            choices.append(c)
            if len(choices) == 25:
                break
        return choices


def provenance_meta(job: Job, index: int) -> dict[str, str]:
    """What every artifact carries inside the file (and the ledger records); a follow-up's
    own options (morph's target) too, so the file says what it is."""
    extra = {"action_options": json.dumps(job.action_options, sort_keys=True, ensure_ascii=False)} \
        if job.action_options else {}
    return {
        "label": "AI-generated",
        "producer": "AIGC Bot",
        "job": job.id,
        "index": str(index),
        "command": job.spec.name,
        "plugin": job.spec.plugin,
        "options": json.dumps(job.options, sort_keys=True, ensure_ascii=False),
        "seed": str(job.seed),
        "action": job.action,
        "model": job.model.get("name", ""),
        "model_version": job.model.get("version", ""),
        "model_sha256": job.model.get("sha256", ""),
        "created": datetime.fromtimestamp(job.created, timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }


def _entry(job: Job) -> JournalEntry:
    return JournalEntry(id=job.id, idempotency_key=job.request.idempotency_key,
                        request=job.request.model_dump(mode="json"), command=job.spec.name,
                        options=job.options, seed=job.seed, count=job.count, action=job.action,
                        source=job.source, action_options=job.action_options,
                        visible_mark=job.visible_mark, status=job.status.value, created=job.created)


def _new_id() -> str:
    return secrets.token_hex(8)


def _warmup_options(spec: CommandSpec) -> dict[str, Any]:
    """Minimal valid options for a warm-up pass: required strings get a word, numbers their min."""
    out: dict[str, Any] = {}
    for o in spec.options:
        if o.required and not o.job_field:
            if o.choices:
                out[o.name] = o.choices[0].value
            elif o.type.value == "string":
                out[o.name] = "x" * max(1, o.min_length or 1)
            elif o.type.value == "boolean":
                out[o.name] = False
            else:
                out[o.name] = o.min_value if o.min_value is not None else 0
    return out

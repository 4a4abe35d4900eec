"""The engine as plain async functions: submit, inspect, cancel, autocomplete, files, verify.

HTTP handlers (engine/server.py) and the in-process CLI both drive this facade; nothing here
knows about HTTP beyond the status code an error maps to. The rooms behind it:

- ``admission``  (engine/admission.py): request → validated, checked, queued, journalled job
- ``gate``       (engine/prompt_gate.py): the content policy before any compute
- ``execution``  (engine/execution.py): forward pass and finishing, on the scheduler's threads
- ``table``      (engine/job_table.py): jobs in memory and finished ones from the journal
- ``files``      (engine/files.py): artifacts made again on demand, display copies
- crash replay   (engine/replay.py, beside engine/journal.py)

This module keeps the life cycle (start, warm-up, readiness, stop, the janitor) and what
happens when a result arrives on the event loop (delivery to the job, metrics, the journal).
"""
from __future__ import annotations

import asyncio
import logging
import struct
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator

from engine.admission import Admission, Ingress, LocalIngress
from engine.artifacts import ArtifactStore, StoredArtifact
from engine.config import EngineSettings
from engine.errors import EngineError
from engine.execution import Execution, error_info
from engine.files import Files
from engine.job_table import JobTable
from engine.jobs import Job
from engine.journal import Journal
from engine.metrics import EngineMetrics
from engine.prompt_gate import PromptGate
from engine.protocol import (
    ArtifactView, AutocompleteRequest, Catalog, Choice, CommandSpec, DisplayRequest, JobRequest,
    JobStatus, JobView,
)
from engine.registry import Registry, build_registry
from engine.replay import replay
from engine.scheduler import Scheduler
from engine.sdk import Plugin
from engine.validation import validate_option_values

if TYPE_CHECKING:
    from engine.provenance import ProvenanceLedger
    from engine.scaleout.ingress import StreamIngress
    from engine.scaleout.node import Shared

__all__ = ["Engine", "EngineError"]
log = logging.getLogger("aigc.engine")
VERIFY_SLOTS = 2


class Engine:
    def __init__(self, settings: EngineSettings, *, extra_plugins: list[Plugin] | None = None):
        self.settings = settings
        self.extra_plugins = extra_plugins or []
        self.metrics = EngineMetrics()
        self.gate = PromptGate(self.metrics)
        self.policy = self.gate.policy
        self.artifacts = ArtifactStore(settings.artifact_max_bytes, settings.artifact_ttl_s)
        self.device = "cpu"
        self.ready = False
        # /v1/verify reads and parses at most this many uploads at once (each up to 32 MiB).
        self.verify_slots = asyncio.Semaphore(VERIFY_SLOTS)
        # Built by start(): what needs the plugins loaded and the data directory open.
        self.registry: Registry | None = None
        self.ledger: ProvenanceLedger | None = None  # sha256 of every artifact -> job, model, time
        self.journal: Journal | None = None
        self.scheduler: Scheduler | None = None
        self.table: JobTable | None = None
        self.execution: Execution | None = None
        self.admission: Admission | None = None
        self.files: Files | None = None
        self._janitor: asyncio.Task | None = None
        self.shared: Shared | None = None  # scaled out (AIGC_QUEUE_URL): Redis and PostgreSQL
        self.stream: StreamIngress | None = None
        self._warming: asyncio.Task | None = None

    @property
    def jobs(self) -> dict[str, Job]:
        """The jobs in memory, by id (empty before start)."""
        return self.table.jobs if self.table is not None else {}

    # ---- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        from engine.policy import OutputChecks, available_image_checks
        from engine.provenance import ProvenanceLedger
        from engine.runtime import configure_threads, pick_device

        s = self.settings
        self.device = pick_device(s.device)
        threads = configure_threads(s.threads)
        loop = asyncio.get_running_loop()
        self.registry = registry = await loop.run_in_executor(None, lambda: build_registry(
            self.device, enabled=s.plugins_enabled, disabled=s.plugins_disabled,
            builtin=s.builtin_plugins, extra=self.extra_plugins, processes=s.generator_processes,
            threads=s.threads))
        output_checks = OutputChecks([*available_image_checks(),
                                      *(c for lp in registry.plugins.values() for c in lp.plugin.output_checks)])
        if s.queue_url is not None:  # scaled out: shared state in PostgreSQL, jobs on Redis Streams
            from engine.scaleout.journal import PgJournal
            from engine.scaleout.ledger import PgProvenanceLedger
            from engine.scaleout.node import connect

            self.shared = await connect(s)
            self.ledger = PgProvenanceLedger(self.shared.pool, loop)
            self.journal = PgJournal(self.shared.pool, loop)  # type: ignore[assignment]
        else:
            self.ledger = ProvenanceLedger(Path(s.data_dir) / "provenance.sqlite3")
            self.journal = Journal(Path(s.data_dir) / "engine-journal.sqlite3")
        model_info = {name: {k: str(v) for k, v in g.model_info().items()} for name, g in registry.generators.items()}
        self.table = JobTable(self.journal, registry, s.job_deadline_s, model_info, shared=self.shared is not None)
        signer = None
        if s.c2pa_sign:  # keys loaded (or the local CA made, once) before anything is made
            from engine.provenance.credentials import Signer, load_keys

            signer = await loop.run_in_executor(None, lambda: Signer(load_keys(s.c2pa_cert, s.c2pa_key, s.data_dir)))
            log.info("signing files with Content Credentials", extra={"c2pa_keys": signer.keys.source})
        self.execution = Execution(s, registry, self.artifacts, self.ledger, self.journal, self.gate, output_checks,
                                   signer)
        self.scheduler = Scheduler(registry.generators, self.execution.generate, self._on_result,
                                   finish=self.execution.finish, capacity=s.queue_max,
                                   max_queue_delay_ms=s.max_queue_delay_ms, on_batch=self._on_batch,
                                   on_expire=self._finished)
        self.scheduler.start()
        if self.shared is not None:  # the lanes stay idle: workers run the jobs
            from engine.scaleout.ingress import StreamIngress

            self.stream = StreamIngress(self.shared.redis, self.shared.keys, self.journal, self.table,
                                        s.queue_max, self._finished, sync_commit=s.database_synchronous_commit)
            ingress: Ingress = self.stream
        else:
            ingress = LocalIngress(self.scheduler, self.journal)
        self.admission = Admission(s, registry, ingress, self.table, self.gate, self.metrics)
        self.files = Files(s, self.artifacts, self.table, self.execution, self.ledger,
                           stored=self.shared.stored_file if self.shared is not None else None)
        if self.stream is not None:
            await self.stream.start()
        else:
            await replay(self.journal, self.scheduler, self.table.restore, self.table.remember, self._finished)
        log.info("engine started", extra={"device": self.device, "threads": threads,
                                          "plugins": sorted(registry.plugins),
                                          "failed": [f.name for f in registry.failed]})
        self._janitor = loop.create_task(self._janitor_loop())
        if s.warmup and self.stream is None:  # scaled out, forward passes happen on the workers  # serve at once; /readyz says ready only once every generator ran once
            self._warming = loop.create_task(self._warm_then_ready())
        else:
            self._set_ready()

    def readiness(self) -> tuple[bool, dict[str, str]]:
        """Ready once warm, and while no generator is backing off after crashes (its jobs
        wait in the queue meanwhile); the reasons per generator otherwise."""
        paused = self.scheduler.paused() if self.scheduler else {}
        if self.stream is not None and not self.stream.healthy:
            paused = {**paused, "queue": self.stream.reason}
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
        if self.stream is not None:
            await self.stream.stop()
        if self.shared is not None:
            await self.journal.close()  # type: ignore[misc]  (PgJournal: its pending writes)
            await self.shared.close()
        elif self.journal:
            self.journal.close()
        if self.ledger:
            self.ledger.close()
        self.gate.close()

    async def _warmup(self) -> None:
        """One forward pass per generator so the first user does not pay for lazy init."""
        assert self.registry is not None and self.execution is not None
        loop = asyncio.get_running_loop()
        for spec in {c.generator: c for c in self.registry.commands.values()}.values():
            g = self.registry.generators[spec.generator]
            try:
                opts = validate_option_values([o for o in spec.options if not o.job_field], _warmup_options(spec))
                job = Job(id="warmup", request=JobRequest(command=spec.name), spec=spec,
                          options=opts, seed=0, count=1, deadline=time.monotonic() + 600)
                await loop.run_in_executor(None, self.execution.run_unrecorded, g, [(job, 0)])
            except Exception:
                log.exception("warm-up failed", extra={"generator": g.name})

    async def _janitor_loop(self) -> None:
        assert self.scheduler is not None and self.table is not None and self.journal is not None
        ticks = 0
        while True:
            await asyncio.sleep(1.0)
            ticks += 1
            if ticks % 600 == 0:  # finished descriptions age out of the journal
                await self.journal.prune(self.settings.job_ttl_s)
            self.scheduler.expire_overdue()
            self.table.forget_finished(self.settings.job_ttl_s)

    # ---- the rooms' entry points ---------------------------------------------------------

    def catalog(self) -> Catalog:
        assert self.registry is not None
        return self.registry.catalog()

    async def submit(self, req: JobRequest) -> Job:
        """Validate, check the prompt, and queue. Raises EngineError (4xx) on refusal."""
        assert self.admission is not None
        return await self.admission.submit(req)

    async def acknowledge(self, job: Job) -> None:
        """Before telling a caller that ``job`` is accepted and not finished yet: scaled out, its
        journal row made durable (engine/scaleout/ingress.py); in one process, nothing to do
        (the SQLite journal committed it in ``submit``)."""
        if self.stream is not None:
            await self.stream.acknowledge(job)

    async def moderate(self, text: str, rules: Any = None, automod: Any = None):
        """The policy's verdict on a text (POST /v1/moderate), off the loop when heavy."""
        return await self.gate.moderate(text, rules, automod)

    async def verify(self, data: bytes) -> Any:
        """What a file's labels and the provenance ledger say about it (POST /v1/verify)."""
        from engine.provenance import verify

        def run() -> Any:  # every served artifact is in the ledger already (Execution._commit)
            try:
                return verify(data, self.ledger, ledger_status=None if self.ledger else "no ledger")
            except (RecursionError, MemoryError, ValueError, IndexError, struct.error) as exc:
                # The parsers are bounded and report what they refuse; one that still trips
                # on an upload answers a 4xx naming the body (issue 18), and is logged to fix.
                log.warning("verify could not read an upload (%d bytes)", len(data), exc_info=True)
                raise EngineError(422, "unreadable_file", f"body: the file could not be read "
                                  f"({type(exc).__name__})", "body") from None

        return await asyncio.get_running_loop().run_in_executor(None, run)

    async def artifact(self, artifact_id: str) -> StoredArtifact:
        """An artifact's bytes: from the store, or made again and sha-checked (engine/files.py)."""
        assert self.files is not None
        return await self.files.artifact(artifact_id)

    async def display(self, job_id: str, req: DisplayRequest) -> StoredArtifact:
        """The labelled picture a front posts for a finished image job (engine/files.py)."""
        assert self.files is not None
        return await self.files.display(job_id, req)

    # ---- results (event loop) -----------------------------------------------------------

    def _on_result(self, job: Job, index: int, result: Any) -> None:
        if job.status.terminal:  # cancelled or expired while running: discard
            if isinstance(result, ArtifactView):
                self.artifacts.discard(result.id)
            return
        if isinstance(result, BaseException):
            job.finish(JobStatus.failed, error_info(result))
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
        if self.journal and self.stream is None:  # scaled out, whoever finishes a job records it
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
        job = await self.table.find(job_id) if self.table is not None else None
        if job is None:
            raise EngineError(404, "not_found", f"no job {job_id[:64]!r}", "id")
        return job

    async def cancel(self, job_id: str) -> Job:
        job = await self.get(job_id)
        if job.status.terminal:
            raise EngineError(409, "already_finished", f"job {job_id} is already {job.status.value}")
        assert self.scheduler is not None
        self.scheduler.cancel(job)
        job.finish(JobStatus.cancelled)
        if self.stream is not None:  # the workers skip its entries; the other nodes hear of it
            await self.stream.cancel(job)
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

"""`aigc worker`'s loop: for each generator it loaded, read up to a preferred batch from the
generator's stream (``XREADGROUP ... COUNT n BLOCK t``), run it, commit, acknowledge.

Exactly once, as the caller sees it: the stream is at-least-once (an entry whose worker died is
claimed by another after ``claim_idle_ms``, with ``XAUTOCLAIM``, and run again), and finishing
is idempotent by (job, index): one PostgreSQL transaction inserts the output's journal row,
its file and its ledger row, ``ON CONFLICT DO NOTHING``, and only a row that was new is
announced. A redo makes the same bytes (determinism by command, options, seed; the file's
provenance metadata comes from the job), so whichever worker's commit wins, the file is one.
An entry is acknowledged (and deleted: the stream's length is its backlog) only after its
commit; one whose generator could not run it is left pending and claimed again later.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import asyncpg
from redis.exceptions import RedisError, ResponseError

from engine.artifacts import ArtifactStore, StoredArtifact
from engine.execution import MAX_CRASHES_PER_OUTPUT, Execution, error_info
from engine.jobs import Job
from engine.protocol import ArtifactView, ErrorInfo, JobStatus
from engine.provenance.ledger import LedgerError
from engine.replay import job_from_entry
from engine.scaleout.journal import PgJournal
from engine.scaleout.ledger import COLUMNS as LEDGER_COLUMNS
from engine.scaleout.ledger import JOB_COLUMN as LEDGER_JOB
from engine.scaleout.ledger import PgProvenanceLedger, row_columns, unnest_rows
from engine.scaleout.metrics import WorkerMetrics
from engine.scaleout.node import Shared
from engine.scaleout.streams import (
    FRESH_ENTRY_MS, GROUP, ensure_group, entry_age_ms, entry_from_payload, output_event, status_event,
)
from engine.scheduler import Requeue
from engine.sdk import Generator

log = logging.getLogger("aigc.worker")

# A batch's commit as one statement. Inputs: $1-$3 the outputs made (job, index, artifact JSON),
# $4 worker, $5 now, $6 started, $7-$8 failed jobs and their errors, $9-$15 the files
# (job, index, id, data, mime, filename, sha256), $16-$29 the ledger rows' columns. Outputs go in
# only for jobs not finished (one cancelled or failed while its batch ran records nothing more:
# a worker may have started it from its stream entry without looking). The files and
# ledger rows of an output go in only when its journal row does (a redo of an output another
# worker recorded first is signed afresh: C2PA manifests are not byte-reproducible, and that copy
# is never served, so it gets no row). A job's ``outputs_done`` grows by the rows this statement
# inserted: an UPDATE re-reads the newest version of a row it waited for, so two workers
# finishing outputs of one job at once still add up. Returns ('new', job, idx) per inserted
# output, ('failed', job) and ('done', job) per job this statement finished, and ('missing', job)
# per job it was given that has no journal row (not committed yet: admission writes the row
# and the stream entries at once; or never journaled; or pruned).
_COMMIT = (
    "WITH new AS (INSERT INTO aigc_outputs (job, idx, artifact, worker, recorded) "
    "  SELECT u.j, u.i, u.a::jsonb, $4, $5 FROM unnest($1::text[], $2::int[], $3::text[]) AS u(j, i, a) "
    "  JOIN aigc_jobs jj ON jj.id = u.j WHERE jj.status NOT IN ('done', 'failed', 'cancelled') "
    "  ON CONFLICT DO NOTHING RETURNING job, idx), "
    "files AS (INSERT INTO aigc_files (id, job, data, mime, filename, sha256) "
    "  SELECT f.id, f.job, f.data, f.mime, f.filename, f.sha256 FROM unnest($9::text[], $10::int[], $11::text[], "
    "  $12::bytea[], $13::text[], $14::text[], $15::text[]) AS f(job, idx, id, data, mime, filename, sha256) "
    "  JOIN new ON new.job = f.job AND new.idx = f.idx ON CONFLICT DO NOTHING), "
    f"ledger AS (INSERT INTO aigc_ledger ({LEDGER_COLUMNS}) SELECT l.* FROM {unnest_rows(16)} "
    f"  AS l({LEDGER_COLUMNS}) JOIN new ON new.job = l.job "
    "  AND new.idx = l.output_index ON CONFLICT DO NOTHING), "
    "failed AS (UPDATE aigc_jobs j SET status = 'failed', error = f.e::jsonb, started = coalesce(j.started, $6), "
    "  finished = $5, updated = $5 FROM unnest($7::text[], $8::text[]) AS f(id, e) "
    "  WHERE j.id = f.id AND j.status NOT IN ('done', 'failed', 'cancelled') RETURNING j.id), "
    "counted AS (SELECT job, count(*)::int AS n FROM new GROUP BY job), "
    "moved AS (UPDATE aigc_jobs j SET outputs_done = j.outputs_done + c.n, started = coalesce(j.started, $6), "
    "  updated = $5, status = CASE WHEN j.outputs_done + c.n >= j.count THEN 'done' ELSE 'running' END, "
    "  finished = CASE WHEN j.outputs_done + c.n >= j.count THEN $5 ELSE j.finished END "
    "  FROM counted c WHERE j.id = c.job AND j.id <> ALL($7::text[]) "
    "  AND j.status NOT IN ('done', 'failed', 'cancelled') RETURNING j.id, j.status) "
    "SELECT 'new' AS kind, job, idx FROM new "
    "UNION ALL SELECT 'failed', id, NULL FROM failed "
    "UNION ALL SELECT 'done', id, NULL FROM moved WHERE status = 'done' "
    "UNION ALL SELECT DISTINCT 'missing', m.j, NULL::int FROM unnest($1::text[] || $7::text[]) AS m(j) "
    "  WHERE NOT EXISTS (SELECT 1 FROM aigc_jobs x WHERE x.id = m.j)")
# A commit that finds a job's row missing tries again after each of these pauses (the row is
# usually a fraction of a millisecond behind), then leaves the job's entries pending: claimed
# after the idle timeout, they are looked up in the journal and dropped if the job is not there.
MISSING_RETRY_S = (0.002, 0.01, 0.05)
STATS_EVERY_S = 2.0
# An entry delivered this often (its workers died under it each time) fails its job.
MAX_DELIVERIES = MAX_CRASHES_PER_OUTPUT + 2


@dataclass
class Entry:
    id: bytes
    job: str
    index: int
    payload: bytes | None = None  # the job as accepted (streams.job_payload)


async def commit_batch(conn: asyncpg.Connection, outputs: list[tuple[str, int, str]], failed: dict[str, str],
                       files: list[tuple[str, int, str, StoredArtifact]], ledger_rows: list[tuple], *,
                       worker: str, now: float, started: float) -> list[asyncpg.Record]:
    """Run ``_COMMIT``: ``outputs`` (job, index, artifact JSON), ``failed`` (job -> error JSON),
    ``files`` (job, index, artifact id, file), ``ledger_rows`` (the ledger's column order)."""
    return await conn.fetch(
        _COMMIT, [o[0] for o in outputs], [o[1] for o in outputs], [o[2] for o in outputs], worker, now, started,
        list(failed), list(failed.values()),
        [f[0] for f in files], [f[1] for f in files], [f[2] for f in files], [f[3].data for f in files],
        [f[3].mime for f in files], [f[3].filename for f in files], [f[3].sha256 for f in files],
        *row_columns(ledger_rows))


class Worker:
    def __init__(self, shared: Shared, execution: Execution, generators: dict[str, Generator],
                 journal: PgJournal, ledger: PgProvenanceLedger, artifacts: ArtifactStore, *,
                 name: str, model_info: dict[str, dict[str, str]], deadline_s: float,
                 claim_idle_ms: int, block_ms: int = 2000) -> None:
        self.shared, self.execution, self.generators = shared, execution, generators
        self.journal, self.ledger, self.artifacts = journal, ledger, artifacts
        self.name, self.model_info, self.deadline_s = name, model_info, deadline_s
        self.claim_idle_ms, self.block_ms = claim_idle_ms, block_ms
        self.metrics = WorkerMetrics()
        self.stopping = asyncio.Event()
        self.ready = False
        self.queue_up = False
        self._item_seconds: dict[str, float] = {}
        self._background: set[asyncio.Task] = set()

    def _up(self, ok: bool) -> None:
        self.queue_up = ok
        self.metrics.redis_up.set(int(ok))

    @property
    def redis(self):
        return self.shared.redis

    async def run(self) -> None:
        """Until ``stopping`` is set: each lane finishes and acknowledges the batch in hand."""
        lanes = [asyncio.create_task(self._lane(g), name=f"lane-{g.name}") for g in self.generators.values()]
        stats = asyncio.create_task(self._stats_loop())
        self.ready = True
        try:
            await asyncio.gather(*lanes)
        finally:
            stats.cancel()
            await asyncio.gather(stats, return_exceptions=True)

    # ---- one generator ----------------------------------------------------------------

    async def _lane(self, g: Generator) -> None:
        stream = self.shared.keys.stream(g.name)
        prefs = [p for p in g.preferred_batch_sizes if p <= g.max_batch_size]
        count = max(prefs) if prefs else g.max_batch_size
        pool = ThreadPoolExecutor(1, thread_name_prefix=f"worker-{g.name}")
        claim_every = max(0.1, self.claim_idle_ms / 2000)
        next_claim = 0.0
        backoff = 0.2
        finishing: asyncio.Task | None = None
        need_group = True
        try:
            while not self.stopping.is_set():
                try:
                    if need_group:  # at start, and after Redis was away (it may be back empty)
                        await ensure_group(self.redis, stream)
                        need_group = False
                    claimed = False
                    entries: list[Entry] = []
                    if time.monotonic() >= next_claim:
                        next_claim = time.monotonic() + claim_every
                        entries = await self._claim(g.name, stream, count)
                        claimed = bool(entries)
                    if not entries:
                        got = await self.redis.xreadgroup(GROUP, self.name, {stream: ">"}, count=count,
                                                          block=self.block_ms)
                        entries = [_entry(eid, f) for eid, f in (got[0][1] if got else [])]
                    self._up(True)
                    backoff = 0.2
                    if entries:  # batch k+1 runs while batch k commits (one commit in flight, in order)
                        finish = await self._process(g, stream, entries, claimed, pool)
                        if finishing is not None:
                            await finishing
                        finishing = asyncio.create_task(self._finish_guarded(g.name, finish))
                        await asyncio.sleep(0)  # the commit goes out before the next read does
                except ResponseError as e:
                    need_group = True
                    if "NOGROUP" not in str(e):  # Redis restarted empty: the group is made again
                        log.exception("stream read failed", extra={"generator": g.name})
                        await asyncio.sleep(backoff)
                except (RedisError, OSError) as e:
                    need_group = True
                    self._up(False)
                    log.warning("job queue unreachable; retrying", extra={"generator": g.name,
                                                                        "error": f"{type(e).__name__}"})
                    await asyncio.sleep(backoff)
                    backoff = min(2.0, backoff * 2)
                except Exception:  # PostgreSQL away, a bug: the entries stay pending, claimed later
                    log.exception("a batch failed; its entries are left pending", extra={"generator": g.name})
                    await asyncio.sleep(backoff)
                    backoff = min(2.0, backoff * 2)
        finally:
            if finishing is not None:
                await finishing
            pool.shutdown(wait=False, cancel_futures=True)

    @staticmethod
    async def _finish_guarded(generator: str, finish: Callable[[], Awaitable[None]]) -> None:
        try:
            await finish()
        except Exception:  # PostgreSQL or Redis away: not acknowledged, so claimed and redone later
            log.exception("committing a batch failed; its entries are left pending", extra={"generator": generator})

    async def _claim(self, generator: str, stream: str, count: int) -> list[Entry]:
        """Entries another worker took and left unacknowledged past the idle timeout."""
        _, got, _ = await self.redis.xautoclaim(stream, GROUP, self.name, self.claim_idle_ms, "0-0", count=count)
        entries = [_entry(eid, f) for eid, f in got if f]
        if entries:
            self.metrics.claimed.labels(generator).inc(len(entries))
            log.warning("claimed entries of an idle worker", extra={"generator": generator, "entries": len(entries)})
        return entries

    async def _process(self, g: Generator, stream: str, entries: list[Entry], claimed: bool,
                       pool: ThreadPoolExecutor) -> Callable[[], Awaitable[None]]:
        """Read the jobs, run the batch; returns the second step (commit, announce, acknowledge).
        Jobs of fresh entries come with the entry (no round trip to PostgreSQL before the
        forward pass); the others are read from the journal, and a job finished meanwhile is
        skipped. Either way the commit records outputs only for jobs not finished."""
        t0 = time.perf_counter()
        now_ms = time.time() * 1000
        carried = {} if claimed else {
            e.job: c for e in entries if entry_age_ms(e.id, now_ms) < FRESH_ENTRY_MS
            and (c := entry_from_payload(e.job, e.payload)) is not None}
        stale = sorted({e.job for e in entries} - set(carried))
        known = {**carried, **(await self.journal.many(stale) if stale else {})}
        deliveries = await self._deliveries(stream, entries) if claimed else {}
        ack: list[bytes] = []
        batch: list[tuple[Job, int]] = []
        ids: list[bytes] = []
        jobs: dict[str, Job] = {}
        poisoned: dict[str, ErrorInfo] = {}
        for e in entries:
            entry = known.get(e.job)
            if entry is None or entry.terminal or e.index in entry.outputs or not 0 <= e.index < entry.count:
                ack.append(e.id)  # gone, finished, cancelled, or done by another worker already
                self.metrics.items.labels(g.name, "skipped").inc()
                continue
            if deliveries.get(e.id, 0) > MAX_DELIVERIES:
                poisoned[e.job] = ErrorInfo(code="generation_failed", message=(
                    f"the workers running this output died {deliveries[e.id] - 1} times"))
                ack.append(e.id)
                continue
            job = jobs.get(e.job)
            if job is None:
                spec = self.execution.registry.command(entry.command)
                job = job_from_entry(entry, spec, deadline_s=self.deadline_s,
                                     model=self.model_info.get(spec.generator, {}) if spec else {})
                if job is None:
                    poisoned[e.job] = ErrorInfo(code="generation_failed", message="the job can no longer run here")
                    ack.append(e.id)
                    continue
                jobs[e.job] = job
            batch.append((job, e.index))
            ids.append(e.id)
        if claimed and batch:
            self.metrics.redone.labels(g.name).inc(len(batch))
        failed: dict[str, ErrorInfo] = dict(poisoned)
        results: list[Any]
        rows: list[tuple]
        if batch:  # "running" goes out at once, sent while the batch runs (nothing waits for it);
            # PostgreSQL learns it with the results (one commit)
            announce = asyncio.create_task(self._announce([status_event(j, JobStatus.running.value) for j in jobs
                                                           if known[j].status == JobStatus.queued.value]))
            self._background.add(announce)
            announce.add_done_callback(self._background.discard)
            started = time.time()
            results, rows = await asyncio.get_running_loop().run_in_executor(pool, self._run, g, batch)
            for (job, index), r, eid in zip(batch, results, ids):
                if isinstance(r, Requeue):  # left pending: claimed again after the idle timeout
                    self.metrics.items.labels(g.name, "requeued").inc()
                    continue
                ack.append(eid)
                if isinstance(r, BaseException):
                    failed.setdefault(job.id, error_info(r))
        else:
            results, rows, started = [], [], time.time()

        async def finish() -> None:
            events: list[str] = []
            if batch or failed:
                done, missing = await self._commit(g.name, batch, results, rows, failed, started)
                events += done
                if missing:  # left pending (not acknowledged): looked up again when claimed
                    held = {eid for (job, _), eid in zip(batch, ids) if job.id in missing}
                    ack[:] = [a for a in ack if a not in held]
                    log.warning("jobs not in the journal: their entries are held until claimed",
                                extra={"generator": g.name, "jobs": len(missing), "entries": len(held)})
            if batch:
                self.metrics.batch_size.labels(g.name).observe(len(batch))
                self.metrics.batch_seconds.labels(g.name).observe(time.perf_counter() - t0)
            async with self.redis.pipeline(transaction=False) as pipe:  # one round trip: announce, acknowledge
                for ev in events:  # first: what a caller waits for
                    pipe.publish(self.shared.keys.events, ev)
                if ack:
                    pipe.xack(stream, GROUP, *ack)
                    pipe.xdel(stream, *ack)
                if batch:
                    per = 0.8 * self._item_seconds.get(g.name, 0.05) + 0.2 * (time.perf_counter() - t0) / len(batch)
                    self._item_seconds[g.name] = per
                    pipe.hset(self.shared.keys.item_seconds, g.name, f"{per:.4f}")
                await pipe.execute()
        return finish

    async def _deliveries(self, stream: str, entries: list[Entry]) -> dict[bytes, int]:
        ids = sorted(e.id for e in entries)
        got = await self.redis.xpending_range(stream, GROUP, min=ids[0], max=ids[-1], count=len(entries) * 4)
        return {p["message_id"]: int(p["times_delivered"]) for p in got}

    def _run(self, g: Generator, batch: list[tuple[Job, int]]) -> tuple[list[Any], list[tuple]]:
        """Forward pass, checks, encoding (worker thread); the ledger rows for the commit."""
        outputs = self.execution.generate(g, batch, False)
        results, records = self.execution.finish_uncommitted(g, batch, outputs)
        try:
            rows = self.ledger.rows(records)
        except LedgerError as e:  # not recordable: not published (as in one process)
            bad = RuntimeError(f"the provenance ledger could not record this output, so it was not published: {e}"[:300])
            results = [bad if isinstance(r, ArtifactView) else r for r in results]
            rows = []
        return results, rows

    async def _commit(self, generator: str, batch: list[tuple[Job, int]], results: list[Any],
                      rows: list[tuple], failed: dict[str, ErrorInfo], started: float) -> tuple[list[str], set[str]]:
        """One statement (one round trip, one transaction, one WAL flush): outputs and, for
        those it inserts (each only once), their files and ledger rows; the failed jobs; the
        others' state. Returns the events to announce (only what this commit changed) and the
        jobs whose journal row is still missing after a few tries (their outputs not recorded)."""
        made = [(job, index, r) for (job, index), r in zip(batch, results) if isinstance(r, ArtifactView)]
        files = {r.id: self.artifacts.get(r.id) for _, _, r in made}
        for _, _, r in made:
            self.artifacts.discard(r.id)
        errors = {j: json.dumps(e.model_dump(mode="json")) for j, e in failed.items()}
        events: list[str] = []
        pauses = iter(MISSING_RETRY_S)
        while True:
            kept = [(job.id, i, r.id, files[r.id]) for job, i, r in made if files.get(r.id) is not None]
            async with self.shared.pool.acquire() as conn:
                got = await commit_batch(conn, [(job.id, i, r.model_dump_json()) for job, i, r in made],
                                         errors, kept, rows, worker=self.name, now=time.time(), started=started)
            missing = {r["job"] for r in got if r["kind"] == "missing"}
            events += self._events(generator, made, got, missing)
            if not missing or (pause := next(pauses, None)) is None:
                return events, missing
            await asyncio.sleep(pause)  # the row may be a moment behind its stream entry: again, for those only
            made = [m for m in made if m[0].id in missing]
            errors = {j: e for j, e in errors.items() if j in missing}
            rows = [row for row in rows if row[LEDGER_JOB] in missing]

    def _events(self, generator: str, made: list[tuple[Job, int, ArtifactView]], got: list[asyncpg.Record],
                missing: set[str]) -> list[str]:
        fresh = {(r["job"], r["idx"]) for r in got if r["kind"] == "new"}
        events: list[str] = []
        for job, i, r in made:
            if (job.id, i) in fresh:
                self.metrics.items.labels(generator, "done").inc()
                events.append(output_event(job.id, i, r.model_dump(mode="json")))
            elif job.id not in missing:
                self.metrics.items.labels(generator, "duplicate").inc()
        for r in got:
            if r["kind"] == "failed":
                self.metrics.items.labels(generator, "failed").inc()
                events.append(status_event(r["job"], JobStatus.failed.value))
            elif r["kind"] == "done":
                events.append(status_event(r["job"], JobStatus.done.value))
        return events

    async def _announce(self, events: list[str]) -> None:
        if not events:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for ev in events:
                    pipe.publish(self.shared.keys.events, ev)
                await pipe.execute()
        except (RedisError, OSError):  # the API nodes re-read PostgreSQL every second
            log.warning("could not announce results", extra={"events": len(events)})

    # ---- stream statistics ------------------------------------------------------------

    async def _stats_loop(self) -> None:
        while True:
            for name in self.generators:
                stream = self.shared.keys.stream(name)
                try:
                    length = await self.redis.xlen(stream)
                    groups = await self.redis.xinfo_groups(stream)
                except (RedisError, OSError):
                    self._up(False)
                    continue
                self.metrics.stream_length.labels(name).set(length)
                for grp in groups:
                    if grp.get("name") in (GROUP, GROUP.encode()):
                        self.metrics.stream_pending.labels(name).set(grp.get("pending") or 0)
                        self.metrics.stream_lag.labels(name).set(grp.get("lag") or 0)
                        self.metrics.stream_consumers.labels(name).set(grp.get("consumers") or 0)
            await asyncio.sleep(STATS_EVERY_S)


def _entry(eid: bytes, fields: dict[bytes, bytes]) -> Entry:
    """An entry as the API nodes write it; anything else reads as no job (acknowledged, dropped)."""
    try:
        return Entry(eid, fields[b"job"].decode(), int(fields[b"i"]), fields.get(b"e"))
    except (KeyError, ValueError, UnicodeDecodeError):
        return Entry(eid, "", -1)

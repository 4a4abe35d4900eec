"""The API node's side of the scale-out: admit jobs into their generator's stream, and keep the
jobs this node has in memory up to date with what the workers did (events on pub/sub, and a
re-read from PostgreSQL every second for whatever pub/sub dropped).

Admission writes the job's journal row (PostgreSQL) and its stream entries (Redis) at the same
time: the entries carry the job, so a worker can start before the row has committed, and only
its commit needs the row (a commit that finds none tries again a moment later, then leaves the
entries pending: engine/scaleout/worker.py). When either side refuses (the stream full, Redis
or PostgreSQL down, an idempotency key taken) the other side's half is taken back before the
caller hears anything, so nothing acknowledged is ever lost and nothing unacknowledged is
recorded. The journal row is committed without waiting for its WAL flush (visible at once);
the job is acknowledged to its caller only once it is durable (``acknowledge``): by a flush of
its own when the answer is "accepted", or by the worker's synchronous commit of its results
when the answer is the finished job (``?wait=``), which the WAL flushes after the acceptance."""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from typing import Callable

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from engine.admission import journal_entry
from engine.errors import EngineError
from engine.job_table import JobTable
from engine.jobs import Job
from engine.journal import JournalEntry
from engine.protocol import ArtifactView, ErrorInfo, JobStatus
from engine.scaleout.journal import PgJournal
from engine.scaleout.streams import ADMIT_LUA, GROUP, Keys, ensure_group, job_payload, status_event
from engine.scheduler import QueueFull

log = logging.getLogger("aigc.engine.scaleout")
HEALTH_EVERY_S = 0.5
RESYNC_EVERY_S = 1.0
DEFAULT_ITEM_SECONDS = 0.05


class StreamIngress:
    def __init__(self, redis: Redis, keys: Keys, journal: PgJournal, table: JobTable, capacity: int,
                 finished: Callable[[Job], None], *, sync_commit: bool = True) -> None:
        self.redis, self.keys, self.journal, self.table = redis, keys, journal, table
        # AIGC_DATABASE_SYNCHRONOUS_COMMIT: on, acceptance is flushed before it is acknowledged
        self.sync_commit = sync_commit
        self.capacity, self.finished = capacity, finished
        self.healthy = False
        self.reason = "not connected yet"
        self._admit = redis.register_script(ADMIT_LUA)
        self._depth: dict[str, int] = {}
        self._tasks: list[asyncio.Task] = []
        self._node = secrets.token_hex(4)

    async def start(self) -> None:
        await self._check()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._health_loop(), name="queue-health"),
                       loop.create_task(self._listen_loop(), name="queue-events"),
                       loop.create_task(self._resync_loop(), name="queue-resync")]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ---- admission ------------------------------------------------------------------

    async def enqueue(self, job: Job) -> None:
        """Journal the job and append its outputs to the stream, both at once: one round trip's
        wait on the way in, not two. The journal row commits without waiting for its WAL flush,
        so a worker can start on the job while the flush happens; ``acknowledge`` makes it
        durable before the job is acknowledged to anyone (or a later synchronous commit already
        did)."""
        gen = job.spec.generator
        stream = self.keys.stream(gen)
        indices = list(range(job.next_index, job.count))
        if self._depth.get(gen, 0) + len(indices) > self.capacity:
            # Full when we last looked: look again first, so that a full stream keeps refusing
            # without touching PostgreSQL. (Otherwise the admission script's own check is the
            # bound; it refuses atomically however many nodes admit at once.)
            try:
                length = await self.redis.xlen(stream)
            except (RedisError, OSError) as e:
                raise self._unavailable(e) from None
            self._depth[gen] = length
            if length + len(indices) > self.capacity:
                raise QueueFull(gen, await self._retry_after(gen, length))
        entry = journal_entry(job)
        # The connection first: when the pool is busy, the stream waits with the row, so a
        # worker never runs far ahead of a row still queued for a connection. Then the stream
        # entries go out first: a worker's start is what the caller waits for; the row only has
        # to be there by the worker's commit, a forward pass later.
        async with self.journal.pool.acquire() as conn:
            admitted, journaled = await asyncio.gather(
                self._admit(keys=[stream], args=[self.capacity, job.id, job_payload(entry), *indices]),
                self.journal.accept(entry, flush=not self.sync_commit, conn=conn),
                return_exceptions=True)
        if isinstance(admitted, BaseException):
            if not isinstance(journaled, BaseException):
                await self.journal.forget(job.id)
            if isinstance(admitted, (RedisError, OSError)):
                raise self._unavailable(admitted) from None
            raise admitted
        length, ids = int(admitted[0]), admitted[1:]
        if isinstance(journaled, BaseException):  # PostgreSQL refused (or a key taken): take the entries back
            await self._withdraw(stream, ids)
            raise journaled
        if length < 0:
            await self.journal.forget(job.id)
            self._depth[gen] = -1 - length
            raise QueueFull(gen, await self._retry_after(gen, -1 - length))
        self._depth[gen] = length

    async def _withdraw(self, stream: str, ids: list[bytes]) -> None:
        """Remove entries of a job that was not journaled. Should Redis fail us here, a worker
        that runs them finds no journal row, leaves them pending, and drops them when it
        claims them later (engine/scaleout/worker.py): either way nothing is recorded."""
        if not ids:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.xack(stream, GROUP, *ids)
                pipe.xdel(stream, *ids)
                await pipe.execute()
        except (RedisError, OSError):
            log.warning("could not withdraw the stream entries of a job that was not journaled",
                        extra={"entries": len(ids)})

    async def acknowledge(self, job: Job) -> None:
        """Before a caller hears of an unfinished job (202, ``?wait=`` run out): its journal
        row flushed to disk. A finished job needs nothing: its end was committed synchronously
        after its acceptance (a worker's results, a failure, a cancel), and PostgreSQL flushes
        the WAL in order."""
        if not self.sync_commit or job.status.terminal:
            return
        try:
            there = await self.journal.make_durable(job.id)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            log.exception("could not make a job's acceptance durable", extra={"job": job.id})
            there = False
        if not there:
            raise EngineError(503, "journal_unavailable", "the job journal (PostgreSQL) could not record the "
                              "job; it may or may not run: retry with the same idempotency_key",
                              headers={"Retry-After": "1"})

    def depth(self, generator: str) -> int:
        return self._depth.get(generator, 0)

    def _unavailable(self, e: BaseException) -> EngineError:
        self._set_health(False, f"redis: {type(e).__name__}")
        return EngineError(503, "queue_unavailable", "the job queue (Redis) cannot be reached; nothing was "
                           "accepted, retry later", headers={"Retry-After": "1"})

    async def _retry_after(self, generator: str, backlog: int) -> float:
        try:
            per_item = float(await self.redis.hget(self.keys.item_seconds, generator) or DEFAULT_ITEM_SECONDS)
        except (RedisError, OSError, ValueError):
            per_item = DEFAULT_ITEM_SECONDS
        return max(1.0, round(backlog * per_item, 1))

    async def cancel(self, job: Job) -> None:
        """Tell the workers (they skip a finished job's entries) and the other nodes."""
        await self.journal.update_status(job.id, JobStatus.cancelled.value, finished=job.finished)
        await self._publish(status_event(job.id, JobStatus.cancelled.value))

    async def _publish(self, message: str) -> None:
        try:
            await self.redis.publish(self.keys.events, message)
        except (RedisError, OSError):  # the others re-read PostgreSQL within a second
            log.warning("could not publish a job event", extra={"channel": self.keys.events})

    # ---- Redis health and its data ---------------------------------------------------------

    def _set_health(self, ok: bool, reason: str = "") -> None:
        if ok != self.healthy:
            log.warning("job queue reachable" if ok else "job queue unreachable", extra={"reason": reason})
        self.healthy, self.reason = ok, reason

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_EVERY_S)
            await self._check()

    async def _check(self) -> None:
        try:
            await self.redis.ping()
            if not await self.redis.exists(self.keys.epoch):
                await self._new_epoch()
            self._set_health(True)
        except (RedisError, OSError) as e:
            self._set_health(False, f"redis: {type(e).__name__}: {e}"[:200])

    async def _new_epoch(self) -> None:
        """Redis holds none of our streams (first start, or it restarted empty): the first node
        to see it queues every unfinished job of the journal again."""
        if not await self.redis.set(self.keys.epoch, f"{self._node}:{time.time():.0f}", nx=True):
            return
        entries = await self.journal.unfinished()
        requeued = 0
        for e in entries:
            spec = self.table.registry.command(e.command)
            if spec is None:
                continue
            stream = self.keys.stream(spec.generator)
            todo = [i for i in range(e.count) if i not in e.outputs]
            if todo:
                await ensure_group(self.redis, stream)
                async with self.redis.pipeline(transaction=True) as pipe:
                    for i in todo:
                        pipe.xadd(stream, {"job": e.id, "i": str(i)})
                    await pipe.execute()
                requeued += len(todo)
        log.warning("job queue data was empty: unfinished jobs queued again from the journal",
                    extra={"jobs": len(entries), "outputs": requeued})

    # ---- results from the workers -------------------------------------------------------

    async def _listen_loop(self) -> None:
        backoff = 0.2
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(self.keys.events)
                backoff = 0.2
                await self.resync()  # whatever happened while we were not listening
                async for msg in pubsub.listen():
                    if msg.get("type") == "message":
                        await self._apply_event(msg["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError):
                await asyncio.sleep(backoff)
                backoff = min(2.0, backoff * 2)
            except Exception:  # a bad message must not stop the listener
                log.exception("job event listener failed; restarting it")
                await asyncio.sleep(backoff)
            finally:
                try:
                    await pubsub.aclose()
                except Exception:  # noqa: BLE001 - closing a broken connection
                    pass

    async def _apply_event(self, raw: bytes | str) -> None:
        try:
            msg = json.loads(raw)
            job = self.table.jobs.get(str(msg["job"]))
        except (ValueError, KeyError, TypeError):
            log.warning("malformed job event ignored")
            return
        if job is None or job.status.terminal:
            return
        if msg.get("kind") == "output":
            index = int(msg["index"])
            if 0 <= index < job.count and job.outputs[index] is None:
                job.mark_running()
                job.set_output(index, ArtifactView.model_validate(msg["artifact"]))
                if job.status.terminal:
                    self.finished(job)
        elif msg.get("status") == JobStatus.running.value:
            job.mark_running()
        else:  # finished: the journal says how (the error, every output)
            entry = await self.journal.get(job.id)
            if entry is not None:
                self._apply_entry(job, entry)

    def _apply_entry(self, job: Job, e: JournalEntry) -> None:
        if job.status.terminal:
            return
        if e.status == JobStatus.running.value or e.outputs:
            job.mark_running()
        for index, art in sorted(e.outputs.items()):
            if 0 <= index < job.count and job.outputs[index] is None and not job.status.terminal:
                job.set_output(index, ArtifactView.model_validate(art))
        if e.terminal and not job.status.terminal:
            job.finish(JobStatus(e.status), ErrorInfo.model_validate(e.error) if e.error else None)
        if job.status.terminal:
            self.finished(job)

    async def resync(self) -> None:
        """Re-read this node's unfinished jobs from the journal; fail those past their deadline."""
        live = [j for j in self.table.jobs.values() if not j.status.terminal]
        if not live:
            return
        entries = await self.journal.many([j.id for j in live])
        now = time.monotonic()
        for job in live:
            e = entries.get(job.id)
            if e is not None:
                self._apply_entry(job, e)
            if not job.status.terminal and now > job.deadline:
                error = ErrorInfo(code="deadline_exceeded", message="the job did not finish before its deadline")
                if await self.journal.update_status(job.id, JobStatus.failed.value,
                                                    error=error.model_dump(mode="json"), finished=time.time()):
                    await self._publish(status_event(job.id, JobStatus.failed.value))
                e = await self.journal.get(job.id)
                if e is not None:
                    self._apply_entry(job, e)

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(RESYNC_EVERY_S)
            try:
                await self.resync()
            except Exception:  # PostgreSQL away for a moment: try again next second
                log.exception("re-reading unfinished jobs failed")

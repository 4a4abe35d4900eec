"""Per-generator queues with dynamic micro-batching and round-robin fairness.

Vocabulary follows Triton's dynamic batcher:
- a *lane* is one generator's queue and its worker; items (one per output) are batched
  across jobs up to the generator's ``max_batch_size``;
- when the generator is idle a batch runs at once; while it is busy, items collect;
  ``max_queue_delay_ms`` (default 0) bounds how long an idle lane waits to fill a
  *preferred batch size*;
- *queue policy*: two priority levels (``high`` drains first); inside a level, requesters take
  turns one item at a time, so one user's burst cannot starve another; the queue is bounded
  (in items) and a full queue refuses new jobs.
- *retry*: an item whose generator could not run it (its process down, or died under it)
  comes back as ``Requeue`` instead of a result. It goes back to the front of its lane, which
  pauses for the back-off the generator asked for; items of a batch that crashed run alone
  next (``solo``) so that one poisonous item cannot take its neighbours down with it. Items
  wait so until their job's deadline; nothing accepted is failed for the crash alone.

The scheduler knows nothing of HTTP: ingress (HTTP today, a stream consumer tomorrow) calls
``submit``. A batch goes through two stages, each on its lane's own worker thread:
``execute`` (the forward pass) and ``finish`` (checks, storing). While more work is in hand
they form a pipeline: batch k is finished while batch k+1 runs, at most one batch per lane
being finished at a time; a lone batch goes through both in one hop.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from engine.jobs import Job
from engine.protocol import ErrorInfo, JobStatus
from engine.sdk import Generator

log = logging.getLogger("aigc.engine.scheduler")
LEVELS = ("high", "normal")


class QueueFull(Exception):
    def __init__(self, generator: str, retry_after: float):
        super().__init__(f"the queue for {generator} is full")
        self.generator = generator
        self.retry_after = retry_after


class Requeue(Exception):
    """Not a result: run this item again later, after ``after_s`` (the lane pauses), alone
    when ``solo``. An exception so that the finishing stage passes it through untouched."""

    def __init__(self, reason: str, after_s: float = 0.0, solo: bool = False):
        super().__init__(reason)
        self.reason, self.after_s, self.solo = reason, after_s, solo


class RoundRobin:
    """Jobs grouped by requester; ``take`` hands out one item per requester per turn."""

    def __init__(self) -> None:
        self.by_requester: OrderedDict[str, deque[Job]] = OrderedDict()

    def push(self, job: Job) -> None:
        self.by_requester.setdefault(job.requester_key, deque()).append(job)

    def remove(self, job: Job) -> bool:
        dq = self.by_requester.get(job.requester_key)
        if not dq or job not in dq:
            return False
        dq.remove(job)
        if not dq:
            del self.by_requester[job.requester_key]
        return True

    def take_one(self) -> tuple[Job, int] | None:
        if not self.by_requester:
            return None
        key, dq = next(iter(self.by_requester.items()))
        job = dq[0]
        index = job.next_index
        job.next_index += 1
        if job.pending_items == 0:
            dq.popleft()
        if dq:
            self.by_requester.move_to_end(key)
        else:
            del self.by_requester[key]
        return job, index

    def order(self) -> list[tuple[Job, int]]:
        """Dispatch order of the remaining items, by simulation (for queue positions)."""
        queues = [[(j, i) for j in dq for i in range(j.next_index, j.count)]
                  for dq in self.by_requester.values()]
        out: list[tuple[Job, int]] = []
        turn = 0
        while any(turn < len(q) for q in queues):
            out.extend(q[turn] for q in queues if turn < len(q))
            turn += 1
        return out


@dataclass
class Lane:
    generator: Generator
    capacity: int
    max_queue_delay_s: float
    levels: dict[str, RoundRobin] = field(default_factory=lambda: {lv: RoundRobin() for lv in LEVELS})
    retry: deque[tuple[Job, int, bool]] = field(default_factory=deque)  # (job, index, solo), first out
    paused_until: float = 0.0  # time.monotonic() before which the generator must not be called
    pause_reason: str = ""
    queued_items: int = 0
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    executor: ThreadPoolExecutor | None = None
    finisher: ThreadPoolExecutor | None = None
    finishing: asyncio.Task | None = None  # the batch being finished, if any
    task: asyncio.Task | None = None
    # Seconds per item, smoothed: what a Retry-After estimate is made of.
    item_seconds: float = 0.05

    @property
    def name(self) -> str:
        return self.generator.name

    def take(self, n: int) -> list[tuple[Job, int]]:
        batch: list[tuple[Job, int]] = []
        while self.retry and len(batch) < n:
            job, index, solo = self.retry[0]
            if solo and batch:
                break
            self.retry.popleft()
            batch.append((job, index))
            if solo:
                self.queued_items -= 1
                return batch
        for level in LEVELS:
            rr = self.levels[level]
            while len(batch) < n and (got := rr.take_one()) is not None:
                batch.append(got)
        self.queued_items -= len(batch)
        return batch

    def remove(self, job: Job) -> bool:
        removed = self.levels[job.priority].remove(job)
        if removed:
            self.queued_items -= job.pending_items
            job.next_index = job.count
        retried = [r for r in self.retry if r[0] is job]
        if retried:
            self.retry = deque(r for r in self.retry if r[0] is not job)
            self.queued_items -= len(retried)
        return removed or bool(retried)

    def batch_size(self) -> int:
        """How many items to take now: the largest preferred size that the queue fills
        (padding a partial chunk wastes the generator's time), else everything up to max."""
        cap = min(self.queued_items, self.generator.max_batch_size)
        fits = [p for p in self.generator.preferred_batch_sizes if p <= cap]
        return max(fits) if fits else cap

    def target_batch(self) -> int:
        prefs = [p for p in self.generator.preferred_batch_sizes if p <= self.generator.max_batch_size]
        return max(prefs) if prefs else 1


ExecuteFn = Callable[[Generator, list[tuple[Job, int]], bool], list[Any]]
FinishFn = Callable[[Generator, list[tuple[Job, int]], list[Any]], list[Any]]
ResultFn = Callable[[Job, int, Any], None]


class Scheduler:
    def __init__(self, generators: dict[str, Generator], execute: ExecuteFn, on_result: ResultFn,
                 *, finish: FinishFn, capacity: int = 256, max_queue_delay_ms: float = 0.0,
                 on_batch: Callable[[str, int, float], None] | None = None,
                 on_expire: Callable[[Job], None] | None = None):
        """``execute(generator, batch, busy)`` returns one output (or exception) per item;
        ``busy`` says more work is in hand (items queued, or the previous batch still being
        finished). ``finish`` turns outputs into results (or exceptions) per item;
        ``on_result`` gets each, on the event loop."""
        self.execute = execute
        self.finish = finish
        self.on_result = on_result
        self.on_batch = on_batch
        self.on_expire = on_expire
        self.lanes = {name: Lane(g, capacity, max_queue_delay_ms / 1000)
                      for name, g in generators.items()}
        self._closing = False

    def start(self) -> None:
        for lane in self.lanes.values():
            lane.executor = ThreadPoolExecutor(1, thread_name_prefix=f"gen-{lane.name}")
            lane.finisher = ThreadPoolExecutor(1, thread_name_prefix=f"finish-{lane.name}")
            lane.task = asyncio.get_running_loop().create_task(self._run(lane), name=f"lane-{lane.name}")

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop taking batches; the batch each lane is running is finished and delivered
        if it takes at most ``grace_s`` (queued jobs stay in the journal for the next start)."""
        self._closing = True
        tasks = [l.task for l in self.lanes.values() if l.task]
        for lane in self.lanes.values():
            lane.wakeup.set()  # an idle lane wakes, sees _closing and returns
        _, late = await asyncio.wait(tasks, timeout=grace_s) if tasks else (set(), set())
        for task in late:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        finishing = [l.finishing for l in self.lanes.values() if l.finishing]
        if finishing:
            await asyncio.wait(finishing, timeout=grace_s)
        for lane in self.lanes.values():
            for pool in (lane.executor, lane.finisher):
                if pool:  # a thread still blocked on a stuck generator is not waited for
                    pool.shutdown(wait=False, cancel_futures=True)

    # ---- ingress --------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        lane = self.lanes[job.spec.generator]
        if lane.queued_items + job.pending_items > lane.capacity:
            raise QueueFull(lane.name, self.retry_after(lane))
        lane.levels[job.priority].push(job)
        lane.queued_items += job.pending_items
        self._update_positions(lane)
        lane.wakeup.set()

    def cancel(self, job: Job) -> bool:
        """Remove a queued job; True when it was still waiting."""
        lane = self.lanes[job.spec.generator]
        removed = lane.remove(job)
        if removed:
            self._update_positions(lane)
        return removed

    def retry_after(self, lane: Lane) -> float:
        backlog = lane.queued_items / max(1, lane.generator.max_batch_size)
        return max(1.0, round(backlog * lane.item_seconds * lane.generator.max_batch_size, 1))

    def depth(self, generator: str) -> int:
        return self.lanes[generator].queued_items

    def queued_jobs(self) -> list[Job]:
        jobs = {id(j): j for lane in self.lanes.values() for rr in lane.levels.values()
                for dq in rr.by_requester.values() for j in dq}
        jobs.update((id(j), j) for lane in self.lanes.values() for j, _, _ in lane.retry)
        return list(jobs.values())

    def paused(self) -> dict[str, str]:
        """Lanes whose generator is backing off now, with the reason."""
        now = time.monotonic()
        return {name: lane.pause_reason for name, lane in self.lanes.items() if lane.paused_until > now}

    # ---- worker ---------------------------------------------------------------------

    async def _run(self, lane: Lane) -> None:
        loop = asyncio.get_running_loop()
        g = lane.generator
        while True:
            await lane.wakeup.wait()
            if self._closing:
                return
            if lane.queued_items == 0:
                lane.wakeup.clear()
                continue
            if lane.paused_until > time.monotonic():  # the generator is backing off; the
                # engine's janitor fails waiting jobs at their deadline meanwhile
                await asyncio.sleep(min(1.0, lane.paused_until - time.monotonic()))
                continue
            if lane.max_queue_delay_s > 0 and lane.queued_items < lane.target_batch():
                # Bounded wait for a preferred batch; new arrivals set the event again.
                deadline = loop.time() + lane.max_queue_delay_s
                while lane.queued_items < lane.target_batch() and loop.time() < deadline:
                    lane.wakeup.clear()
                    try:
                        await asyncio.wait_for(lane.wakeup.wait(), deadline - loop.time())
                    except TimeoutError:
                        break
            batch = self._drop_expired(lane.take(lane.batch_size()))
            if lane.queued_items == 0:
                lane.wakeup.clear()
            if not batch:
                continue
            for job, _ in batch:
                job.mark_running()
            self._update_positions(lane)
            t0 = time.perf_counter()
            busy = lane.queued_items > 0 or (lane.finishing is not None and not lane.finishing.done())
            if not busy:  # nothing else in hand: both stages in one hop, results at once
                results = await loop.run_in_executor(lane.executor, self._both_stages, g, batch)
                self._deliver(lane, batch, results, time.perf_counter() - t0)
                continue
            try:
                outputs = await loop.run_in_executor(lane.executor, self.execute, g, batch, True)
            except Exception as e:  # execute isolates per-item errors; this is a bug guard
                log.exception("batch failed", extra={"generator": lane.name})
                outputs = [e] * len(batch)
            run_s = time.perf_counter() - t0
            # The previous batch must be finished before this one starts finishing (order,
            # and a bound on memory); the next forward pass overlaps this one's finishing.
            if lane.finishing:
                await asyncio.shield(lane.finishing)
            lane.finishing = loop.create_task(self._finish(lane, batch, outputs, run_s))

    def _both_stages(self, g: Generator, batch: list[tuple[Job, int]]) -> list[Any]:
        try:
            return self.finish(g, batch, self.execute(g, batch, False))
        except Exception as e:  # both isolate per-item errors; this is a bug guard
            log.exception("batch failed", extra={"generator": g.name})
            return [e] * len(batch)

    async def _finish(self, lane: Lane, batch: list[tuple[Job, int]], outputs: list[Any], run_s: float) -> None:
        t0 = time.perf_counter()
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                lane.finisher, self.finish, lane.generator, batch, outputs)
        except Exception as e:  # finish isolates per-item errors; this is a bug guard
            log.exception("finishing a batch failed", extra={"generator": lane.name})
            results = [e] * len(batch)
        self._deliver(lane, batch, results, run_s + time.perf_counter() - t0)

    def _deliver(self, lane: Lane, batch: list[tuple[Job, int]], results: list[Any], dt: float) -> None:
        lane.item_seconds = 0.8 * lane.item_seconds + 0.2 * dt / len(batch)
        if not any(isinstance(r, Requeue) for r in results):
            lane.pause_reason = ""  # the generator works again
        if self.on_batch:
            self.on_batch(lane.name, len(batch), dt)
        for (job, index), result in zip(batch, results):
            if isinstance(result, Requeue) and not job.status.terminal:
                self._requeue(lane, job, index, result)
                continue
            try:
                self.on_result(job, index, result)
            except Exception:  # one job's bookkeeping must not take the lane down
                log.exception("delivering a result failed", extra={"generator": lane.name, "job": job.id})

    def _requeue(self, lane: Lane, job: Job, index: int, r: Requeue) -> None:
        lane.retry.append((job, index, r.solo))
        lane.queued_items += 1
        if r.after_s > 0:
            lane.paused_until = max(lane.paused_until, time.monotonic() + r.after_s)
            lane.pause_reason = r.reason
        lane.wakeup.set()

    def _drop_expired(self, batch: list[tuple[Job, int]]) -> list[tuple[Job, int]]:
        now = time.monotonic()
        keep = []
        for job, index in batch:
            if job.status.terminal:
                continue  # cancelled or failed while queued: its items are dropped
            if now > job.deadline:
                self.expire(job)
                continue
            keep.append((job, index))
        return keep

    def expire(self, job: Job) -> None:
        self.cancel(job)
        lane = self.lanes[job.spec.generator]
        why = f" (generator {lane.name}: {lane.pause_reason})" if lane.pause_reason else ""
        job.finish(JobStatus.failed, ErrorInfo(code="deadline_exceeded",
                                               message=f"the job did not finish before its deadline{why}"))
        if self.on_expire:
            self.on_expire(job)

    def expire_overdue(self) -> int:
        """Fail queued jobs past their deadline (called periodically)."""
        now = time.monotonic()
        overdue = [j for j in self.queued_jobs() if now > j.deadline]
        for job in overdue:
            self.expire(job)
        return len(overdue)

    def _update_positions(self, lane: Lane) -> None:
        seen: set[int] = set()
        place = 0
        for level in LEVELS:
            for job, _ in lane.levels[level].order():
                place += 1
                if id(job) not in seen:
                    seen.add(id(job))
                    job.set_position(place)

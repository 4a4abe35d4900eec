"""The jobs an engine answers for: those in memory, and finished ones it reads back from the
journal (after a restart, for ``job_ttl_s``), by id or by idempotency key."""
from __future__ import annotations

import time

from engine.jobs import Job
from engine.journal import Journal, JournalEntry
from engine.registry import Registry
from engine.replay import job_from_entry

MAX_ID_CHARS = 64  # longer ids are never ours: not looked up


class JobTable:
    def __init__(self, journal: Journal, registry: Registry, deadline_s: float,
                 model_info: dict[str, dict[str, str]], shared: bool = False) -> None:
        self.journal, self.registry = journal, registry
        # shared: several nodes answer for the same jobs (engine/scaleout), so an unfinished job
        # another node admitted is read back too (and kept up to date by the ingress).
        self.shared = shared
        self.deadline_s, self.model_info = deadline_s, model_info
        self.jobs: dict[str, Job] = {}
        self.by_key: dict[str, str] = {}

    def model_of(self, generator: str) -> dict[str, str]:
        """The model a generator runs now (what a new or replayed job records)."""
        return dict(self.model_info.get(generator, {"name": generator}))

    def restore(self, e: JournalEntry) -> Job | None:
        spec = self.registry.command(e.command)
        return job_from_entry(e, spec, deadline_s=self.deadline_s,
                              model=self.model_of(spec.generator) if spec else {})

    def remember(self, job: Job | None) -> Job | None:
        if job is not None:
            self.jobs[job.id] = job
            if job.request.idempotency_key:
                self.by_key[job.request.idempotency_key] = job.id
        return job

    async def find(self, job_id: str) -> Job | None:
        """In memory, or finished before a restart (from the journal)."""
        job = self.jobs.get(job_id)
        if job is None and len(job_id) <= MAX_ID_CHARS:
            entry = await self.journal.get(job_id)
            if entry is not None and (entry.terminal or self.shared):
                job = self.remember(self.restore(entry))
                if job is not None and not job.status.terminal and (entry.status == "running" or entry.outputs):
                    job.mark_running()
        return job

    async def find_key(self, key: str) -> Job | None:
        """The job an idempotency key names: kept for job_ttl_s, also across restarts."""
        if key in self.by_key and self.by_key[key] in self.jobs:
            return self.jobs[self.by_key[key]]
        old = await self.journal.by_idempotency_key(key)
        if old is None:
            return None
        return self.jobs.get(old.id) or self.remember(self.restore(old))

    async def parent(self, job_id: str) -> tuple[str, dict, int, int] | None:
        """(command, options, seed, count) of a job, to resolve a follow-up."""
        job = self.jobs.get(job_id)
        if job is not None:
            return job.spec.name, job.options, job.seed, job.count
        e = await self.journal.get(job_id)
        return (e.command, e.options, e.seed, e.count) if e else None

    def forget_finished(self, ttl_s: float) -> None:
        """Drop from memory the jobs finished more than ``ttl_s`` ago (the journal has them)."""
        cutoff = time.time() - ttl_s
        for job_id in [j.id for j in self.jobs.values() if j.finished and j.finished < cutoff]:
            job = self.jobs.pop(job_id)
            if job.request.idempotency_key:
                self.by_key.pop(job.request.idempotency_key, None)

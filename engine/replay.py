"""Jobs from the journal after a restart: what an entry describes, and putting the unfinished
ones back in the queue.

A finished job comes back as it ended (its files are made again on demand, identical by
determinism); an unfinished one resumes at its first output not yet recorded, so nothing
served before a crash runs again, and a job whose outputs were all recorded is simply done.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

from pydantic import ValidationError

from engine.jobs import Job
from engine.journal import Journal, JournalEntry
from engine.protocol import ArtifactView, CommandSpec, ErrorInfo, JobRequest, JobStatus
from engine.scheduler import QueueFull, Scheduler

log = logging.getLogger("aigc.engine")


def job_from_entry(e: JournalEntry, spec: CommandSpec | None, *, deadline_s: float,
                   model: dict[str, str]) -> Job | None:
    """The job a journal entry describes (None when its command is gone or its request no
    longer validates). ``model``: what runs it now; a finished job keeps the one that made it."""
    if spec is None:
        return None
    try:
        request = JobRequest.model_validate(e.request)
    except ValidationError as err:  # journalled by an engine with looser rules: not ours to run
        log.warning("journalled job no longer valid", extra={"job": e.id, "error": str(err)[:300]})
        return None
    job = Job(id=e.id, request=request, spec=spec, options=e.options, seed=e.seed, count=e.count,
              deadline=time.monotonic() + deadline_s, action=e.action, source=e.source,
              action_options=e.action_options, visible_mark=e.visible_mark,
              model=e.model if e.terminal and e.model else model, created=e.created, started=e.started)
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


async def replay(journal: Journal, scheduler: Scheduler, restore: Callable[[JournalEntry], Job | None],
                 remember: Callable[[Job], object], finished: Callable[[Job], None]) -> None:
    """Queue every unfinished job of the journal again (``restore`` makes the Job; ``finished``
    does the bookkeeping of one that turns out to be done already)."""
    for e in await journal.unfinished():
        job = restore(e)
        if job is None:
            journal.set_status(e.id, "failed")
            continue
        if job.pending_items == 0:  # every output was recorded before the crash: done
            remember(job)
            job.finish(JobStatus.done)
            finished(job)
            continue
        try:
            scheduler.submit(job)
        except QueueFull:
            job.finish(JobStatus.failed, ErrorInfo(code="queue_full", message="lost on restart"))
            journal.set_status(e.id, "failed")
            continue
        remember(job)
        log.info("job replayed from journal", extra={"job": job.id})

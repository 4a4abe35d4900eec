"""A job's life in the engine: its description, status, outputs and event subscribers."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from engine.protocol import (
    ArtifactView, CommandSpec, ErrorInfo, JobRequest, JobStatus, JobView, Timings,
)
from engine.sdk import Item


@dataclass(eq=False)
class Job:
    id: str
    request: JobRequest
    spec: CommandSpec
    options: dict[str, Any]
    seed: int
    count: int
    deadline: float  # time.monotonic() after which the job fails
    action: str = "generate"
    source: tuple[int, int] | None = None
    action_options: dict[str, Any] = field(default_factory=dict)
    visible_mark: bool = True
    model: dict[str, str] = field(default_factory=dict)
    status: JobStatus = JobStatus.queued
    position: int | None = None
    next_index: int = 0  # next output to hand to the scheduler
    outputs: list[ArtifactView | None] = field(default_factory=list)
    error: ErrorInfo | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    subscribers: set[asyncio.Queue] = field(default_factory=set)
    crashes: dict[int, int] = field(default_factory=dict)  # output -> generator deaths under it
    # Set when the job finishes: waiting needs no per-event views (the hot path of ?wait=).
    done_event: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.outputs = [None] * self.count

    @property
    def requester_key(self) -> str:
        return self.request.requester.key

    @property
    def priority(self) -> str:
        return self.request.priority

    @property
    def pending_items(self) -> int:
        return self.count - self.next_index

    @property
    def done_items(self) -> int:
        return sum(o is not None for o in self.outputs)

    def item(self, index: int) -> Item:
        return Item(command=self.spec.name, options=self.options, seed=self.seed, index=index,
                    action=self.action, source=self.source, action_options=self.action_options)

    # ---- transitions (each emits one event to subscribers) ---------------------------

    def mark_running(self) -> None:
        if self.status is JobStatus.queued:
            self.status = JobStatus.running
            self.started = time.time()
            self.position = None
            self.emit("running")

    def set_output(self, index: int, artifact: ArtifactView) -> None:
        self.outputs[index] = artifact
        if self.done_items == self.count:
            self.finish(JobStatus.done)
        else:
            self.emit("progress")

    def finish(self, status: JobStatus, error: ErrorInfo | None = None) -> None:
        if self.status.terminal:
            return
        self.status = status
        self.error = error
        self.finished = time.time()
        self.position = None
        self.done_event.set()
        self.emit(status.value)

    def set_position(self, position: int) -> None:
        if self.status is JobStatus.queued and position != self.position:
            self.position = position
            self.emit("queued")

    def emit(self, event: str) -> None:
        if self.subscribers:
            view = self.view()
            for q in self.subscribers:
                q.put_nowait((event, view))

    def view(self) -> JobView:
        t = Timings(created=self.created, started=self.started, finished=self.finished,
                    queue_ms=_ms(self.created, self.started), run_ms=_ms(self.started, self.finished),
                    total_ms=_ms(self.created, self.finished))
        done = [o for o in self.outputs if o is not None]
        return JobView(id=self.id, status=self.status, command=self.spec.name,
                       plugin=self.spec.plugin, modality=self.spec.modality, options=self.options,
                       seed=self.seed, count=self.count, position=self.position,
                       progress=len(done) / self.count, requester=self.request.requester,
                       parent=self.request.parent, model=self.model, timings=t,
                       artifacts=done if self.status is JobStatus.done else [], error=self.error,
                       action_options=self.action_options)


def _ms(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round((b - a) * 1000, 3)

"""A single writer thread that commits queued records in groups.

After the first record of a group arrives it waits ``window_s`` (100 ms) so that the rest
of a burst lands in the same transaction, and so that the write happens after the response
it belongs to has gone out (the ledger is not on any request's critical path). ``close`` writes what is
left before it returns: nothing handed to ``put`` is lost on a clean stop.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable, Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger("aigc.engine.group_writer")
_STOP = object()


class GroupWriter(Generic[T]):
    def __init__(self, write: Callable[[list[T]], None], *, window_s: float = 0.1, name: str = "writer") -> None:
        self._write = write
        self._window_s = window_s
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, records: list[T]) -> None:
        if not records:
            return
        if self._closed:  # a late batch after stop: say so rather than lose it silently
            log.warning("records after close were not written", extra={"records": len(records)})
            return
        self._queue.put(records)

    def flush(self, timeout: float = 30.0) -> bool:
        """Block until everything put before this call is written (False on timeout)."""
        if not self._thread.is_alive():
            return False
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                return
            group: list[T] = []
            flushed: list[threading.Event] = []
            if isinstance(first, threading.Event):
                flushed.append(first)
            else:
                group.extend(first)
                time.sleep(self._window_s)
            while True:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stopping = True
                    break
                if isinstance(more, threading.Event):
                    flushed.append(more)
                else:
                    group.extend(more)
            if group:
                try:
                    self._write(group)
                except Exception:  # the caller's write logs what it can; the thread must live on
                    log.exception("group write failed", extra={"records": len(group)})
            for event in flushed:
                event.set()

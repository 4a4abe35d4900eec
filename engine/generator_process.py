"""Generators in their own processes, outside the engine's GIL.

A generator's forward pass is mostly native code that releases the GIL, but between ops it
needs the GIL back; in the engine process the event loop, the encoders and the ledger hold
it often, and each hand-back can cost up to the interpreter's switch interval (measured: a
forward pass next to one busy Python thread ran 50x slower). So the engine runs each
plugin generator in a child process of its own and keeps HTTP, checks and storing at home.

The child re-imports the plugin the way discovery found it (a built-in module or an entry
point), loads the named generator on the device and answers ``generate`` calls over a
private pipe. It can also encode what it made (``generate_encoded``): the file bytes then
come back with each output, and the engine process only checks, stores and serves them. The
pipe uses multiprocessing's pickling, between this process and its own child only (weights
are still loaded from safetensors in the child). A child that dies is reported as a failed
batch and started again on the next call.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from engine.discovery import BUILTIN, load_plugin
from engine.sdk import EncodeContext, Generator, Item, Modality, Output, Plugin

log = logging.getLogger("aigc.engine.generator_process")
START_TIMEOUT_S = 300.0


class GeneratorProcessError(RuntimeError):
    """The child failed to start, died, or raised; the message says which."""


class GeneratorUnavailable(GeneratorProcessError):
    """No child to run the batch: it is backing off after repeated crashes, or could not
    start. Nothing ran; the batch can be tried again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class GeneratorDied(GeneratorProcessError):
    """The child died (or was stopped as stuck) while it held this batch."""


def _import_plugin(name: str, source: str) -> Plugin:
    if not can_isolate(source):
        raise GeneratorProcessError(f"plugin {name!r} from {source!r} cannot be imported in a child process")
    return load_plugin(name, source)


Encoding = tuple[str, EncodeContext]  # (modality name, context) for one item


def _encode_all(modalities: dict[str, Modality], outputs: list[Output],
                encodes: list[Encoding | None]) -> list[bytes | None]:
    """Bytes per output; None where not asked for or where encoding failed (the engine
    encodes that one again itself and reports its error)."""
    out: list[bytes | None] = []
    for o, e in zip(outputs, encodes):
        try:
            out.append(modalities[e[0]].encode(o, e[1]) if e is not None else None)
        except Exception:  # noqa: BLE001
            log.exception("encoding in the generator process failed", extra={"modality": e[0] if e else None})
            out.append(None)
    return out


def _child(conn: Connection, plugin: str, source: str, generator: str, device: str, threads: int) -> None:
    """The child's whole life: load, then answer batches until the pipe closes."""
    import torch

    from engine.artifacts import BUILTIN_MODALITIES
    from engine.runtime import configure_threads

    full = configure_threads(threads)  # 0: all cores
    lean = max(1, full - 1)
    try:
        p = _import_plugin(plugin, source)
        modalities = {m.name: m for m in (*BUILTIN_MODALITIES, *p.modalities)}
        g = next(x for x in p.generators if x.name == generator)
        g.load(device)
        conn.send(("ready", {k: str(v) for k, v in g.model_info().items()}))
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which decides
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    while True:
        try:
            items, encodes, busy = conn.recv()
        except (EOFError, OSError):
            return
        if not threads:  # adaptive: see GeneratorProcess.generate_encoded
            want = lean if busy else full
            if want != torch.get_num_threads():
                torch.set_num_threads(want)
        try:
            with torch.inference_mode():
                outputs = g.generate(items)
            if encodes is None:
                conn.send(("ok", outputs))
            else:
                conn.send(("ok", list(zip(outputs, _encode_all(modalities, outputs, encodes)))))
        except BaseException as e:  # noqa: BLE001
            conn.send(("error", f"{type(e).__name__}: {e}"[:500]))


class GeneratorProcess(Generator):
    """Stands in for a plugin's generator: same name and batch sizes; ``generate`` runs in
    the child. Calls are serialised (the scheduler runs one batch per generator at a time).

    A child that dies is started again on the next call: at once up to ``MAX_RESTARTS`` times
    per ``RESTART_WINDOW_S``, then only after a back-off that doubles with each further
    restart in the window (``BACKOFF_S`` up to ``BACKOFF_MAX_S``). Meanwhile calls raise
    ``GeneratorUnavailable`` at once with the seconds left, and the engine keeps the batch
    queued (a child that cannot start, or crashes on every batch, must not stall its lane
    with loads, nor turn a crash loop into lost jobs)."""

    MAX_RESTARTS = 3
    RESTART_WINDOW_S = 60.0
    BACKOFF_S = 1.0
    BACKOFF_MAX_S = 30.0

    def __init__(self, inner: Generator, plugin: str, source: str, threads: int = 0) -> None:
        self.name = inner.name
        self.max_batch_size = inner.max_batch_size
        self.preferred_batch_sizes = tuple(inner.preferred_batch_sizes)
        self.plugin, self.source, self.threads = plugin, source, threads
        self.device = "cpu"
        self._info: dict[str, str] = {}
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._restarts: list[float] = []

    # -- lifecycle ----------------------------------------------------------------------
    def load(self, device: str) -> None:
        self.device = device
        with self._lock:
            self._stop()
            self._start()

    def _start(self) -> None:
        # A fresh interpreter (python -m this module), not multiprocessing's spawn: spawn
        # re-imports the parent's __main__, which breaks engines embedded in scripts.
        args = {"plugin": self.plugin, "source": self.source, "generator": self.name,
                "device": self.device, "threads": self.threads}
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        mine, theirs = socket.socketpair()
        with mine, theirs:
            proc = subprocess.Popen([sys.executable, "-m", "engine.generator_process", str(theirs.fileno()),
                                     json.dumps(args)], pass_fds=(theirs.fileno(),), env=env)
            conn = Connection(os.dup(mine.fileno()))
        try:
            if not conn.poll(START_TIMEOUT_S):
                raise GeneratorProcessError(f"generator {self.name!r} did not start in {START_TIMEOUT_S:.0f} s")
            try:
                kind, payload = conn.recv()
            except (EOFError, OSError):
                raise GeneratorProcessError(f"generator {self.name!r} exited while starting") from None
            if kind != "ready":
                raise GeneratorProcessError(payload)
        except BaseException:
            conn.close()
            _reap(proc)
            raise
        self._proc, self._conn, self._info = proc, conn, payload
        log.info("generator process started", extra={"generator": self.name, "pid": proc.pid})

    def close(self) -> None:
        """Stop the child, also while a batch is running in it (that batch then fails):
        the process is killed first, so a call blocked on it returns, then cleaned up."""
        self._closed = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        if self._conn is not None:
            self._conn.close()  # the child sees EOF and returns
            self._conn = None
        if self._proc is not None:
            _reap(self._proc, grace_s=10.0)
            self._proc = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    # -- the generator API ----------------------------------------------------------------
    def model_info(self) -> dict[str, str]:
        return dict(self._info)

    def generate(self, items: list[Item]) -> list[Output]:
        return self._call(items, None, False, None)

    def generate_encoded(self, items: list[Item], encodes: list[Encoding | None], busy: bool = False,
                         timeout_s: float | None = None) -> list[tuple[Output, bytes | None]]:
        """Generate, then encode in the child: (output, file bytes or None) per item.

        ``busy``: the engine has more work in hand (queued items, a batch being finished).
        With ``threads`` 0 the child then leaves one core to the engine process, which is
        feeding it (measured on 2 cores: +15% throughput at 32 clients); a lone request
        gets every core (measured: 5 ms lower latency). ``timeout_s``: a child that has not
        answered by then is killed (the batch fails; the next call starts a new child)."""
        return self._call(items, encodes, busy, timeout_s)

    def _call(self, items: list[Item], encodes: list[Encoding | None] | None, busy: bool,
              timeout_s: float | None) -> Any:
        with self._lock:
            if self._closed:
                raise GeneratorProcessError(f"generator {self.name!r} is stopped")
            if self._conn is None:
                self._restart()
            assert self._conn is not None and self._proc is not None
            try:
                self._conn.send((items, encodes, busy))
                if timeout_s is not None and not self._conn.poll(max(0.0, timeout_s)):
                    self._stop_now()
                    raise GeneratorDied(f"generator process for {self.name!r} did not answer "
                                        f"in {timeout_s:.0f} s and was stopped; the next batch starts a new one")
                kind, payload = self._conn.recv()
            except (EOFError, OSError):
                code = self._proc.poll()
                self._stop()
                raise GeneratorDied(f"generator process for {self.name!r} died (exit code {code}); "
                                    "the next batch starts a new one") from None
        if kind != "ok":
            raise GeneratorProcessError(payload)
        return payload

    def backoff_left(self) -> float:
        """Seconds before the next restart may happen (0: now)."""
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < self.RESTART_WINDOW_S]
        extra = len(self._restarts) - self.MAX_RESTARTS
        if extra < 0 or not self._restarts:
            return 0.0
        delay = min(self.BACKOFF_MAX_S, self.BACKOFF_S * 2 ** extra)
        return max(0.0, self._restarts[-1] + delay - now)

    def _restart(self) -> None:
        wait = self.backoff_left()
        if wait > 0:
            raise GeneratorUnavailable(f"generator {self.name!r} was restarted {len(self._restarts)} times in "
                                       f"{self.RESTART_WINDOW_S:.0f} s; not again for {wait:.0f} s", wait)
        log.warning("restarting generator process", extra={"generator": self.name})
        try:
            self._start()
        except GeneratorProcessError as e:  # nothing ran: the batch waits for the next try
            self._restarts.append(time.monotonic())
            raise GeneratorUnavailable(f"{e}; trying again", max(self.BACKOFF_S, self.backoff_left())) from None
        self._restarts.append(time.monotonic())  # the back-off counts from a child's start-up

    def _stop_now(self) -> None:
        if self._proc is not None:
            self._proc.kill()
        self._stop()


def _reap(proc: subprocess.Popen, grace_s: float = 0.0) -> None:
    """Wait for a child (killing it after ``grace_s``), so no zombie or orphan is left."""
    if grace_s:
        try:
            proc.wait(grace_s)
            return
        except subprocess.TimeoutExpired:
            pass
    proc.kill()
    proc.wait()


def isolate(inner: Generator, plugin: str, source: str, device: str, threads: int = 0) -> GeneratorProcess:
    """Start ``inner``'s child process and return its stand-in."""
    proxy = GeneratorProcess(inner, plugin, source, threads)
    proxy.load(device)
    return proxy


def can_isolate(source: str) -> bool:
    """Only plugins a child can import again by name (not in-process test plugins)."""
    return source == BUILTIN or source.startswith("entry_point:")


if __name__ == "__main__":  # the child: python -m engine.generator_process FD ARGS_JSON
    import signal

    # Ctrl-C reaches the whole process group; the engine decides when this child stops (it
    # closes the pipe, and the child returns), so a terminal interrupt must not kill it mid-batch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from aigc_common.logs import setup_logging

    setup_logging(os.environ.get("AIGC_LOG_FORMAT", "json"))  # the engine's structured lines
    _child(Connection(int(sys.argv[1])), **json.loads(sys.argv[2]))

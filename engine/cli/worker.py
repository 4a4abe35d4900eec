"""`aigc worker`: run generators for scaled-out API nodes (engine/scaleout/worker.py).

Reads the jobs of the generators it loads from Redis Streams, writes results to PostgreSQL,
and serves /healthz, /readyz and /metrics on --port (0: none)."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket

from aiohttp import web

from aigc_common.logs import setup_logging
from engine.cli import settings_or_exit

log = logging.getLogger("aigc.worker")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--queue", help="Redis URL (default AIGC_QUEUE_URL)")
    p.add_argument("--database", help="PostgreSQL URL (default AIGC_DATABASE_URL)")
    p.add_argument("--generators", help="comma-separated generator names to serve (default: all loaded)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default AIGC_DEVICE or auto)")
    p.add_argument("--name", help="consumer name in the group (default HOST-PID; unique per process)")
    p.add_argument("--port", type=int, default=8702, help="metrics and health port (default 8702; 0: none)")
    p.add_argument("--host", default="127.0.0.1", help="metrics bind address (default 127.0.0.1)")
    p.add_argument("--cpus", help="pin this worker to these cores, e.g. 0 or 0-3 (Linux)")


def _cpus(spec: str) -> set[int]:
    out: set[int] = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        if not lo.strip().isdigit() or (hi and not hi.strip().isdigit()):
            raise SystemExit(f"aigc worker: --cpus: expected cores like 0 or 0-3, got {spec!r}")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def run(args: argparse.Namespace) -> int:
    overrides = {k: v for k, v in (("queue_url", args.queue), ("database_url", args.database),
                                   ("device", args.device)) if v is not None}
    if args.cpus:
        cores = _cpus(args.cpus)
        os.sched_setaffinity(0, cores)  # inherited by generator processes
        overrides.setdefault("threads", len(cores))
    settings = settings_or_exit(**overrides)
    setup_logging(settings.log_format)
    if settings.queue_url is None:
        raise SystemExit("aigc worker: give --queue redis://HOST:6379/0 (or AIGC_QUEUE_URL)")
    wanted = [g.strip() for g in (args.generators or "").split(",") if g.strip()]
    name = args.name or f"{socket.gethostname()}-{os.getpid()}"
    return asyncio.run(_main(settings, wanted, name, args.host, args.port))


async def _main(settings, wanted: list[str], name: str, host: str, port: int) -> int:
    from engine.artifacts import ArtifactStore
    from engine.execution import Execution
    from engine.metrics import EngineMetrics
    from engine.policy import OutputChecks, available_image_checks
    from engine.prompt_gate import PromptGate
    from engine.registry import build_registry
    from engine.runtime import configure_threads, pick_device
    from engine.scaleout.journal import PgJournal
    from engine.scaleout.ledger import PgProvenanceLedger
    from engine.scaleout.node import connect
    from engine.scaleout.worker import Worker

    loop = asyncio.get_running_loop()
    device = pick_device(settings.device)
    configure_threads(settings.threads)
    registry = await loop.run_in_executor(None, lambda: build_registry(
        device, enabled=settings.plugins_enabled, disabled=settings.plugins_disabled,
        builtin=settings.builtin_plugins, processes=settings.generator_processes, threads=settings.threads))
    unknown = [g for g in wanted if g not in registry.generators]
    if unknown:
        registry.close()
        raise SystemExit(f"aigc worker: --generators: not loaded here: {', '.join(unknown)} "
                         f"(loaded: {', '.join(sorted(registry.generators)) or 'none'})")
    generators = {n: g for n, g in registry.generators.items() if not wanted or n in wanted}
    if not generators:
        registry.close()
        raise SystemExit("aigc worker: no generator loaded; nothing to serve")
    shared = await connect(settings, pool_size=4)
    gate = PromptGate(EngineMetrics())
    checks = OutputChecks([*available_image_checks(),
                           *(c for lp in registry.plugins.values() for c in lp.plugin.output_checks)])
    artifacts = ArtifactStore(settings.artifact_max_bytes, settings.artifact_ttl_s)
    ledger = PgProvenanceLedger(shared.pool, loop)
    journal = PgJournal(shared.pool, loop)
    signer = None
    if settings.c2pa_sign:  # workers finish outputs, so they sign them (the same keys: set AIGC_C2PA_CERT/KEY)
        from engine.provenance.credentials import Signer, load_keys

        signer = Signer(load_keys(settings.c2pa_cert, settings.c2pa_key, settings.data_dir))
    execution = Execution(settings, registry, artifacts, ledger, journal, gate, checks,  # type: ignore[arg-type]
                          signer)
    model_info = {n: {k: str(v) for k, v in g.model_info().items()} for n, g in generators.items()}
    worker = Worker(shared, execution, generators, journal, ledger, artifacts, name=name, model_info=model_info,
                    deadline_s=settings.job_deadline_s, claim_idle_ms=settings.claim_idle_ms)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stopping.set)
    runner = await _serve(worker, host, port) if port else None
    log.info("worker started", extra={"worker": name, "generators": sorted(generators), "device": device,
                                      "pid": os.getpid()})
    try:
        await worker.run()
    finally:
        if runner is not None:
            await runner.cleanup()
        await shared.close()
        await loop.run_in_executor(None, registry.close)
        gate.close()
    log.info("worker stopped", extra={"worker": name})
    return 0


async def _serve(worker, host: str, port: int) -> web.AppRunner:
    from prometheus_client import CONTENT_TYPE_LATEST

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "worker": worker.name})

    async def readyz(_: web.Request) -> web.Response:
        ok = worker.ready and worker.queue_up
        return web.json_response({"ready": ok, "worker": worker.name}, status=200 if ok else 503)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=worker.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner

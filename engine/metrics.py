"""Prometheus metrics of one engine (own registry, so several engines can share a process)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class EngineMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.queue_depth = Gauge("aigc_queue_depth", "Outputs waiting per generator",
                                 ["generator"], registry=r)
        self.batch_size = Histogram("aigc_batch_size", "Outputs per batch", ["generator"],
                                    buckets=BATCH_BUCKETS, registry=r)
        self.batch_seconds = Histogram("aigc_batch_seconds", "Time to run and encode one batch",
                                       ["generator"], buckets=LATENCY_BUCKETS, registry=r)
        self.job_seconds = Histogram("aigc_job_seconds", "Job latency by phase",
                                     ["generator", "phase"], buckets=LATENCY_BUCKETS, registry=r)
        self.jobs = Counter("aigc_jobs_total", "Jobs by outcome", ["generator", "outcome"],
                            registry=r)
        self.refused = Counter("aigc_jobs_refused_total", "Jobs refused before queueing",
                               ["reason"], registry=r)
        self.ready = Gauge("aigc_ready", "1 when models are loaded and warm", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)

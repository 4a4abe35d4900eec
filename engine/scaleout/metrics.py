"""Prometheus metrics of one worker and of the streams it reads (own registry)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from engine.metrics import BATCH_BUCKETS, LATENCY_BUCKETS


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.items = Counter("aigc_worker_items_total", "Stream entries handled, by outcome "
                             "(done, failed, skipped: finished or cancelled job, duplicate: recorded "
                             "by another worker already, requeued: left pending for a retry)",
                             ["generator", "outcome"], registry=r)
        self.batch_size = Histogram("aigc_worker_batch_size", "Outputs per batch", ["generator"],
                                    buckets=BATCH_BUCKETS, registry=r)
        self.batch_seconds = Histogram("aigc_worker_batch_seconds", "Forward pass, encoding and commit of "
                                       "one batch", ["generator"], buckets=LATENCY_BUCKETS, registry=r)
        self.claimed = Counter("aigc_worker_claimed_total", "Entries claimed from a worker idle past "
                               "the claim timeout (XAUTOCLAIM)", ["generator"], registry=r)
        self.redone = Counter("aigc_worker_redone_total", "Claimed entries run again here", ["generator"],
                              registry=r)
        self.stream_length = Gauge("aigc_stream_length", "Entries in the stream (waiting + being run)",
                                   ["generator"], registry=r)
        self.stream_pending = Gauge("aigc_stream_pending", "Entries delivered to a worker, not yet "
                                    "acknowledged", ["generator"], registry=r)
        self.stream_lag = Gauge("aigc_stream_lag", "Entries not yet delivered to any worker",
                                ["generator"], registry=r)
        self.stream_consumers = Gauge("aigc_stream_consumers", "Consumers known to the group",
                                      ["generator"], registry=r)
        self.redis_up = Gauge("aigc_worker_queue_up", "1 while Redis answers", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)

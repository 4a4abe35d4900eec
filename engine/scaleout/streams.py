"""Redis names and the few operations API nodes and workers share.

One stream per generator (``PREFIX:gen:NAME``), one entry per output {job, i}; one consumer
group (``workers``) per stream. A worker deletes an entry once it is acknowledged, so a
stream's length is its backlog (waiting + being run): what admission bounds. Results and
status changes go out on one pub/sub channel (``PREFIX:events``); pub/sub can drop a message
(a node reconnecting), so API nodes also re-read their unfinished jobs from PostgreSQL.

``PREFIX:epoch`` says the Redis data is the one the nodes know: Redis restarted without
persistence loses the streams, and the first API node to find the epoch gone queues every
unfinished job of the journal again (finishing is idempotent, so a duplicate costs only time).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from engine.journal import JournalEntry

GROUP = "workers"

# Atomic admission: all of a job's outputs, or none when the stream would exceed its bound.
# KEYS[1] stream; ARGV: max length, job id, the job (``job_payload``), then the output indices.
# Returns {new length, entry id, ...}, or {-1 - length} when full (nothing added).
ADMIT_LUA = """
local len = redis.call('XLEN', KEYS[1])
local n = #ARGV - 3
if len + n > tonumber(ARGV[1]) then return {-1 - len} end
local out = {len + n}
for i = 4, #ARGV do out[#out + 1] = redis.call('XADD', KEYS[1], '*', 'job', ARGV[2], 'i', ARGV[i], 'e', ARGV[3]) end
return out
"""
# An entry carries its job (``e``) so that a worker can start on it without asking PostgreSQL;
# one older than this (it waited: its job may have been cancelled or failed meanwhile) or one
# claimed from another worker is looked up in the journal first, as is one without ``e``
# (queued again from the journal after Redis restarted empty).
FRESH_ENTRY_MS = 1000
_PAYLOAD_FIELDS = ("request", "command", "options", "seed", "count", "action", "source", "action_options",
                   "visible_mark", "created", "model")


def job_payload(e: JournalEntry) -> str:
    """What a worker needs of a newly accepted job to run it (the journal row's own values)."""
    return json.dumps({k: getattr(e, k) for k in _PAYLOAD_FIELDS}, separators=(",", ":"))


def entry_from_payload(job_id: str, raw: bytes | None) -> JournalEntry | None:
    """The journal entry of a job as it was accepted (status queued, nothing recorded); None
    when ``raw`` is missing or malformed (then the worker reads the journal)."""
    if not raw:
        return None
    try:
        d = json.loads(raw)
        return JournalEntry(id=job_id, idempotency_key=None, status="queued",
                            source=tuple(d["source"]) if d["source"] else None,
                            **{k: d[k] for k in _PAYLOAD_FIELDS if k != "source"})
    except (ValueError, KeyError, TypeError):
        return None


def entry_age_ms(entry_id: bytes | str, now_ms: float) -> float:
    """How long ago Redis added an entry (its id is ``<ms>-<seq>`` of Redis's clock)."""
    try:
        return now_ms - int((entry_id.decode() if isinstance(entry_id, bytes) else entry_id).split("-", 1)[0])
    except ValueError:
        return float("inf")


@dataclass(frozen=True)
class Keys:
    prefix: str

    def stream(self, generator: str) -> str:
        return f"{self.prefix}:gen:{generator}"

    @property
    def events(self) -> str:
        return f"{self.prefix}:events"

    @property
    def epoch(self) -> str:
        return f"{self.prefix}:epoch"

    @property
    def item_seconds(self) -> str:
        """Hash generator -> seconds per output, smoothed, written by workers (for Retry-After)."""
        return f"{self.prefix}:item_seconds"


async def ensure_group(redis: Redis, stream: str) -> None:
    """The workers' group on ``stream`` (created with the stream; from its first entry)."""
    try:
        await redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise


def output_event(job: str, index: int, artifact: dict[str, Any]) -> str:
    return json.dumps({"job": job, "kind": "output", "index": index, "artifact": artifact})


def status_event(job: str, status: str) -> str:
    return json.dumps({"job": job, "kind": "status", "status": status})

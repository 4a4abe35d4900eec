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

GROUP = "workers"

# Atomic admission: all of a job's outputs, or none when the stream would exceed its bound.
# KEYS[1] stream; ARGV: max length, job id, then the output indices. Returns the new length,
# or -1 - length when full.
ADMIT_LUA = """
local len = redis.call('XLEN', KEYS[1])
local n = #ARGV - 2
if len + n > tonumber(ARGV[1]) then return -1 - len end
for i = 3, #ARGV do redis.call('XADD', KEYS[1], '*', 'job', ARGV[2], 'i', ARGV[i]) end
return len + n
"""


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

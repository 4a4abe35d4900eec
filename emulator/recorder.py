"""A log of every REST call and gateway event, for tests to assert on what the bot sent."""

from __future__ import annotations

import re
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class RestCall:
    seq: int
    time: float  # emulator clock, epoch seconds
    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    json: Any  # JSON body, or payload_json of a multipart body
    files: list[dict[str, Any]] = field(default_factory=list)  # {field, filename, size, content_type}
    status: int = 0
    response: Any = None
    kind: str = "rest"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GatewayEvent:
    seq: int
    time: float
    direction: str  # "send" (emulator → bot) or "recv" (bot → emulator)
    session_id: str | None
    shard: list[int] | None
    op: int
    t: str | None
    s: int | None
    d: Any
    kind: str = "gateway"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Recorder:
    def __init__(self, max_records: int = 100_000) -> None:
        self.entries: deque[RestCall | GatewayEvent] = deque(maxlen=max_records)
        self._seq = 0

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def rest(self, **kw: Any) -> RestCall:
        call = RestCall(seq=self._next(), **kw)
        self.entries.append(call)
        return call

    def gateway(self, **kw: Any) -> GatewayEvent:
        ev = GatewayEvent(seq=self._next(), **kw)
        self.entries.append(ev)
        return ev

    def calls(self, method: str | None = None, path: str | None = None, *, status: int | None = None) -> list[RestCall]:
        """REST calls, filtered by method and a regex that must match the whole path."""
        pattern = re.compile(path) if path else None
        return [
            c for c in self.entries
            if isinstance(c, RestCall)
            and (method is None or c.method == method.upper())
            and (pattern is None or pattern.fullmatch(c.path))
            and (status is None or c.status == status)
        ]

    def events(self, t: str | None = None, *, direction: str | None = None, op: int | None = None) -> list[GatewayEvent]:
        return [
            e for e in self.entries
            if isinstance(e, GatewayEvent)
            and (t is None or e.t == t)
            and (direction is None or e.direction == direction)
            and (op is None or e.op == op)
        ]

    def since(self, seq: int) -> list[RestCall | GatewayEvent]:
        return [e for e in self.entries if e.seq > seq]

    def clear(self) -> None:
        self.entries.clear()

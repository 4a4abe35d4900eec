"""Discord snowflakes: ms since the Discord epoch << 22 | worker | increment."""

from __future__ import annotations

import datetime as _dt
import itertools

from .clock import Clock

DISCORD_EPOCH_MS = 1420070400000


class SnowflakeFactory:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._counter = itertools.count()
        self._last = 0

    def next(self) -> int:
        ms = int(self._clock.time() * 1000) - DISCORD_EPOCH_MS
        value = (ms << 22) | (1 << 17) | (next(self._counter) & 0xFFF)
        # Strictly increasing even when many ids share a millisecond.
        if value <= self._last:
            value = self._last + 1
        self._last = value
        return value


def shard_for(guild_id: int, shard_count: int) -> int:
    return (guild_id >> 22) % shard_count


def iso_timestamp(epoch_s: float) -> str:
    return _dt.datetime.fromtimestamp(epoch_s, _dt.UTC).isoformat()

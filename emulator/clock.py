"""Injectable clock: real time plus an offset tests can fast-forward.

Deadlines (3 s ack, 15 min token, daily command creates) read this clock, so a test
can jump 16 minutes ahead without sleeping.
"""

from __future__ import annotations

import time


class Clock:
    def __init__(self) -> None:
        self._offset = 0.0

    def time(self) -> float:
        """Epoch seconds (used for snowflakes and timestamps)."""
        return time.time() + self._offset

    def monotonic(self) -> float:
        """Monotonic seconds (used for deadlines)."""
        return time.monotonic() + self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._offset += seconds

    @property
    def offset(self) -> float:
        return self._offset

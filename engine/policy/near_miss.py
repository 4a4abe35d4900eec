"""Counting repeated refusals per user and escalating: temporary block, notify moderators."""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

__all__ = ["Escalation", "NearMissTracker"]


@dataclass(frozen=True)
class Escalation:
    """What to do after a refusal. ``blocked_until`` is a UNIX time (None: not blocked);
    ``notify_moderators`` is true once per escalation, not for every refusal after it."""

    user: str
    refusals_in_window: int
    blocked_until: float | None = None
    notify_moderators: bool = False
    level: int = 0  # how many times this user has been escalated (block length doubles)


class NearMissTracker:
    """Sliding-window refusal counter, keyed by a user identity such as ``discord:1234``.

    ``threshold`` refusals within ``window_s`` seconds block the user for ``block_s`` seconds
    (doubling with each further escalation, up to ``max_block_s``) and ask for moderators to
    be told. In memory, thread-safe; the bot persists blocks it acts on.
    """

    def __init__(self, *, threshold: int = 3, window_s: float = 600.0, block_s: float = 900.0,
                 max_block_s: float = 86_400.0, clock: Callable[[], float] = time.time) -> None:
        if threshold < 1:
            raise ValueError(f"threshold must be at least 1, got {threshold}")
        if window_s <= 0 or block_s <= 0 or max_block_s < block_s:
            raise ValueError("window_s and block_s must be positive and max_block_s >= block_s")
        self.threshold, self.window_s = threshold, window_s
        self.block_s, self.max_block_s = block_s, max_block_s
        self._clock = clock
        self._refusals: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}
        self._level: dict[str, int] = {}
        self._lock = threading.Lock()

    def blocked_until(self, user: str, now: float | None = None) -> float | None:
        """The end of the user's current block, or None when the user may submit."""
        now = self._clock() if now is None else now
        with self._lock:
            until = self._blocked_until.get(user)
            return until if until is not None and until > now else None

    def record_refusal(self, user: str, now: float | None = None) -> Escalation:
        now = self._clock() if now is None else now
        with self._lock:
            window = self._refusals.setdefault(user, deque())
            window.append(now)
            while window and window[0] <= now - self.window_s:
                window.popleft()
            count = len(window)
            until = self._blocked_until.get(user)
            if until is not None and until > now:
                return Escalation(user, count, until, False, self._level.get(user, 0))
            if count < self.threshold:
                return Escalation(user, count, None, False, self._level.get(user, 0))
            level = self._level.get(user, 0) + 1
            self._level[user] = level
            until = now + min(self.block_s * 2 ** (level - 1), self.max_block_s)
            self._blocked_until[user] = until
            window.clear()  # the block answers these refusals; count afresh after it
            return Escalation(user, count, until, True, level)

    def forget(self, user: str) -> None:
        """Drop everything about a user (privacy erasure or a moderator's pardon)."""
        with self._lock:
            for table in (self._refusals, self._blocked_until, self._level):
                table.pop(user, None)

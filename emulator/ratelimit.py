"""Optional rate limiting: X-RateLimit-* headers on every response and 429s when a bucket
is exhausted, plus forced 429s a test can arm. Every 429 carries a ``Via`` header
(discord.py treats a 429 without one as a Cloudflare ban) and a JSON body
{message, retry_after, global}.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any

from .clock import Clock
from .config import RateLimitConfig
from .errors import ApiError


@dataclass
class ForcedLimit:
    remaining: int
    retry_after: float
    is_global: bool
    path: re.Pattern[str] | None
    method: str | None


@dataclass
class _Bucket:
    start: float
    used: int


class RateLimiter:
    def __init__(self, clock: Clock, config: RateLimitConfig | None) -> None:
        self.clock = clock
        self.config = config
        self.forced: list[ForcedLimit] = []
        self.buckets: dict[str, _Bucket] = {}
        self.count_429 = 0

    def force(self, count: int = 1, *, retry_after: float = 0.1, is_global: bool = False,
              path: str | None = None, method: str | None = None) -> None:
        """The next ``count`` matching REST calls answer 429 (path: a regex on the API path)."""
        self.forced.append(ForcedLimit(count, retry_after, is_global, re.compile(path) if path else None,
                                       method.upper() if method else None))

    def reset(self) -> None:
        self.forced.clear()
        self.buckets.clear()
        self.count_429 = 0

    def check(self, method: str, route: str, major: str, path: str, *, exempt: bool) -> dict[str, str]:
        """Headers for this call, or an ApiError(429) if it is limited."""
        for forced in self.forced:
            if forced.remaining > 0 and (forced.path is None or forced.path.fullmatch(path)) and (
                    forced.method is None or forced.method == method):
                forced.remaining -= 1
                self.forced = [f for f in self.forced if f.remaining > 0]
                raise self._limited(forced.retry_after, forced.is_global, route, major)
        if self.config is None or exempt:
            return {}
        key = f"{method} {route}:{major}"
        now = self.clock.monotonic()
        bucket = self.buckets.get(key)
        if bucket is None or now - bucket.start >= self.config.window_s:
            bucket = self.buckets[key] = _Bucket(start=now, used=0)
        reset_after = max(0.0, bucket.start + self.config.window_s - now)
        if bucket.used >= self.config.limit:
            raise self._limited(reset_after, False, route, major)
        bucket.used += 1
        return self._headers(self.config.limit, self.config.limit - bucket.used, reset_after, route)

    def _headers(self, limit: int, remaining: int, reset_after: float, route: str) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{self.clock.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": hashlib.sha1(route.encode()).hexdigest()[:16],
        }

    def _limited(self, retry_after: float, is_global: bool, route: str, major: str) -> ApiError:
        self.count_429 += 1
        headers = {"Via": "1.1 google", "Retry-After": str(max(1, math.ceil(retry_after)))}
        if is_global:
            headers["X-RateLimit-Global"] = "true"
            headers["X-RateLimit-Scope"] = "global"
        else:
            limit = self.config.limit if self.config else 1
            headers.update(self._headers(limit, 0, retry_after, route))
            headers["X-RateLimit-Scope"] = "user"
        extra: dict[str, Any] = {"retry_after": round(retry_after, 3), "global": is_global}
        return ApiError(429, 0, "You are being rate limited.", headers=headers, extra=extra)

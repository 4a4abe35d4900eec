"""The content policy as the engine applies it: every text before any compute, refusals that
name the rule (never the term), repeated refusals that block a requester for a while.

Compiling and matching big guild rule sets happens on the gate's own threads, never on the
event loop; small or already compiled sets and short texts are checked inline.
"""
from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from engine.errors import EngineError
from engine.metrics import EngineMetrics
from engine.policy import NearMissTracker, Policy, RuleError
from engine.protocol import JobRequest

log = logging.getLogger("aigc.engine")


class PromptGate:
    def __init__(self, metrics: EngineMetrics) -> None:
        self.policy = Policy()  # global rules compiled once, at start-up
        self.near_misses = NearMissTracker()
        self.metrics = metrics
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="aigc-policy")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def moderate(self, text: str, rules: Any = None, automod: Any = None):
        """The policy's verdict on a text (POST /v1/moderate)."""
        return await self._call(self.policy.is_quick(text, rules, automod), self.moderate_now, text, rules, automod)

    def moderate_now(self, text: str, rules: Any = None, automod: Any = None):
        """The verdict on the calling thread (worker threads: the output checks)."""
        try:
            return self.policy.check(text, rules, automod)
        except RuleError as e:
            raise EngineError(422, "invalid_rules", str(e), "rules") from None

    def first_refusal(self, texts: dict[str, str], rules: Any = None,
                      automod: Any = None) -> tuple[str, Any] | None:
        """(field, verdict) of the first text the policy refuses, or None."""
        for field_name, text in texts.items():
            verdict = self.moderate_now(text, rules, automod)
            if not verdict.allowed:
                return field_name, verdict
        return None

    async def _call(self, quick: bool, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` here when ``quick``, else on the gate's pool (the loop stays free)."""
        if quick:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def check(self, texts: dict[str, str], req: JobRequest) -> None:
        """Check every text input of a request; raise EngineError on a refusal or a block."""
        key = req.requester.key
        until = self.near_misses.blocked_until(key)
        if until is not None:
            retry = max(1, int(until - time.time()))
            raise EngineError(403, "requester_blocked", "too many refused prompts; try again later",
                              headers={"Retry-After": str(retry)})
        rules, automod = (req.policy.rules, req.policy.automod) if req.policy else (None, None)
        longest = max(texts.values(), key=len, default="")
        try:
            refused = await self._call(self.policy.is_quick(longest, rules, automod),
                                       self.first_refusal, texts, rules, automod)
        except EngineError as e:
            e.field = "policy.rules"
            raise
        if refused is None:
            return
        field_name, verdict = refused
        self.metrics.refused.labels("prompt_refused").inc()
        escalation = (self.near_misses.record_refusal(key) if req.requester.escalation == "engine"
                      else None)  # "front": the front counts refusals and blocks
        blocked = escalation is not None and escalation.blocked_until is not None
        log.info("prompt refused", extra={"rule": verdict.rule, "category": verdict.category,
                                          "requester": key, "blocked": blocked})
        headers, extra = {}, {}
        if escalation is not None and escalation.notify_moderators and escalation.blocked_until is not None:
            # This refusal blocked the requester: say so, so that a front tells moderators.
            headers["Retry-After"] = str(max(1, int(escalation.blocked_until - time.time())))
            extra["escalation"] = "blocked"
        raise EngineError(422, "prompt_refused", f"refused by content rule {verdict.rule} ({verdict.category})",
                          field_name, headers, rule=verdict.rule, category=verdict.category, extra=extra)

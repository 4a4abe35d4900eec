"""Prometheus metrics of one bot (its own registry, so several bots can share a process)."""
from __future__ import annotations

import math
from typing import Any, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from bot import engine_client as ec
from bot.results import Refused


class BotMetrics:
    def __init__(self, latency: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.gateway_latency = Gauge("aigc_bot_gateway_latency_seconds",
                                     "Discord gateway heartbeat latency (NaN while not connected)", registry=r)
        self.gateway_latency.set_function(lambda: _finite(latency()))
        self.interactions = Counter("aigc_bot_interactions_total", "Interactions by command and outcome",
                                    ["command", "outcome"], registry=r)
        self.engine_errors = Counter("aigc_bot_engine_errors_total", "Engine-client errors by kind",
                                     ["kind"], registry=r)

    def interaction(self, command: str, outcome: str) -> None:
        self.interactions.labels(command[:100], outcome).inc()

    def engine_error(self, error: ec.EngineClientError) -> None:
        self.engine_errors.labels(type(error).__name__).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def outcome_of(error: BaseException | None) -> str:
    """ok | refused (gate, prompt policy, engine block) | engine_error | error."""
    if error is None:
        return "ok"
    if isinstance(error, (Refused, ec.PromptRefused, ec.RequesterBlocked, ec.InvalidOption)):
        return "refused"
    if isinstance(error, ec.EngineClientError):
        return "engine_error"
    return "error"


def _finite(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan

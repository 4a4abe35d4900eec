"""Checks on what a generator produced, run after compute and before anything is published.

Plugins (or the engine) register :class:`OutputCheck` objects per modality. Text outputs go
through the same rules as prompts (:class:`TextRulesCheck`). One image check is provided,
:class:`NudeNetImageCheck`, backed by the optional ``nudenet`` package, which carries its own
ONNX model (320n, 12 MB) and needs ``onnxruntime`` and ``opencv-python-headless`` (together
about 160 MB installed). It is not a hard dependency: ``available_image_checks()`` returns it
only where ``nudenet`` imports.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol, runtime_checkable

from engine.policy.checker import Policy, default_policy

__all__ = ["OutputVerdict", "OutputCheck", "OutputChecks", "TextRulesCheck", "NudeNetImageCheck",
           "available_image_checks", "NUDENET_EXPOSED_LABELS"]


@dataclass(frozen=True)
class OutputVerdict:
    allowed: bool
    check: str  # the check's name, e.g. "nudenet"
    category: str | None = None
    rule: str | None = None
    score: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class OutputCheck(Protocol):
    """``name`` identifies the check in verdicts; ``modalities`` are the modality names
    ("image", "animation", "text", ...) it applies to; ``check`` gets the generator's output
    data (a PIL image, a list of frames, a str...) and must not raise for ordinary content."""

    name: str
    modalities: frozenset[str]

    def check(self, data: Any) -> OutputVerdict: ...


class OutputChecks:
    """The registry the engine runs after generation; the first refusal wins."""

    def __init__(self, checks: Iterable[OutputCheck] = ()) -> None:
        self._checks: list[OutputCheck] = []
        self._lock = threading.Lock()
        for c in checks:
            self.register(c)

    def register(self, check: OutputCheck) -> None:
        if not isinstance(check, OutputCheck) or not check.name or not check.modalities:
            raise TypeError(f"{check!r} is not an OutputCheck (needs name, modalities and check())")
        with self._lock:
            self._checks.append(check)

    def for_modality(self, modality: str) -> list[OutputCheck]:
        with self._lock:
            return [c for c in self._checks if modality in c.modalities]

    def run(self, modality: str, data: Any) -> OutputVerdict:
        for c in self.for_modality(modality):
            verdict = c.check(data)
            if not verdict.allowed:
                return verdict
        return OutputVerdict(allowed=True, check="all")


class TextRulesCheck:
    """Text outputs go through the same rules as prompts (global plus the guild's)."""

    name = "text-rules"
    modalities = frozenset({"text"})

    def __init__(self, policy: Policy | None = None, guild_rules: Any = None) -> None:
        self.policy = policy or default_policy()
        self.guild_rules = guild_rules

    def check(self, data: Any) -> OutputVerdict:
        verdict = self.policy.check(str(data), self.guild_rules)
        return OutputVerdict(allowed=verdict.allowed, check=self.name, category=verdict.category,
                             rule=verdict.rule)


# NudeNet 3.x detector classes that mean explicit nudity (its other classes are covered
# body parts and faces, which are fine).
NUDENET_EXPOSED_LABELS = frozenset({
    "FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "FEMALE_BREAST_EXPOSED",
    "BUTTOCKS_EXPOSED", "ANUS_EXPOSED",
})

Detector = Callable[[Any], list[dict[str, Any]]]


class NudeNetImageCheck:
    """Refuses images where NudeNet finds exposed nudity with score ≥ ``threshold``.

    ``detector`` defaults to ``nudenet.NudeDetector().detect`` (imported on first use); tests
    and other back ends pass any callable taking a BGR uint8 array and returning NudeNet's
    detections ``[{"class": str, "score": float, "box": [x, y, w, h]}, ...]``.
    """

    name = "nudenet"
    modalities = frozenset({"image", "animation"})

    def __init__(self, threshold: float = 0.5, detector: Detector | None = None,
                 labels: frozenset[str] = NUDENET_EXPOSED_LABELS) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.threshold, self.labels = threshold, labels
        self._detector = detector
        self._lock = threading.Lock()  # onnxruntime sessions are thread-safe; loading is not

    def _detect(self) -> Detector:
        with self._lock:
            if self._detector is None:
                from nudenet import NudeDetector  # optional dependency

                self._detector = NudeDetector().detect
            return self._detector

    def check(self, data: Any) -> OutputVerdict:
        import numpy as np

        frames = data if isinstance(data, (list, tuple)) else [data]
        worst: dict[str, Any] | None = None
        for frame in frames:
            rgb = np.asarray(frame.convert("RGB") if hasattr(frame, "convert") else frame)
            bgr = np.ascontiguousarray(rgb[..., ::-1])
            for det in self._detect()(bgr):
                if det.get("class") in self.labels and float(det.get("score", 0)) >= self.threshold:
                    if worst is None or det["score"] > worst["score"]:
                        worst = det
        if worst is None:
            return OutputVerdict(allowed=True, check=self.name)
        return OutputVerdict(allowed=False, check=self.name, category="sexual",
                             rule=f"{self.name}.{worst['class'].lower()}", score=float(worst["score"]),
                             details={"box": list(worst.get("box", []))})


def available_image_checks() -> list[OutputCheck]:
    """Image checks whose packages are installed here (NudeNet when ``nudenet`` imports)."""
    try:
        import nudenet  # noqa: F401
    except ImportError:
        return []
    return [NudeNetImageCheck()]

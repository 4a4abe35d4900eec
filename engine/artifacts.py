"""Artifacts: the built-in modalities' encoders and a bounded, expiring in-memory store."""
from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from engine import labels
from engine.sdk import EncodeContext, Modality, Output, Presentation


def _encode_image(output: Output, ctx: EncodeContext) -> bytes:
    # encode_png takes a PIL image or a uint8 HxW[xC] array and says which rule a bad one breaks.
    return labels.encode_png(output.data, ctx.meta, visible_mark=ctx.visible_mark,
                             compress_level=ctx.compress_level)


def _encode_text(output: Output, ctx: EncodeContext) -> bytes:
    text = output.text if output.text is not None else str(output.data)
    label = getattr(labels, "label_text", None)
    return (label(text) if label else f"{text}\n\n[AI-generated]").encode("utf-8")


BUILTIN_MODALITIES: list[Modality] = [
    Modality("image", "image/png", "png", Presentation.image, _encode_image,
             "A still image, shown inline."),
    Modality("text", "text/plain; charset=utf-8", "txt", Presentation.inline_text, _encode_text,
             "Text, shown inline with an AI-generated label."),
]


@dataclass
class StoredArtifact:
    id: str
    data: bytes
    mime: str
    filename: str
    sha256: str
    created: float = field(default_factory=time.monotonic)


class ArtifactStore:
    """Keeps encoded artifacts for ``ttl_s`` seconds and at most ``max_bytes`` in total;
    the oldest go first. Thread-safe: workers put, HTTP handlers get."""

    def __init__(self, max_bytes: int, ttl_s: float):
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self._items: OrderedDict[str, StoredArtifact] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, artifact_id: str, data: bytes, mime: str, filename: str) -> StoredArtifact:
        art = StoredArtifact(artifact_id, data, mime, filename, hashlib.sha256(data).hexdigest())
        with self._lock:
            old = self._items.pop(artifact_id, None)
            if old:
                self._bytes -= len(old.data)
            self._items[artifact_id] = art
            self._bytes += len(data)
            self._evict_locked()
        return art

    def get(self, artifact_id: str) -> StoredArtifact | None:
        with self._lock:
            self._evict_locked()
            return self._items.get(artifact_id)

    def discard(self, artifact_id: str) -> None:
        with self._lock:
            art = self._items.pop(artifact_id, None)
            if art:
                self._bytes -= len(art.data)

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def _evict_locked(self) -> None:
        cutoff = time.monotonic() - self.ttl_s
        while self._items:
            first = next(iter(self._items.values()))
            if self._bytes <= self.max_bytes and first.created >= cutoff:
                break
            self._items.popitem(last=False)
            self._bytes -= len(first.data)

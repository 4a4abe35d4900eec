"""The on-disk audio data set both builders write and the trainer and the evaluation read.

A folder with ``audio.npy`` (int16, N x 16384, 16 kHz), ``labels.npy`` (int16, N), the held-out
split ``test_audio.npy`` / ``test_labels.npy``, and ``dataset.json`` (kind, classes, rate,
counts, seed). Arrays load with ``allow_pickle=False``; a file that is not what the manifest
says is refused with a message naming it and the rule.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plugins.sfx.synth import RATE, SAMPLES


@dataclass(frozen=True)
class AudioSet:
    kind: str
    classes: tuple[str, ...]
    audio: np.ndarray  # int16 (N, SAMPLES)
    labels: np.ndarray  # int64 (N,)

    def floats(self, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        return self.audio[idx].astype(np.float32) / 32767.0


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, -1, 1) * 32767).astype(np.int16)


def write(folder: Path, kind: str, classes: list[str], audio: np.ndarray, labels: np.ndarray,
          test_audio: np.ndarray, test_labels: np.ndarray, seed: int, extra: dict | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "audio.npy", audio)
    np.save(folder / "labels.npy", labels.astype(np.int16))
    np.save(folder / "test_audio.npy", test_audio)
    np.save(folder / "test_labels.npy", test_labels.astype(np.int16))
    manifest = {"kind": kind, "classes": classes, "rate": RATE, "samples": SAMPLES, "seed": seed,
                "train": int(len(labels)), "test": int(len(test_labels)), **(extra or {})}
    (folder / "dataset.json").write_text(json.dumps(manifest, indent=1))


def load(folder: str | Path, split: str = "train") -> AudioSet:
    """The ``train`` or ``test`` split of a data set folder (mmap'd: nothing is read twice)."""
    folder = Path(folder)
    manifest_path = folder / "dataset.json"
    if not manifest_path.is_file():
        raise ValueError(f"data: {folder} has no dataset.json (build it with `aigc data sfx|digits DIR`)")
    manifest = json.loads(manifest_path.read_text())
    prefix = "" if split == "train" else "test_"
    audio = np.load(folder / f"{prefix}audio.npy", mmap_mode="r", allow_pickle=False)
    labels = np.load(folder / f"{prefix}labels.npy", allow_pickle=False).astype(np.int64)
    classes = tuple(manifest["classes"])
    if audio.dtype != np.int16 or audio.ndim != 2 or audio.shape[1] != SAMPLES:
        raise ValueError(f"data: {prefix}audio.npy must be int16 (N, {SAMPLES}) (got {audio.dtype} {audio.shape})")
    if len(labels) != len(audio) or (len(labels) and (labels.min() < 0 or labels.max() >= len(classes))):
        raise ValueError(f"data: {prefix}labels.npy must hold one class index < {len(classes)} per clip")
    return AudioSet(kind=str(manifest["kind"]), classes=classes, audio=audio, labels=labels)


# a class of a joined set is named by its set's prefix and its own name: "coin", "digit-seven"
CLASS_PREFIX = {"sfx": "", "digits": "digit-"}


def class_name(kind: str, name: str) -> str:
    """The name the joined generator gives class ``name`` of a ``kind`` set ("seven" -> "digit-seven")."""
    return CLASS_PREFIX.get(kind, f"{kind}-") + name


def join(sets: "list[AudioSet]") -> AudioSet:
    """Several sets as one (clips concatenated, class indices shifted, class names prefixed by their
    set: CLASS_PREFIX); one set comes back as it is."""
    if len(sets) == 1:
        return sets[0]
    kinds = [s.kind for s in sets]
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"data: each --data must be a different set (got {kinds})")
    classes: list[str] = []
    labels = []
    for s in sets:
        labels.append(np.asarray(s.labels, dtype=np.int64) + len(classes))
        classes += [class_name(s.kind, c) for c in s.classes]
    audio = np.concatenate([np.asarray(s.audio) for s in sets])
    return AudioSet(kind="+".join(kinds), classes=tuple(classes), audio=audio, labels=np.concatenate(labels))

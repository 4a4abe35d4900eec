"""Where models run: device choice, torch threads, weights loading (safetensors only)."""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

log = logging.getLogger("aigc.engine.runtime")
_threads_set = False


def pick_device(setting: str = "auto") -> str:
    """`auto` picks CUDA when available; an explicit CUDA request without CUDA is an error."""
    import torch

    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"AIGC_DEVICE={setting} but CUDA is not available")
    return setting


def configure_threads(threads: int = 0) -> int:
    """Set torch's thread pools once per process: the engine's worker threads share them, so
    they must not change under a running batch. (A generator process, whose one thread runs
    batches one at a time, resizes its intra-op pool between batches.)"""
    global _threads_set
    import torch

    if not _threads_set:
        n = threads or os.cpu_count() or 1
        torch.set_num_threads(n)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already set by someone else in this process
            pass
        _threads_set = True
    return torch.get_num_threads()


def load_weights(path: str | Path, device: str = "cpu") -> dict:
    """Load tensors from a .safetensors file. Pickle-based formats are refused: they run code."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"{path.name}: weights must be a .safetensors file (pickle formats are refused)")
    from safetensors.torch import load_file

    return load_file(str(path), device=device)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

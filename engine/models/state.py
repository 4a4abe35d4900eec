"""Tensor files: ``<stem>.safetensors`` (tensors) + ``<stem>.json`` (config), the low level
under every model family (and the MiniLM prompt encoder). No pickle anywhere: safetensors
cannot run code on load, unlike torch.save/torch.load. Imports no model family, so any
family may use it; building a module from a config lives in ``engine.models.weights``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn


def save_model(module: nn.Module, config: dict[str, Any], stem: str | Path,
               dtype: torch.dtype | None = None) -> Path:
    """Write ``stem.safetensors`` and ``stem.json``; ``dtype`` (e.g. fp16) shrinks float tensors."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for k, v in module.state_dict().items():
        v = v.detach().cpu()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        tensors[k] = v.contiguous()
    path = stem.with_suffix(".safetensors")
    save_file(tensors, str(path))
    path.chmod(0o644)  # safetensors writes 0600; weights are meant to be shipped and read
    stem.with_suffix(".json").write_text(json.dumps(config, indent=1, sort_keys=True))
    return path


def load_state(path: str | Path, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file, floats as float32 (fp16 files are for storage only)."""
    state = load_file(str(path), device=device)
    return {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}

"""Model files: ``<stem>.safetensors`` (tensors) + ``<stem>.json`` (config). No pickle anywhere:
safetensors cannot run code on load, unlike torch.save/torch.load."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from engine.models.gan import Discriminator, GanConfig, Generator
from engine.models.vae import VAE, VaeConfig


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


def build(config: dict[str, Any], part: str = "generator") -> nn.Module:
    """The module a config describes: a GAN ``generator``/``discriminator`` or a ``vae``.
    A config's own ``part`` wins: a critic file says ``"part": "critic"`` (a discriminator)."""
    if config.get("kind") == "vae":
        return VAE(VaeConfig.from_dict(config))
    cfg = GanConfig.from_dict(config)
    part = config.get("part", part)
    return Discriminator(cfg) if part in ("discriminator", "critic") else Generator(cfg)


def load_model(stem: str | Path, device: str = "cpu", part: str = "generator") -> tuple[nn.Module, dict[str, Any]]:
    """Build the module from ``stem.json``, load ``stem.safetensors`` strictly, set eval()."""
    stem = Path(stem)
    config = json.loads(stem.with_suffix(".json").read_text())
    module = build(config, part)
    module.load_state_dict(load_state(stem.with_suffix(".safetensors"), device))
    return module.to(device).eval(), config

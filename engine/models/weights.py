"""Models from their files: the module a config describes (GAN generator/discriminator or
VAE), loaded from ``<stem>.json`` + ``<stem>.safetensors``. The file format itself (saving,
reading tensors) is ``engine.models.state``, which imports no family, so the families and
the prompt encoders can read tensors without an import circle through this module."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from engine.models.gan import Discriminator, GanConfig, Generator
from engine.models.state import load_state
from engine.models.vae import VAE, VaeConfig


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

"""Export a run's servable model (the GAN's EMA generator, or the VAE) as fp16 safetensors."""
from __future__ import annotations

from pathlib import Path

import torch

from engine.models.weights import load_model, save_model


def export_run(run_dir: str | Path, dest_stem: str | Path) -> Path:
    module, config = load_model(Path(run_dir) / "generator")
    path = save_model(module, config, dest_stem, dtype=torch.float16)
    path.chmod(0o644)
    return path

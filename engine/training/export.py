"""Export a run's servable model (the GAN's EMA generator, or the VAE) as fp16 safetensors."""
from __future__ import annotations

from pathlib import Path

import torch

from engine.models.state import save_model
from engine.models.weights import load_model


def export_run(run_dir: str | Path, dest_stem: str | Path, ema_steps: float | None = None,
               at: int | None = None) -> Path:
    """The run's own EMA generator (or VAE); with ``ema_steps``, a post-hoc EMA of the run's
    generator snapshots ending at snapshot ``at`` (see posthoc_ema)."""
    if ema_steps is None and at is not None:
        raise ValueError("--at: only with --ema-steps (the run's own EMA exists for its last step only)")
    if ema_steps is None:
        module, config = load_model(Path(run_dir) / "generator")
    else:
        from engine.training.posthoc_ema import posthoc_ema

        module, config = posthoc_ema(run_dir, ema_steps, at)
    return save_model(module, config, dest_stem, dtype=torch.float16)  # 0644, ready to ship

"""Post-hoc EMA: choose the generator's averaging length after training, not before.

A run trained with ``--snapshot-every K`` keeps the raw generator every K steps in
``OUT/snapshots``. From them, ``aigc train export RUN DEST --ema-steps H [--at STEP]`` rebuilds
an exponential moving average with per-step decay 1 - 1/H (H: its length in steps) ending at
STEP, as if the run had kept that EMA, without training again (the idea of Karras et al. 2024,
"Analyzing and improving the training dynamics of diffusion models", in its simplest form).

Between snapshots the raw weights are held constant, so each snapshot enters with weight
1 - (1 - 1/H)^K: exact when K = 1, and close when H is several times K. BatchNorm buffers
(running statistics) come from the raw generator at STEP, as the trainer's own EMA copies them.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn

from engine.models.state import load_state
from engine.models.weights import load_model

_NAME = re.compile(r"g_(\d{7})\.safetensors$")


def snapshot_stem(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / "snapshots" / f"g_{step:07d}"


def snapshot_steps(run_dir: str | Path) -> list[int]:
    """The steps a run kept its raw generator at, in order."""
    folder = Path(run_dir) / "snapshots"
    names = (_NAME.match(p.name) for p in folder.glob("g_*.safetensors")) if folder.is_dir() else ()
    return sorted(int(m.group(1)) for m in names if m)


def ema_weights(states: Iterable[tuple[int, dict[str, torch.Tensor]]], ema_steps: float) -> dict[str, torch.Tensor]:
    """The EMA (per-step decay 1 - 1/ema_steps) of float tensors given at increasing steps,
    started from the first state; accumulated in float64, one state in memory at a time."""
    states = iter(states)
    prev, first = next(states)
    acc = {k: v.double() for k, v in first.items() if v.is_floating_point()}
    for step, state in states:
        keep = math.exp((step - prev) * math.log1p(-1.0 / ema_steps)) if ema_steps > 1 else 0.0
        for k in acc:
            acc[k].mul_(keep).add_(state[k].double(), alpha=1.0 - keep)
        prev = step
    return acc


def posthoc_ema(run_dir: str | Path, ema_steps: float, at: int | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """The run's generator averaged with length ``ema_steps`` up to snapshot ``at`` (default:
    the last), with its config. Refuses, naming the flag, what it cannot rebuild."""
    if not ema_steps >= 1:
        raise ValueError(f"--ema-steps: must be at least 1 (the averaging length in steps), got {ema_steps}")
    steps = snapshot_steps(run_dir)
    if not steps:
        raise FileNotFoundError(f"--ema-steps: {Path(run_dir) / 'snapshots'} holds no generator snapshots; "
                                "train with --snapshot-every K to keep them")
    at = steps[-1] if at is None else at
    if at not in steps:
        raise ValueError(f"--at: the run has no snapshot at step {at} "
                         f"(it has {len(steps)}, from step {steps[0]} to {steps[-1]})")
    module, config = load_model(snapshot_stem(run_dir, at))
    used = [s for s in steps if s <= at]
    averaged = ema_weights(((s, load_state(snapshot_stem(run_dir, s).with_suffix(".safetensors"))) for s in used),
                           ema_steps)
    state = module.state_dict()
    for name, value in averaged.items():
        if not name.endswith(("running_mean", "running_var")):
            state[name] = value.to(state[name].dtype)
    module.load_state_dict(state)
    config = {**config, "version": f"step-{at}-ema{ema_steps:g}", "trained_steps": at,
              "posthoc_ema": {"ema_steps": ema_steps, "snapshots": len(used), "first": used[0]}}
    return module, config

"""Training checkpoints and served weights as safetensors (tensors) + JSON (the rest); never pickle.

Plugins may import only ``engine.sdk`` of the engine, so this is the plugin's own small copy of
what engine/training/checkpoint.py does for the image trainers: optimizer states flattened to
``<prefix>/<param index>/<name>`` tensors, param groups in the JSON, files written to a temporary
name and renamed so a run killed mid-save keeps its previous checkpoint.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file


def module_tensors(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}/{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def restore_module(module: torch.nn.Module, prefix: str, tensors: dict[str, torch.Tensor]) -> None:
    n = len(prefix) + 1
    module.load_state_dict({k[n:]: v for k, v in tensors.items() if k.startswith(prefix + "/")})


def optimizer_tensors(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    sd = opt.state_dict()
    tensors = {}
    for idx, state in sd["state"].items():
        for name, value in state.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"{prefix}/{idx}/{name}"] = t.detach().cpu().contiguous()
    return tensors, sd["param_groups"]


def restore_optimizer(opt: torch.optim.Optimizer, prefix: str, tensors: dict[str, torch.Tensor],
                      groups: list[dict[str, Any]]) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "/"):
            _, idx, name = key.split("/", 2)
            state.setdefault(int(idx), {})[name] = value
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    opt.load_state_dict({"state": state, "param_groups": groups})


def save(stem: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    tmp_t, tmp_j = Path(f"{stem}.safetensors.tmp"), Path(f"{stem}.json.tmp")
    save_file(tensors, str(tmp_t))
    tmp_j.write_text(json.dumps(meta, indent=1, sort_keys=True))
    os.replace(tmp_t, f"{stem}.safetensors")
    os.replace(tmp_j, f"{stem}.json")


def load(stem: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    stem = Path(stem)
    return load_file(f"{stem}.safetensors"), json.loads(Path(f"{stem}.json").read_text())

"""Models and training state as safetensors + JSON (never pickle): a model is ``stem.json``
(kind, config, vocabulary, styles, training figures) and ``stem.safetensors``; a resumable
checkpoint adds the optimizer's tensors and the step to the same two files."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file


def save(stem: Path | str, model: torch.nn.Module, meta: dict[str, Any],
         optimizers: dict[str, torch.optim.Optimizer] | None = None) -> None:
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    opt_meta: dict[str, Any] = {}
    for name, opt in (optimizers or {}).items():
        sd = opt.state_dict()
        opt_meta[name] = {"param_groups": sd["param_groups"], "params": sorted(sd["state"])}
        for pid, st in sd["state"].items():
            for key, val in st.items():
                t = val if torch.is_tensor(val) else torch.tensor(val)
                tensors[f"opt.{name}.{pid}.{key}"] = t.detach().contiguous().clone()
    tmp = stem.with_suffix(".safetensors.tmp")
    save_file(tensors, str(tmp))
    tmp.replace(stem.with_suffix(".safetensors"))
    meta = {**meta, "optimizers": opt_meta} if optimizers else dict(meta)
    stem.with_suffix(".json.tmp").write_text(json.dumps(meta, indent=1, ensure_ascii=False))
    stem.with_suffix(".json.tmp").replace(stem.with_suffix(".json"))


def read_meta(stem: Path | str) -> dict[str, Any]:
    return json.loads(Path(stem).with_suffix(".json").read_text(encoding="utf-8"))


def load_into(stem: Path | str, model: torch.nn.Module,
              optimizers: dict[str, torch.optim.Optimizer] | None = None) -> dict[str, Any]:
    """Fill ``model`` (and ``optimizers``, when the file holds their state); returns the JSON."""
    stem = Path(stem)
    meta = read_meta(stem)
    tensors = load_file(str(stem.with_suffix(".safetensors")))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    for name, opt in (optimizers or {}).items():
        om = meta.get("optimizers", {}).get(name)
        if om is None:
            continue
        state: dict[int, dict[str, Any]] = {}
        for pid in om["params"]:
            prefix = f"opt.{name}.{pid}."
            state[int(pid)] = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        opt.load_state_dict({"state": state, "param_groups": om["param_groups"]})
    return meta

"""Training checkpoints and served weights as safetensors (tensors) + JSON (the rest); never pickle.

The engine's own checkpoint format, reached through ``engine.sdk`` (the image trainers use the
same code): optimizer states flattened to ``<prefix>/<param index>/<name>`` tensors, param
groups in the JSON, files written under temporary names and renamed so a run killed mid-save
keeps its previous checkpoint.
"""
from __future__ import annotations

from engine.sdk import load_checkpoint as load
from engine.sdk import module_tensors, optimizer_tensors, restore_module, restore_optimizer
from engine.sdk import save_checkpoint as save

__all__ = ["load", "module_tensors", "optimizer_tensors", "restore_module", "restore_optimizer", "save"]

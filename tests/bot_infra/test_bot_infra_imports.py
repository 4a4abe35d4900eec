"""The bot's infrastructure modules import no torch and nothing of the engine but its wire schemas."""
from __future__ import annotations

import json
import subprocess
import sys

MODULES = ["bot", "bot.store", "bot.scoped_settings", "bot.quota", "bot.engine_client", "bot.config"]


def test_no_torch_and_only_engine_protocol() -> None:
    code = (f"import importlib, json, sys\nfor m in {MODULES!r}: importlib.import_module(m)\n"
            "print(json.dumps(sorted(m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'engine')))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert set(json.loads(out.stdout)) <= {"engine", "engine.protocol"}

"""Shared by the benchmarks: a real engine subprocess on loopback."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from aigc.up import wait_engine_ready as wait_ready  # noqa: F401  (re-exported for the benchmarks)

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def start_engine(port: int, token: str, data_dir: str, **env_extra: str) -> subprocess.Popen:
    env = {**os.environ, "AIGC_ENGINE_PORT": str(port), "AIGC_ENGINE_TOKEN": token,
           "AIGC_DATA_DIR": data_dir, "AIGC_PLUGINS_ENABLED": "emoji", "AIGC_QUEUE_MAX": "4096",
           "AIGC_LOG_FORMAT": "json", **env_extra}
    return subprocess.Popen([sys.executable, "-m", "aigc.cli", "engine"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

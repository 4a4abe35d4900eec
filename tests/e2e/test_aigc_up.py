"""`aigc up` starts the engine and the bot (on the emulator without a token) and stops both."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_aigc_up_runs_engine_and_bot_together(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "AIGC_ENGINE_TOKEN")}
    env["AIGC_DATA_DIR"] = str(tmp_path)
    env["AIGC_BOT_HTTP_PORT"] = str(_port())  # not the default 8701: other runs may hold it
    out = subprocess.run([sys.executable, "-m", "aigc.cli", "up", "--engine-port", str(_port()),
                          "--emulator-port", str(_port()), "--exit-after", "0.5"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "aigc up: engine and bot are ready." in out.stdout
    assert "Open the playground: http://127.0.0.1:" in out.stdout
    assert "commands synced" in out.stderr and "aigc up: stopping" in out.stderr

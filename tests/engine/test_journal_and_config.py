"""Crash recovery from the journal; settings from env and TOML with clear errors; the CLI."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.config import ConfigError, load_engine_settings

ROOT = Path(__file__).resolve().parents[2]


async def test_accepted_jobs_survive_an_engine_crash(engine_factory, tmp_path):
    from tests.engine.probe_plugin import make_probe_plugin

    data = tmp_path / "shared-data"
    plugin, gen = make_probe_plugin()
    first = await engine_factory(extra_plugins=[plugin], builtin_plugins=False, data_dir=data)
    gen.gate.clear()
    running = await first.submit({"command": "probe", "options": {"text": "r"}, "seed": 1})
    queued = await first.submit({"command": "probe", "options": {"text": "q"}, "seed": 2, "count": 3,
                                 "idempotency_key": "k-1"})
    # The crash: the first engine never finishes these jobs.
    plugin2, gen2 = make_probe_plugin()
    second = await engine_factory(extra_plugins=[plugin2], builtin_plugins=False, data_dir=data)
    for acc in (running, queued):
        done = await second.wait_done(acc["id"])
        assert done["status"] == "done"
    assert (await second.wait_done(queued["id"]))["count"] == 3
    again = await second.submit({"command": "probe", "options": {"text": "q"}, "idempotency_key": "k-1"})
    assert again["id"] == queued["id"]
    # Finished jobs remain usable as parents after a restart.
    child = await second.submit({"command": "probe", "parent": {"job": running["id"], "action": "variations"},
                                 "count": 1})
    assert (await second.wait_done(child["id"]))["options"]["text"] == "r"
    gen.gate.set()


def test_env_overrides_toml_and_errors_name_the_variable(tmp_path, monkeypatch):
    cfg = tmp_path / "aigc.toml"
    cfg.write_text('[engine]\nengine_port = 9100\nqueue_max = 12\ndevice = "cpu"\n')
    monkeypatch.setenv("AIGC_CONFIG", str(cfg))
    monkeypatch.setenv("AIGC_QUEUE_MAX", "34")
    s = load_engine_settings()
    assert (s.engine_port, s.queue_max, s.device) == (9100, 34, "cpu")
    monkeypatch.setenv("AIGC_ENGINE_PORT", "70000")
    monkeypatch.setenv("AIGC_DEVICE", "tpu")
    with pytest.raises(ConfigError) as e:
        load_engine_settings()
    lines = str(e.value).splitlines()
    assert any(l.startswith("AIGC_ENGINE_PORT:") and "65535" in l and "70000" in l for l in lines)
    assert any(l.startswith("AIGC_DEVICE:") and "cuda:N" in l for l in lines)


def test_bad_toml_and_missing_file_are_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("AIGC_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_engine_settings()
    bad = tmp_path / "bad.toml"
    bad.write_text("[engine\n")
    monkeypatch.setenv("AIGC_CONFIG", str(bad))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_engine_settings()


def test_token_values_are_never_echoed(monkeypatch):
    monkeypatch.setenv("AIGC_ENGINE_TOKEN", "s3cret-value")
    s = load_engine_settings()
    assert "s3cret-value" not in repr(s) and s.engine_token.get_secret_value() == "s3cret-value"


def _aigc(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aigc.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **(env or {})}, timeout=120)


def test_aigc_engine_refuses_bad_configuration():
    out = _aigc("engine", env={"AIGC_ENGINE_PORT": "abc"})
    assert out.returncode == 2
    assert "AIGC_ENGINE_PORT: Input should be a valid integer" in out.stderr


def test_aigc_generate_writes_labelled_files(tmp_path):
    out = _aigc("generate", "emoji", "--prompt", "red heart", "--count", "2", "--seed", "11",
                "-o", str(tmp_path / "out"), env={"AIGC_DATA_DIR": str(tmp_path / "d")})
    assert out.returncode == 0, out.stderr
    files = sorted((tmp_path / "out").iterdir())
    assert [f.name for f in files] == ["emoji-11-0.png", "emoji-11-1.png"]
    from PIL import Image
    assert "AI-generated" in Image.open(files[0]).info["AIGC"]
    bad = _aigc("generate", "emoji", "--prompt", "x", "--variety", "3", "-o", str(tmp_path / "o2"),
                env={"AIGC_DATA_DIR": str(tmp_path / "d")})
    assert bad.returncode == 2 and "options.variety: must be at most 1" in bad.stderr
    # bytes that are not UTF-8 reach Python's argv as lone surrogates: refused, naming the option
    undecodable = subprocess.run([sys.executable.encode(), b"-m", b"aigc.cli", b"generate", b"emoji",
                                  b"--prompt", b"cat \xff face", b"-o", str(tmp_path / "o3").encode()],
                                 capture_output=True, cwd=ROOT, timeout=120,
                                 env={**os.environ, "AIGC_DATA_DIR": str(tmp_path / "d")})
    assert undecodable.returncode == 2
    assert b"options.prompt: must be valid Unicode text (no lone surrogates)" in undecodable.stderr
    assert not (tmp_path / "o3").exists()

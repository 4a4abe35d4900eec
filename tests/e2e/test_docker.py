"""The Docker image without a Docker daemon: the Dockerfile and compose.yaml agree with the
code's defaults and routes, and the image's entry point (`aigc up` with the Dockerfile's
environment) serves the playground on every address and passes its own HEALTHCHECK."""
from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


# ---- reading the files ------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines, current = [], ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        if not current and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        current += raw.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        word, _, rest = current.strip().partition(" ")
        lines.append((word.upper(), rest.strip()))
        current = ""
    return lines


def docker_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in dockerfile():
        if word == "ENV":
            env.update(dict(p.split("=", 1) for p in shlex.split(rest)))
    return env


def load_compose() -> dict[str, Any]:
    text = (ROOT / "compose.yaml").read_text()
    try:
        import yaml
    except ImportError:  # CI installs pyyaml (test extra); this subset reader covers compose.yaml
        return _mini_yaml(text)
    return yaml.safe_load(text)


def _scalar(text: str) -> Any:
    text = text.strip()
    if text.startswith(("[", '"')):
        return json.loads(text)
    if text.startswith("'"):
        return text[1:-1]
    return text


def _mini_yaml(text: str) -> Any:
    rows = [(len(ln) - len(ln.lstrip()), ln.strip()) for ln in text.splitlines()
            if ln.strip() and not ln.lstrip().startswith("#")]

    def block(i: int, indent: int) -> tuple[Any, int]:
        if rows[i][1].startswith("- "):
            items = []
            while i < len(rows) and rows[i][0] == indent and rows[i][1].startswith("- "):
                items.append(_scalar(rows[i][1][2:]))
                i += 1
            return items, i
        out: dict[str, Any] = {}
        while i < len(rows) and rows[i][0] == indent:
            key, _, value = rows[i][1].partition(":")
            i += 1
            if value.strip():
                out[key] = _scalar(value)
            elif i < len(rows) and rows[i][0] > indent:
                out[key], i = block(i, rows[i][0])
            else:
                out[key] = None
        return out, i

    return block(0, 0)[0]


def env_list(service: dict[str, Any]) -> dict[str, str | None]:
    items = service.get("environment") or []
    if isinstance(items, dict):
        return {k: (None if v is None else str(v)) for k, v in items.items()}
    return {k: (v if sep else None) for k, sep, v in (i.partition("=") for i in items)}


def _defaults() -> dict[str, int]:
    from bot.config import DEFAULT_HTTP_PORT, BotSettings
    from engine.config import EngineSettings

    # `aigc up --emulator-port` defaults to the bot setting AIGC_EMULATOR_PORT
    return {"engine": EngineSettings.model_fields["engine_port"].default, "bot_http": DEFAULT_HTTP_PORT,
            "emulator": BotSettings.model_fields["emulator_port"].default}


# ---- consistency --------------------------------------------------------------------------


def test_dockerfile_agrees_with_the_code():
    from aigc import healthcheck

    steps = dockerfile()
    env = docker_env()
    defaults = _defaults()
    exposed = {int(p.split("/")[0]) for w, rest in steps if w == "EXPOSE" for p in rest.split()}
    assert exposed == set(defaults.values())
    assert int(env["AIGC_ENGINE_PORT"]) == defaults["engine"] == healthcheck.DEFAULT_ENGINE_PORT
    assert int(env["AIGC_BOT_HTTP_PORT"]) == defaults["bot_http"] == healthcheck.DEFAULT_BOT_PORT
    assert env["AIGC_EMULATOR_HOST"] == "0.0.0.0" and env["AIGC_BOT_HTTP_HOST"] == "0.0.0.0"
    assert env["AIGC_ENGINE_HOST"] == "127.0.0.1"  # `aigc up`: the engine stays on loopback
    # no secret is baked into the image: the engine makes or takes a token at run time
    assert not {"AIGC_ENGINE_TOKEN", "DISCORD_TOKEN"} & set(env)
    assert not any(w == "ARG" and "TOKEN" in rest for w, rest in steps)
    (health,) = [rest for w, rest in steps if w == "HEALTHCHECK"]
    assert json.loads(health.split("CMD", 1)[1]) == ["python", "-m", "aigc.healthcheck", "all"]
    assert healthcheck.targets("all", env) == [
        f"http://127.0.0.1:{defaults['engine']}/readyz", f"http://127.0.0.1:{defaults['bot_http']}/healthz"]
    assert [r for w, r in steps if w == "CMD"][-1] == '["aigc", "up"]'


def test_compose_agrees_with_the_dockerfile_and_the_code():
    from bot.store.database import normalize_store_url

    compose = load_compose()
    services = compose["services"]
    assert set(services) == {"engine", "bot", "postgres"}
    engine, bot, pg = services["engine"], services["bot"], services["postgres"]
    e_env, b_env, pg_env = env_list(engine), env_list(bot), env_list(pg)
    defaults = _defaults()
    # the engine listens for the bot on the compose network and keeps its token required
    assert engine["command"] == ["aigc", "engine"] and e_env["AIGC_ENGINE_HOST"] == "0.0.0.0"
    assert int(e_env["AIGC_ENGINE_PORT"]) == defaults["engine"]
    assert [int(p) for p in engine["expose"]] == [defaults["engine"]] and "ports" not in engine
    token = e_env["AIGC_ENGINE_TOKEN"]
    assert token.startswith("${AIGC_ENGINE_TOKEN:?") and b_env["AIGC_ENGINE_TOKEN"] == token
    assert engine["healthcheck"]["test"] == ["CMD", "python", "-m", "aigc.healthcheck", "engine"]
    # the bot reaches that engine, stores in PostgreSQL and serves playground and health
    assert bot["command"] == ["aigc", "bot"]
    assert b_env["AIGC_ENGINE_URL"] == f"http://engine:{defaults['engine']}"
    store = normalize_store_url(b_env["AIGC_STORE_URL"].replace("${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}", "pw"))
    assert (store.drivername, store.host, store.username, store.database) == (
        "postgresql+asyncpg", "postgres", pg_env["POSTGRES_USER"], pg_env["POSTGRES_DB"])
    assert pg_env["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
    assert b_env["DISCORD_TOKEN"] is None  # passed through only when set: unset means the emulator
    assert b_env["AIGC_EMULATOR_HOST"] == "0.0.0.0" and b_env["AIGC_BOT_HTTP_HOST"] == "0.0.0.0"
    assert int(b_env["AIGC_BOT_HTTP_PORT"]) == defaults["bot_http"]
    published = {int(p.rsplit(":", 1)[1]) for p in bot["ports"]}
    assert published == {defaults["emulator"], defaults["bot_http"]}
    assert all(p.startswith("127.0.0.1:") for p in bot["ports"])  # the host decides to open more
    assert bot["healthcheck"]["test"] == ["CMD", "python", "-m", "aigc.healthcheck", "bot"]
    assert {k: v["condition"] for k, v in bot["depends_on"].items()} == {
        "engine": "service_healthy", "postgres": "service_healthy"}
    assert set(compose["volumes"]) == {"engine-data", "bot-data", "postgres-data"}


async def test_healthcheck_routes_are_the_ones_served(world):
    from aigc import healthcheck
    from bot.health import build_app
    from tests.e2e.test_health import _with_http

    engine_routes = {r.canonical for r in world.engine.runner.app.router.resources()}
    assert healthcheck.ENGINE_ROUTE in engine_routes
    assert healthcheck.BOT_ROUTE in {r.canonical for r in build_app(world.bot.services).router.resources()}
    base = await _with_http(world)
    env = {**os.environ, "AIGC_ENGINE_PORT": str(world.engine.port),
           "AIGC_BOT_HTTP_PORT": base.rsplit(":", 1)[1]}

    def run(role: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "aigc.healthcheck", role], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)

    import asyncio

    ok = await asyncio.to_thread(run, "all")
    assert ok.returncode == 0, ok.stderr
    await world.engine.stop()
    down = await asyncio.to_thread(run, "all")
    assert down.returncode == 1 and "/readyz" in down.stderr and "/healthz: HTTP 503" in down.stderr
    assert (await asyncio.to_thread(run, "nonsense")).returncode == 2


# ---- the image's entry point --------------------------------------------------------------


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listens_on_every_address(port: int) -> bool:
    """/proc/net/tcp: a LISTEN socket (state 0A) on 0.0.0.0:port."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "0A" and local == f"00000000:{port:04X}":
            return True
    return False


def test_image_entry_point_serves_the_playground_on_every_address(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "AIGC_ENGINE_TOKEN")}
    env.update(docker_env())  # what the image sets
    engine_port, bot_port = _port(), _port()
    env.update(AIGC_DATA_DIR=str(tmp_path), AIGC_ENGINE_PORT=str(engine_port), AIGC_BOT_HTTP_PORT=str(bot_port))
    emulator_port = _port()
    (cmd,) = [json.loads(r) for w, r in dockerfile() if w == "CMD"]
    assert cmd == ["aigc", "up"]
    argv = [sys.executable, "-m", "aigc.cli", *cmd[1:], "--emulator-port", str(emulator_port), "--exit-after", "120"]
    log = open(tmp_path / "stderr.log", "w")  # a file: an undrained pipe would block the logs
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        end = time.monotonic() + 180
        seen = ""
        while "Open the playground" not in seen:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            assert line or proc.poll() is None, (tmp_path / "stderr.log").read_text()[-2000:]
            seen += line
            assert time.monotonic() < end, seen
        assert f"http://127.0.0.1:{emulator_port}/playground" in seen  # a URL a browser can open
        assert _listens_on_every_address(emulator_port) and _listens_on_every_address(bot_port)
        with urllib.request.urlopen(f"http://127.0.0.1:{emulator_port}/playground", timeout=10) as r:
            assert r.status == 200 and b"<html" in r.read(4096).lower()
        health = subprocess.run([sys.executable, "-m", "aigc.healthcheck", "all"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=60)
        assert health.returncode == 0, health.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    assert proc.returncode == 0, (tmp_path / "stderr.log").read_text()[-2000:]

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import BotSettings, ConfigError, load_bot_settings

ENV_NAMES = ("DISCORD_TOKEN", "AIGC_ENGINE_URL", "AIGC_ENGINE_TOKEN", "AIGC_STORE_URL", "AIGC_DATA_DIR",
             "AIGC_DISCORD_API_BASE", "AIGC_DISCORD_GATEWAY", "AIGC_TEST_GUILDS", "AIGC_CATALOG_POLL_S",
             "AIGC_ENGINE_TIMEOUT_S", "AIGC_ENGINE_HEALTH_S", "AIGC_CONFIG")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def test_defaults_run_against_the_emulator_with_a_local_sqlite_file() -> None:
    s = load_bot_settings()
    assert s.uses_emulator and s.discord_token is None
    assert s.engine_url == ["http://127.0.0.1:8700"]
    assert s.store_url == "sqlite+aiosqlite:///data/aigc-bot.sqlite3"
    assert s.discord_api_base == "https://discord.com/api/v10"
    assert s.discord_gateway == "wss://gateway.discord.gg/"
    assert s.test_guilds == [] and s.catalog_poll_s == 60


def test_environment_values(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "discord-secret-token")
    monkeypatch.setenv("AIGC_ENGINE_URL", "http://e1:8700/, https://e2.example")
    monkeypatch.setenv("AIGC_ENGINE_TOKEN", "engine-secret-token")
    monkeypatch.setenv("AIGC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AIGC_DISCORD_API_BASE", "http://127.0.0.1:5005/api/v10/")
    monkeypatch.setenv("AIGC_DISCORD_GATEWAY", "ws://127.0.0.1:5005/gateway")
    monkeypatch.setenv("AIGC_TEST_GUILDS", "123456789012345678, 42")
    monkeypatch.setenv("AIGC_CATALOG_POLL_S", "0")
    s = load_bot_settings()
    assert not s.uses_emulator and s.discord_token.get_secret_value() == "discord-secret-token"
    assert s.engine_url == ["http://e1:8700", "https://e2.example"]
    assert s.store_url == f"sqlite+aiosqlite:///{tmp_path}/aigc-bot.sqlite3"
    assert s.discord_api_base == "http://127.0.0.1:5005/api/v10" and s.test_guilds == [123456789012345678, 42]
    assert s.catalog_poll_s == 0
    shown = repr(s) + str(s) + str(s.model_dump())
    assert "discord-secret-token" not in shown and "engine-secret-token" not in shown and "**********" in shown


def test_store_url_spellings_and_password_never_shown(monkeypatch) -> None:
    monkeypatch.setenv("AIGC_STORE_URL", "postgres://bot:pa55word@db.local/aigc")
    s = load_bot_settings()
    assert s.store_url == "postgresql+asyncpg://bot:pa55word@db.local/aigc"
    assert "pa55word" not in repr(s) and s.redacted_store_url() == "postgresql+asyncpg://bot:***@db.local/aigc"
    monkeypatch.setenv("AIGC_STORE_URL", "mysql://bot:pa55word@db.local/aigc")
    with pytest.raises(ConfigError) as err:
        load_bot_settings()
    assert str(err.value).startswith("AIGC_STORE_URL: store URL driver 'mysql' is not supported")
    assert "pa55word" not in str(err.value) and "bot:***@db.local" in str(err.value)


def test_every_bad_value_gets_one_clear_line(monkeypatch) -> None:
    monkeypatch.setenv("AIGC_ENGINE_URL", "http://ok:1,ftp://nope,http://bad:99999")
    monkeypatch.setenv("AIGC_ENGINE_TOKEN", "")
    monkeypatch.setenv("AIGC_DISCORD_GATEWAY", "https://gateway.discord.gg")
    monkeypatch.setenv("AIGC_TEST_GUILDS", "1,abc")
    monkeypatch.setenv("AIGC_CATALOG_POLL_S", "-5")
    monkeypatch.setenv("AIGC_STORE_URL", "sqlite:///:memory:")
    with pytest.raises(ConfigError) as err:
        load_bot_settings()
    assert str(err.value).splitlines() == [
        "AIGC_ENGINE_URL[1]: must be a URL starting with http:// or https:// and naming a host (got 'ftp://nope')",
        "AIGC_ENGINE_URL[2]: has an invalid port (got 'http://bad:99999')",
        "AIGC_STORE_URL: store URL must name a SQLite file (an in-memory database is not shared between "
        "connections) (got 'sqlite:///:memory:')",
        "AIGC_DISCORD_GATEWAY: must be a URL starting with ws:// or wss:// and naming a host "
        "(got 'https://gateway.discord.gg')",
        "AIGC_TEST_GUILDS[1]: Input should be a valid integer, unable to parse string as an integer (got 'abc')",
        "AIGC_CATALOG_POLL_S: Input should be greater than or equal to 0 (got '-5')",
    ]


def test_secrets_are_not_echoed_in_errors() -> None:
    with pytest.raises(ConfigError) as err:
        load_bot_settings(engine_token=987654321, discord_token=["s3cr3t"], engine_url="")
    assert str(err.value).splitlines() == [
        "DISCORD_TOKEN: Input should be a valid string",
        "AIGC_ENGINE_URL: List should have at least 1 item after validation, not 0 (got [])",
        "AIGC_ENGINE_TOKEN: Input should be a valid string",
    ]


def test_toml_file_under_environment(monkeypatch, tmp_path) -> None:
    cfg = tmp_path / "aigc.toml"
    cfg.write_text('[engine]\nthreads = 4\n\n[bot]\nengine_url = ["http://from-toml:1", "http://second:2"]\n'
                   'test_guilds = [7]\ncatalog_poll_s = 15\nengine_token = "toml-secret"\n')
    monkeypatch.setenv("AIGC_CONFIG", str(cfg))
    monkeypatch.setenv("AIGC_CATALOG_POLL_S", "30")
    s = load_bot_settings()
    assert s.engine_url == ["http://from-toml:1", "http://second:2"] and s.test_guilds == [7]
    assert s.catalog_poll_s == 30  # the environment wins
    assert s.engine_token.get_secret_value() == "toml-secret" and "toml-secret" not in repr(s)


@pytest.mark.parametrize(("content", "message"), [
    ("[bot]\nengine_ulr = 'http://x'\n", "AIGC_CONFIG: [bot] has unknown keys engine_ulr; known keys: discord_token"),
    ("[bot\n", "is not valid TOML"),
    ("bot = 3\n", "AIGC_CONFIG: [bot] must be a table"),
    ("[bot]\ncatalog_poll_s = 'often'\n", "AIGC_CATALOG_POLL_S: Input should be a valid number"),
])
def test_bad_toml_files(monkeypatch, tmp_path, content: str, message: str) -> None:
    cfg = tmp_path / "aigc.toml"
    cfg.write_text(content)
    monkeypatch.setenv("AIGC_CONFIG", str(cfg))
    with pytest.raises(ConfigError, match=None) as err:
        load_bot_settings()
    assert message in str(err.value)


def test_missing_toml_file(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AIGC_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="does not exist"):
        BotSettings()


def test_http_and_emulator_host_settings(monkeypatch):
    for name in ("AIGC_BOT_HTTP_HOST", "AIGC_BOT_HTTP_PORT", "AIGC_EMULATOR_HOST", "AIGC_EMULATOR_PORT"):
        monkeypatch.delenv(name, raising=False)
    s = load_bot_settings()
    assert (s.http_host, s.http_port, s.emulator_host, s.emulator_port) == ("127.0.0.1", 8701, "127.0.0.1", 8765)
    monkeypatch.setenv("AIGC_BOT_HTTP_PORT", "0")
    monkeypatch.setenv("AIGC_EMULATOR_HOST", "0.0.0.0")
    monkeypatch.setenv("AIGC_EMULATOR_PORT", "18765")
    s = load_bot_settings()
    assert (s.http_port, s.emulator_host, s.emulator_port) == (0, "0.0.0.0", 18765)
    monkeypatch.setenv("AIGC_EMULATOR_PORT", "http")
    with pytest.raises(ConfigError, match="AIGC_EMULATOR_PORT"):
        load_bot_settings()
    monkeypatch.setenv("AIGC_EMULATOR_PORT", "8765")
    monkeypatch.setenv("AIGC_BOT_HTTP_PORT", "65536")
    with pytest.raises(ConfigError, match="AIGC_BOT_HTTP_PORT: .*65535"):
        load_bot_settings()


def test_standalone_emulator_takes_its_port_from_the_environment(tmp_path):
    import os
    import socket
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[2]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "AIGC_EMULATOR_PORT": "not-a-port"}
    bad = subprocess.run([sys.executable, "-m", "emulator"], env=env, cwd=root, capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "AIGC_EMULATOR_PORT: must be a port number 0-65535" in bad.stderr
    env["AIGC_EMULATOR_PORT"] = str(port)
    proc = subprocess.Popen([sys.executable, "-m", "emulator", "--no-demo"], env=env, cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "emulator did not listen"
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)

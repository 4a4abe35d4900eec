"""compose.scale.yaml agrees with the code: every AIGC_* variable it sets is a setting of the
engine or the bot, the worker serves its health check's port, and the API node, workers,
Redis and PostgreSQL are all there."""
from __future__ import annotations

from pathlib import Path

import yaml

from bot.config import BotSettings
from engine.config import EngineSettings

ROOT = Path(__file__).resolve().parents[2]


def _aliases(settings: type) -> set[str]:
    names = set()
    for name, f in settings.model_fields.items():
        names.add(f"AIGC_{name.upper()}")
        alias = f.validation_alias
        for choice in getattr(alias, "choices", []) or []:
            if isinstance(choice, str):
                names.add(choice.upper())
    return names


def test_the_scaled_out_compose_file_names_real_settings():
    compose = yaml.safe_load((ROOT / "compose.scale.yaml").read_text())
    services = compose["services"]
    assert {"engine", "worker", "bot", "redis", "postgres"} <= set(services)
    known = _aliases(EngineSettings) | _aliases(BotSettings) | {"DISCORD_TOKEN"}
    for name, service in services.items():
        for item in service.get("environment", []):
            key = item.split("=", 1)[0]
            if key.startswith("AIGC_"):
                assert key in known, f"{name}: {key} is no setting of the engine or the bot"
    worker = services["worker"]
    port = worker["command"][worker["command"].index("--port") + 1]
    assert f":{port}/readyz" in " ".join(worker["healthcheck"]["test"])
    engine_env = dict(e.split("=", 1) for e in services["engine"]["environment"])
    assert engine_env["AIGC_QUEUE_URL"].startswith("redis://redis:")
    assert engine_env["AIGC_DATABASE_URL"].startswith("postgresql://")
    assert "--appendonly" in services["redis"]["command"]  # the test of a restart without data

"""`aigc` subcommands that belong to the engine (serve, plugins, generate)."""
from __future__ import annotations

import sys

from engine.config import ConfigError, EngineSettings, load_engine_settings


def settings_or_exit(**overrides) -> EngineSettings:
    try:
        return load_engine_settings(**overrides)
    except ConfigError as e:
        print(f"aigc: invalid configuration:\n{e}", file=sys.stderr)
        raise SystemExit(2) from None

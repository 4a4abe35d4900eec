"""The optional TOML file named by AIGC_CONFIG, shared by the engine's and the bot's settings
(tables ``[engine]`` and ``[bot]``). Dependency-free, so both sides can use it."""
from __future__ import annotations

import os
import tomllib
from typing import Any


class ConfigError(Exception):
    """A configuration value is invalid; the message lists every problem, one per line."""


def load_toml_table(table: str) -> dict[str, Any]:
    """The ``[table]`` of the AIGC_CONFIG file ({} when unset); clear errors otherwise."""
    path = os.environ.get("AIGC_CONFIG")
    if not path:
        return {}
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"AIGC_CONFIG: file {path!r} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"AIGC_CONFIG: {path!r} is not valid TOML: {e}") from None
    section = data.get(table, {})
    if not isinstance(section, dict):
        raise ConfigError(f"AIGC_CONFIG: [{table}] must be a table")
    return section

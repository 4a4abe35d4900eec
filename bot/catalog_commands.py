"""Slash commands from the engine's catalog: Discord payloads, their hash, and option parsing.

The bot holds no per-plugin code: every catalog command becomes a CHAT_INPUT command whose
options mirror the plugin's typed options (ranges, choices, lengths, autocomplete,
localizations). Built-in bot commands (from discord.py's tree) are merged in the same sync.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from engine.protocol import Catalog, CommandSpec, OptionSpec

# Discord application command option types.
OPTION_TYPES = {"string": 3, "integer": 4, "boolean": 5, "number": 10}
# Discord's locales are a fixed set; ours map onto it as is (en-US, zh-CN, ...).
DISCORD_LOCALES = {
    "id", "da", "de", "en-GB", "en-US", "es-ES", "es-419", "fr", "hr", "it", "lt", "hu", "nl", "no",
    "pl", "pt-BR", "ro", "fi", "sv-SE", "vi", "tr", "cs", "el", "bg", "ru", "uk", "hi", "th",
    "zh-CN", "ja", "zh-TW", "ko",
}


def _l10n(d: dict[str, str]) -> dict[str, str] | None:
    out = {k: v for k, v in d.items() if k in DISCORD_LOCALES}
    return out or None


def option_payload(o: OptionSpec) -> dict[str, Any]:
    p: dict[str, Any] = {"type": OPTION_TYPES[o.type.value], "name": o.name,
                         "description": o.description, "required": o.required}
    if (n := _l10n(o.name_localizations)):
        p["name_localizations"] = n
    if (d := _l10n(o.description_localizations)):
        p["description_localizations"] = d
    if o.choices and o.choice_order:
        p["autocomplete"] = True  # ordered per locale (bot.app answers from the choices)
    elif o.choices:
        p["choices"] = [{"name": c.name, "value": c.value,
                         **({"name_localizations": n} if (n := _l10n(c.name_localizations)) else {})}
                        for c in o.choices[:25]]
    elif o.autocomplete:
        p["autocomplete"] = True
    if o.type.value in ("integer", "number"):
        if o.min_value is not None:
            p["min_value"] = int(o.min_value) if o.type.value == "integer" else o.min_value
        if o.max_value is not None:
            p["max_value"] = int(o.max_value) if o.type.value == "integer" else o.max_value
    if o.type.value == "string":
        if o.min_length is not None:
            p["min_length"] = o.min_length
        if o.max_length is not None:
            p["max_length"] = min(o.max_length, 6000)
    return p


def command_payload(c: CommandSpec) -> dict[str, Any]:
    # Discord wants required options first.
    options = sorted(c.options, key=lambda o: not o.required)
    p: dict[str, Any] = {"type": 1, "name": c.name, "description": c.description,
                         "options": [option_payload(o) for o in options], "nsfw": c.nsfw,
                         "contexts": [0, 1, 2], "integration_types": [0]}
    if (n := _l10n(c.name_localizations)):
        p["name_localizations"] = n
    if (d := _l10n(c.description_localizations)):
        p["description_localizations"] = d
    return p


def catalog_commands(catalog: Catalog) -> dict[str, CommandSpec]:
    return {c.name: c for p in catalog.plugins for c in p.commands}


class CatalogState(Mapping[str, CommandSpec]):
    """The engine's catalog as last fetched, read as {command name: spec}. One object shared by
    every part that looks a command up; ``update`` swaps in a new catalog."""

    def __init__(self) -> None:
        self.catalog: Catalog | None = None
        self._specs: dict[str, CommandSpec] = {}

    def update(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._specs = catalog_commands(catalog)

    @property
    def hash(self) -> str | None:
        return self.catalog.hash if self.catalog else None

    def __getitem__(self, name: str) -> CommandSpec:
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)


def payload_hash(payload: list[dict[str, Any]]) -> str:
    """What decides whether a sync is needed (Discord caps command creates per day)."""
    canon = json.dumps(sorted(payload, key=lambda c: (c.get("type", 1), c["name"])), sort_keys=True)
    return hashlib.sha256(canon.encode()).hexdigest()


def interaction_options(data: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Flat {name: value} from an INTERACTION_CREATE's data, and the focused option (autocomplete)."""
    values: dict[str, Any] = {}
    focused = None
    for opt in data.get("options", []) or []:
        if opt.get("type") in (1, 2):  # subcommands: catalog commands have none, but be safe
            sub, f = interaction_options(opt)
            values.update(sub)
            focused = focused or f
            continue
        values[opt["name"]] = opt.get("value")
        if opt.get("focused"):
            focused = opt["name"]
    return values, focused

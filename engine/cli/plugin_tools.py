"""The ``aigc`` subcommands plugins add (``sdk.Tool``): found through engine.discovery, their
modules imported only when they run, so a plugin's data builder or trainer never slows or
breaks another subcommand."""
from __future__ import annotations

import argparse
import importlib
import logging
from typing import Any

from engine.discovery import discover, resolve
from engine.sdk import Tool

log = logging.getLogger("aigc.cli")

__all__ = ["add_tool_parsers", "find_tool", "plugin_tools", "run_tool"]


def plugin_tools(kind: str) -> list[Tool]:
    """Every declared plugin's tools of ``kind``, built-ins first; a plugin that fails to import
    is skipped with a warning (its own commands say why when they are used)."""
    found: list[Tool] = []
    seen: set[str] = set()
    for candidate in discover():
        try:
            plugin = resolve(candidate.load())
        except Exception as e:  # noqa: BLE001 - one broken plugin must not break the CLI
            log.warning("plugin %r not loaded: %s: %s", candidate.name, type(e).__name__, e)
            continue
        for tool in getattr(plugin, "tools", ()):
            if tool.kind == kind and tool.name not in seen:
                seen.add(tool.name)
                found.append(tool)
    return found


def find_tool(kind: str, name: str) -> Tool | None:
    return next((t for t in plugin_tools(kind) if t.name == name), None)


def add_tool_parsers(sub: Any, kind: str, taken: set[str]) -> None:
    """A subparser per plugin tool of ``kind`` whose name is not ``taken`` by a built-in one."""
    for tool in plugin_tools(kind):
        if tool.name in taken:
            log.warning("plugin tool %s %r hidden by the built-in one", kind, tool.name)
            continue
        p = sub.add_parser(tool.name, help=tool.help, description=tool.help)
        configure_tool(p, tool)


def configure_tool(parser: argparse.ArgumentParser, tool: Tool) -> None:
    importlib.import_module(tool.module).configure(parser)
    parser.set_defaults(plugin_tool=tool)


def run_tool(args: argparse.Namespace) -> int | None:
    """Run the plugin tool the parsed ``args`` chose; None when they chose a built-in one."""
    tool: Tool | None = getattr(args, "plugin_tool", None)
    if tool is None:
        return None
    return int(importlib.import_module(tool.module).run(args) or 0)

"""Where plugins come from: one resolver for the registry, the generator processes and the
evaluation harness.

Every plugin is an entry point of the group ``aigc.plugins``: third-party packages declare
theirs in their own metadata, and the built-in ones (``plugins/<name>``) are declared the same
way in this project's ``pyproject.toml`` (``[project.entry-points."aigc.plugins"]``).

Built-ins are read from the copy of the project that is running: when the ``plugins`` package
sits in a source tree (a checkout, or an editable install), its ``pyproject.toml`` is the list,
so a checkout whose installed metadata is stale (or absent: an editable install made before
the declaration, a tree on ``PYTHONPATH``) still finds exactly the plugins it declares. A
regular install (wheel) has no ``pyproject.toml`` beside the package and uses the installed
metadata of the ``aigc-bot`` distribution, written from that same table at install time.
Entry points of every other distribution are third-party plugins (source
``entry_point:<dist>``); built-ins have the source ``builtin``.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from engine.sdk import Plugin

ENTRY_POINT_GROUP = "aigc.plugins"
DISTRIBUTION = "aigc-bot"  # this project: its entry points are the built-in plugins
BUILTIN = "builtin"

__all__ = ["BUILTIN", "ENTRY_POINT_GROUP", "Candidate", "discover", "load_plugin", "resolve"]


@dataclass(frozen=True)
class Candidate:
    """A declared plugin, not yet imported: ``load()`` imports it (may raise anything)."""

    name: str
    source: str
    load: Callable[[], Any]


def resolve(obj: Any) -> Plugin:
    """A module with a ``plugin`` attribute, a Plugin, or a callable returning one."""
    if hasattr(obj, "plugin") and not isinstance(obj, Plugin):
        obj = obj.plugin
    if callable(obj) and not isinstance(obj, Plugin):
        obj = obj()
    return obj


def _normal(dist: str) -> str:
    return dist.lower().replace("_", "-").replace(".", "-")


def _source_tree_entry_points() -> list[importlib.metadata.EntryPoint] | None:
    """The built-ins declared in the running source tree's pyproject.toml; None when the
    ``plugins`` package is not in a source tree of this project."""
    spec = importlib.util.find_spec("plugins")
    if spec is None or not spec.submodule_search_locations:
        return None
    pyproject = Path(next(iter(spec.submodule_search_locations))).parent / "pyproject.toml"
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return None
    if _normal(str(project.get("name", ""))) != DISTRIBUTION:
        return None
    table = project.get("entry-points", {}).get(ENTRY_POINT_GROUP, {})
    return [importlib.metadata.EntryPoint(name, value, ENTRY_POINT_GROUP) for name, value in table.items()]


def discover() -> list[Candidate]:
    """Built-in plugins (sorted by name), then third-party ones, none imported yet."""
    installed = list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    ours = [ep for ep in installed if ep.dist is not None and _normal(ep.dist.name) == DISTRIBUTION]
    builtin = _source_tree_entry_points()
    if builtin is None:
        builtin = ours
    found = [Candidate(ep.name, BUILTIN, ep.load) for ep in sorted(builtin, key=lambda ep: ep.name)]
    for ep in installed:
        if ep.dist is None or _normal(ep.dist.name) != DISTRIBUTION:
            found.append(Candidate(ep.name, f"entry_point:{ep.dist.name if ep.dist else 'unknown'}", ep.load))
    return found


def load_plugin(name: str, source: str | None = None) -> Plugin:
    """Import and resolve the plugin ``name`` (from ``source``, e.g. ``builtin`` or
    ``entry_point:<dist>``; any source when None, built-ins first). ModuleNotFoundError when
    no such plugin is declared; whatever importing it raises otherwise."""
    for candidate in discover():
        if candidate.name == name and source in (None, candidate.source):
            return resolve(candidate.load())
    where = f" from {source!r}" if source else ""
    raise ModuleNotFoundError(f"no plugin {name!r}{where} is declared in the entry points {ENTRY_POINT_GROUP!r}")

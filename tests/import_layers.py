"""The import graph of our packages, read with ``ast`` (nothing is imported), and the rules it
must keep: no import cycles, and dependencies pointing one way (docs: ARCHITECTURE.md).

What counts as an import (``graph``):

* every ``import``/``from ... import`` statement of a module, at any depth: module level, inside
  functions (an import deferred into a function is still a dependency, and a cycle through one
  only waits for the first call to bite), under ``if``/``try``/``with`` and in class bodies;
* except those under ``if TYPE_CHECKING:`` (annotations only, never executed);
* ``from a.b import c`` is an edge to ``a.b.c`` when that is a module of ours, else to ``a.b``;
  relative imports are resolved against the importing module;
* importing ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``; those implicit edges to the
  parent packages are left out (a package's ``__init__`` re-exporting its own submodules would
  otherwise count as a cycle with each of them).

``module_level=True`` gives the graph of what runs at import time only (no function bodies).
Adding a contract is one line in CONTRACTS.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "plugins", "aigc", "aigc_common", "bot", "emulator")


@dataclass(frozen=True)
class Contract:
    """Modules under ``importers`` may not import modules under ``forbidden`` (prefixes of
    dotted names), except those under ``allowed``."""

    name: str
    importers: str
    forbidden: tuple[str, ...]
    allowed: tuple[str, ...] = ()


CONTRACTS = [
    Contract("plugins import only engine.sdk of the engine (and nothing of bot or aigc)", "plugins",
             ("engine", "bot", "aigc"), allowed=("engine.sdk",)),
    Contract("the engine imports nothing of bot or aigc", "engine", ("bot", "aigc")),
    Contract("aigc_common is a leaf: it imports nothing of ours", "aigc_common",
             ("engine", "plugins", "bot", "aigc")),
    Contract("bot imports only engine.protocol of the engine", "bot", ("engine",), allowed=("engine.protocol",)),
    Contract("the emulator is a leaf: it imports nothing of ours", "emulator",
             ("engine", "plugins", "bot", "aigc", "aigc_common")),
    Contract("plugins.animate reaches the emoji plugin only through its latent API", "plugins.animate",
             ("plugins.emoji",), allowed=("plugins.emoji.latents",)),
]
# Packages whose modules must form no import cycle (bot/ is checked by the bot's own list).
ACYCLIC = ("engine", "plugins", "aigc", "aigc_common", "emulator", "bot")


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Dotted name → file, for every module of ``packages`` under ``root``."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module, module_level: bool,
             type_checking: bool = False) -> list[tuple[ast.Import | ast.ImportFrom, int]]:
    out = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                out.append((child, child.lineno))
            elif isinstance(child, ast.If) and _is_type_checking(child.test) and not type_checking:
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]))
            elif module_level and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            else:
                visit(child)

    visit(tree)
    return out


def graph(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES, *,
          module_level: bool = False, type_checking: bool = False) -> dict[str, dict[str, int]]:
    """importer → {imported module of ours: line of the first such import}. ``module_level``:
    leave out imports inside functions; ``type_checking``: count those under TYPE_CHECKING
    (a type-only import of a module that imports you back is still a back-reference)."""
    mods = modules(root, packages)
    edges: dict[str, dict[str, int]] = {m: {} for m in mods}
    for name, path in mods.items():
        is_package = path.name == "__init__.py"
        for node, line in _imports(ast.parse(path.read_text(encoding="utf-8")), module_level, type_checking):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    parts = name.split(".")
                    parts = parts if is_package else parts[:-1]
                    parts = parts[:len(parts) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for target in targets:
                while target and target not in mods:  # `import a.b.c` of a non-module: its nearest module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges[name].setdefault(target, line)
    return edges


def cycles(edges: dict[str, dict[str, int]], within: tuple[str, ...] = ACYCLIC) -> list[list[str]]:
    """The strongly connected components of more than one module among ``within`` (Tarjan)."""
    nodes = [m for m in edges if any(_under(m, p) for p in within)]
    keep = set(nodes)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:  # recursion depth is bounded by the module count (hundreds)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in keep:
                continue
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in nodes:
        if v not in index:
            strong(v)
    return found


def violations(edges: dict[str, dict[str, int]], contracts: list[Contract] = CONTRACTS) -> list[str]:
    """One line per import that breaks a contract: ``importer:line → imported (contract)``."""
    out = []
    for contract in contracts:
        for importer, targets in sorted(edges.items()):
            if not _under(importer, contract.importers):
                continue
            for target, line in sorted(targets.items()):
                if any(_under(target, f) for f in contract.forbidden) and not any(
                        _under(target, a) for a in contract.allowed):
                    out.append(f"{importer}:{line} → {target} ({contract.name})")
    return out

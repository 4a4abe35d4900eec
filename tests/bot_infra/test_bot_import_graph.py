"""The bot's modules import one another without a circle, and of the engine only its wire
schemas (``engine.protocol``).

What counts: ``import``/``from ... import`` statements at module level, including those under
``if TYPE_CHECKING:`` (a type-only import of a module that imports you back is still a
back-reference), and those inside module-level ``if``/``try`` blocks. Imports inside functions
or methods (deferred on purpose) are not counted for cycles, but an ``engine.*`` import is
refused wherever it is. ``from bot.x import name`` counts as an import of ``bot.x.name`` when
that is a module, else of ``bot.x``; the implicit import of a package's ``__init__`` by its
submodules is not counted. ``bot/emulator/`` is left out (a leaf package being moved out).
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXCLUDED = ("emulator",)
ALLOWED_ENGINE = {"engine.protocol"}


def module_name(package_root: Path, path: Path) -> str:
    parts = list(path.relative_to(package_root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def bot_modules(package_root: Path) -> dict[str, Path]:
    out = {}
    for path in sorted(package_root.rglob("*.py")):
        rel = path.relative_to(package_root).parts
        if rel[0] in EXCLUDED:
            continue
        out[module_name(package_root, path)] = path
    return out


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _module_level(tree: ast.Module) -> list[ast.stmt]:
    """Statements run at import: the body, and the bodies of module-level if/try blocks."""
    out: list[ast.stmt] = []
    todo = list(tree.body)
    while todo:
        node = todo.pop(0)
        out.append(node)
        if isinstance(node, ast.If):
            todo += node.body + node.orelse
        elif isinstance(node, ast.Try):
            todo += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
    return out


def imports_of(path: Path, module: str, known: set[str]) -> tuple[set[str], set[str]]:
    """(bot modules imported at module level, every engine.* module imported anywhere)."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"

    def names(node: ast.stmt) -> list[str]:
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        if isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            return [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        return []

    top = {n for node in _module_level(tree) for n in names(node)}
    everywhere = {n for node in ast.walk(tree) if isinstance(node, ast.stmt) for n in names(node)}
    local = {n for n in top if n in known and n != module}
    engine = {n for n in everywhere if n == "engine" or n.startswith("engine.")}
    return local, engine


def import_graph(package_root: Path) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    modules = bot_modules(package_root)
    known = set(modules)
    graph, engine = {}, {}
    for name, path in modules.items():
        graph[name], engine[name] = imports_of(path, name, known)
    return graph, engine


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle (a list of modules, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_bot_has_no_import_cycle() -> None:
    graph, _ = import_graph(ROOT / "bot")
    assert "bot.app" in graph and graph["bot.app"], "the checker found no bot modules"
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_bot_imports_only_engine_protocol() -> None:
    _, engine = import_graph(ROOT / "bot")
    bad = {m: sorted(e - ALLOWED_ENGINE) for m, e in engine.items() if e - ALLOWED_ENGINE}
    assert not bad, bad


def test_nothing_in_bot_refers_back_to_the_bot_class() -> None:
    graph, _ = import_graph(ROOT / "bot")
    importers = sorted(m for m, deps in graph.items() if "bot.app" in deps)
    assert importers == ["bot.runner"], importers  # the runner builds it; nothing it drives knows it


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root / "bot"


def test_checker_finds_a_planted_cycle(tmp_path: Path) -> None:
    pkg = _write(tmp_path, {
        "bot/__init__.py": "",
        "bot/a.py": "from bot.b import thing\n",
        "bot/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot.sub.c import C\nthing = 1\n",
        "bot/sub/__init__.py": "",
        "bot/sub/c.py": "from .. import a\n\ndef later():\n    from bot import b  # local: not counted\n",
        "bot/emulator/x.py": "from bot import a\nimport engine.server\n",  # excluded
        "bot/ok.py": "import engine.protocol\n\ndef f():\n    import engine.scheduler\n",
    })
    graph, engine = import_graph(pkg)
    assert "bot.emulator.x" not in graph
    cycle = find_cycle(graph)
    assert cycle is not None and set(cycle) == {"bot.a", "bot.b", "bot.sub.c"}, cycle
    assert engine["bot.ok"] == {"engine.protocol", "engine.scheduler"}  # a local engine import still counts
    # without the TYPE_CHECKING edge there is no circle
    (pkg / "b.py").write_text("thing = 1\n")
    assert find_cycle(import_graph(pkg)[0]) is None

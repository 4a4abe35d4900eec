"""The emulator is a product of its own (it serves the tests, the playground and plugin authors):
it must import nothing from the bot, the engine, the CLI or the plugins. Checked statically over
every module, at any depth (module level, in functions, under ``if TYPE_CHECKING``), including
``importlib.import_module("...")`` / ``__import__("...")`` with a literal name and relative
imports that climb out of the package."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "emulator"
FORBIDDEN = {"bot", "engine", "aigc", "plugins"}


def _imported_names(tree: ast.AST, depth: int) -> list[tuple[int, str]]:
    """(line, top-level name) for every import in ``tree``; ``depth`` is how many packages deep
    the module sits under the emulator (0 for emulator/x.py), so ``from ..`` past it shows up."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.append((node.lineno, node.module or ""))
            elif node.level > depth + 1:  # climbs out of emulator/ into the repository root
                found.append((node.lineno, node.module or "." * node.level))
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Name) and node.func.id in {"__import__", "import_module"})
                   or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module"))):
            found.append((node.lineno, node.args[0].value))
    return found


def _violations(source: str, depth: int = 0) -> list[tuple[int, str]]:
    names = _imported_names(ast.parse(source), depth)
    return [(line, name) for line, name in names
            if name.split(".")[0] in FORBIDDEN or name.startswith(".")]


def test_the_check_sees_every_kind_of_import() -> None:
    source = (
        "import bot.config\n"
        "from engine.errors import EngineError\n"
        "def f():\n"
        "    from aigc import cli\n"
        "    import importlib; importlib.import_module('plugins.emoji')\n"
        "from .. import bot\n"
        "from .state import World\n"
        "import discord.http, botocore\n"
    )
    assert sorted(line for line, _ in _violations(source)) == [1, 2, 4, 5, 6]


def test_the_emulator_imports_nothing_from_the_rest_of_the_repository() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert PACKAGE / "__init__.py" in modules and len(modules) > 10
    bad = []
    for path in modules:
        depth = len(path.relative_to(PACKAGE).parts) - 1
        bad += [f"{path.relative_to(PACKAGE.parent)}:{line}: {name}"
                for line, name in _violations(path.read_text(encoding="utf-8"), depth)]
    assert not bad, "the emulator must stay a leaf package:\n" + "\n".join(bad)

"""bot/ holds no back-reference: no import circle among its modules even through type-only
imports (``if TYPE_CHECKING:``), and nothing it drives imports the bot class (only the runner,
which builds the services and hands them down). The bot → engine.protocol direction and
cycles counted the shared way are in tests/import_layers.py (tests/engine/test_import_layers.py)."""
from __future__ import annotations

import textwrap
from pathlib import Path

from tests.import_layers import cycles, graph


def test_bot_has_no_circle_even_through_type_only_imports() -> None:
    assert cycles(graph(packages=("bot",), module_level=True, type_checking=True), within=("bot",)) == []


def test_nothing_in_bot_refers_back_to_the_bot_class() -> None:
    edges = graph(packages=("bot",), type_checking=True)
    assert sorted(m for m, deps in edges.items() if "bot.app" in deps) == ["bot.runner"]


def test_a_type_only_back_reference_is_a_circle(tmp_path: Path) -> None:
    for rel, text in {
        "bot/__init__.py": "",
        "bot/a.py": "from bot.b import thing\n",
        "bot/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot.sub.c import C\nthing = 1\n",
        "bot/sub/__init__.py": "",
        "bot/sub/c.py": "from .. import a\n\ndef later():\n    from bot import b  # local: not counted here\n",
    }.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(textwrap.dedent(text))
    strict = graph(tmp_path, ("bot",), module_level=True, type_checking=True)
    assert [set(c) for c in cycles(strict, within=("bot",))] == [{"bot.a", "bot.b", "bot.sub.c"}]
    assert cycles(graph(tmp_path, ("bot",), module_level=True), within=("bot",)) == []

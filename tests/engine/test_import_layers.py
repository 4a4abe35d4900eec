"""The house has no circles: no import cycle inside engine/, plugins/, aigc/ and aigc_common/,
and dependencies point one way (tests/import_layers.py has the contracts and what counts)."""
from __future__ import annotations

import textwrap
from pathlib import Path

from tests.import_layers import CONTRACTS, Contract, cycles, graph, violations


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_dependencies_point_one_way():
    assert violations(graph()) == []


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_the_checker_finds_a_planted_cycle(tmp_path):
    root = _tree(tmp_path, {
        "engine/__init__.py": "from engine import a  # a package re-exporting its module: no cycle\n",
        "engine/a.py": "from . import b\n",
        "engine/b.py": "import engine.c as c\n",
        "engine/c.py": "def later():\n    from engine.a import thing  # deferred, still a cycle\n",
        "engine/d.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from engine import e\n"
                        "else:\n    import os\n"),
        "engine/e.py": "from engine.d import x  # d → e only for type checking: no cycle\n",
        "plugins/__init__.py": "",
        "plugins/p.py": "from engine import sdk\n",
    })
    edges = graph(root, ("engine", "plugins"))
    assert edges["engine.a"] == {"engine.b": 1} and edges["engine.d"] == {}
    assert cycles(edges) == [["engine.a", "engine.b", "engine.c"]]
    assert cycles(graph(root, ("engine", "plugins"), module_level=True)) == []  # only through a function


def test_the_checker_finds_imports_against_a_contract(tmp_path):
    root = _tree(tmp_path, {
        "engine/__init__.py": "", "engine/sdk.py": "", "engine/registry.py": "import bot.app\n",
        "plugins/__init__.py": "",
        "plugins/good.py": "from engine import sdk\nfrom engine.sdk import Plugin\n",
        "plugins/bad.py": "import os\n\ndef f():\n    from engine.registry import Registry\n",
        "bot/__init__.py": "", "bot/app.py": "",
        "aigc_common/__init__.py": "from engine import sdk\n",
    })
    found = violations(graph(root, ("engine", "plugins", "bot", "aigc_common")))
    assert found == [
        f"plugins.bad:4 → engine.registry ({CONTRACTS[0].name})",
        f"engine.registry:1 → bot.app ({CONTRACTS[1].name})",
        f"aigc_common:1 → engine.sdk ({CONTRACTS[2].name})",
    ]
    one_more = Contract("bot is not imported by plugins", "plugins", ("bot",))
    assert violations({"plugins.x": {"bot.app": 3}}, [one_more]) == ["plugins.x:3 → bot.app (bot is not imported by plugins)"]

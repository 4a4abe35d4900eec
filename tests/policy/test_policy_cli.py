import json
import subprocess
import sys
from pathlib import Path

from aigc.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_moderate_json_refused(capsys):
    assert main(["moderate", "p.o.r.n", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "allowed": False, "rule": "global.sexual", "category": "sexual", "normalized": "porn"}


def test_moderate_json_allowed_and_human_line(capsys):
    assert main(["moderate", "a cat", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["allowed"] is True
    assert main(["moderate", "s e x"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("refused by rule global.sexual [sexual] on the normalized text")


def test_moderate_with_guild_rules_and_automod_export(tmp_path, capsys):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([{"id": "no-dragons", "category": "custom", "keywords": ["dragon*"]}]))
    assert main(["moderate", "Dr4g0ns", "--guild-rules", str(rules), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rule"] == "no-dragons"
    automod = tmp_path / "automod.json"
    automod.write_text(json.dumps([{"id": "5", "name": "x", "trigger_type": 1,
                                    "trigger_metadata": {"keyword_filter": ["wyvern"]}}]))
    assert main(["moderate", "a wyvern", "--guild-rules", str(automod), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rule"] == "automod.5"


def test_moderate_bad_rules_file_exits_2_naming_rule_and_field(tmp_path, capsys):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([{"id": "broken", "keywords": ["a*b"]}]))
    assert main(["moderate", "x", "--guild-rules", str(rules)]) == 2
    err = capsys.readouterr().err
    assert "rule 'broken'" in err and "keywords[0]" in err


def test_moderate_runs_as_a_process():
    out = subprocess.run([sys.executable, "-m", "aigc.cli", "moderate", "ⓟⓞⓡⓝ", "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout)["allowed"] is False

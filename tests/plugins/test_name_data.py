"""The names data set builder (`aigc data names DIR`) on Faker's real lists."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from plugins.name import data


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from aigc.cli import main

    out = tmp_path_factory.mktemp("names")
    assert main(["data", "names", str(out), "--person-pairs", "3000"]) == 0
    return out


def test_every_style_has_names_in_every_split(built):
    manifest = json.loads((built / "manifest.json").read_text())
    assert manifest["styles"] == list(data.STYLES)
    for style in data.STYLES:
        counts = manifest["counts"][style]
        assert counts["train"] > 500 and counts["valid"] > 10 and counts["test"] > 10, (style, counts)
        assert "MIT" in manifest["sources"][style]


def test_names_are_deduplicated_across_styles_and_look_like_their_style(built):
    examples = data.load(built)
    folded = Counter(e.name.casefold() for e in examples)
    assert max(folded.values()) == 1
    zh = [e.name for e in examples if e.style == "person-zh"]
    assert all(2 <= len(n) <= 4 and all("\u4e00" <= c <= "\u9fff" for c in n) for n in zh)
    en = [e.name for e in examples if e.style == "person-en"]
    assert all(len(n.split(" ")) == 2 for n in en)
    assert all(len(e.name) <= data.MAX_CHARS for e in examples)


def test_split_depends_on_the_name_alone(built):
    examples = data.load(built)
    assert all(e.split == data.split_of(e.name) for e in examples)
    again = data.build(person_pairs=3000)
    assert [(e.style, e.name, e.split) for e in again] == [(e.style, e.name, e.split) for e in examples]
    # a different pairing seed moves no shared name to another split (no test name leaks into train)
    other = {e.name: e.split for e in data.build(seed=1, person_pairs=3000)}
    assert all(other[e.name] == e.split for e in examples if e.name in other)


def test_the_data_set_is_the_same_in_every_process():
    """Faker builds some lists from sets (hash-randomised order): the builder sorts them."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import hashlib; from plugins.name.data import build; "
            "print(hashlib.sha256(repr(build(person_pairs=500)).encode()).hexdigest())")
    root = Path(__file__).resolve().parents[2]
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True,
                           env={"PYTHONHASHSEED": seed, "PYTHONPATH": str(root)}).stdout for seed in ("1", "2")}
    assert len(runs) == 1, runs


def test_a_bad_line_is_named(tmp_path):
    (tmp_path / "names.jsonl").write_text('{"style": "person-en", "name": "Ada Lovelace", "split": "train"}\n'
                                          '{"style": "elvish", "name": "Elrond", "split": "train"}\n')
    with pytest.raises(ValueError, match=r"names.jsonl:2: style must be one of"):
        data.load(tmp_path)
    (tmp_path / "names.jsonl").write_text("not json\n")
    with pytest.raises(ValueError, match=r"names.jsonl:1: not a names record"):
        data.load(tmp_path)


def test_bad_arguments_exit_2(tmp_path):
    from aigc.cli import main

    assert main(["data", "names", str(tmp_path), "--person-pairs", "0"]) == 2

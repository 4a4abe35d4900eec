"""Spelled-out words next to one-letter words ("a n u d e picture" joins to "anude"): keywords
match inside joined runs of single letters. Real-world forms, hand-written (not generated):
tests/policy/data/evasion_real.txt must all be refused, benign_spaced.txt all allowed."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.policy.checker import Policy
from engine.policy.normalize import normalize, spaced_runs

DATA = Path(__file__).parent / "data"


def lines(name: str) -> list[str]:
    return [ln for ln in (DATA / name).read_text(encoding="utf-8").splitlines() if ln.strip()]


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy()


@pytest.mark.parametrize("text", lines("evasion_real.txt"))
def test_real_world_spaced_forms_are_refused(policy, text):
    verdict = policy.check(text)
    assert not verdict.allowed, (text, verdict.normalized, spaced_runs(text))


@pytest.mark.parametrize("text", lines("benign_spaced.txt"))
def test_benign_spelled_out_texts_pass(policy, text):
    verdict = policy.check(text)
    assert verdict.allowed, (text, verdict.rule, spaced_runs(text))


def test_the_issue_example_is_matched_on_the_joined_form(policy):
    verdict = policy.check("a n u d e picture")
    assert (verdict.allowed, verdict.rule, verdict.matched_form) == (False, "global.sexual", "joined")
    assert spaced_runs("a n u d e picture") == "anude" and normalize("a n u d e picture") == "anude picture"
    assert spaced_runs("a nude picture") == ""


def test_guild_keywords_match_inside_runs_and_allow_lists_still_apply(policy):
    rules = {"rules": [{"id": "spoilers", "keywords": ["twist"]}]}
    assert policy.check("i t w i s t ending", rules).rule == "spoilers"
    allowed = {"rules": [{"id": "spoilers", "keywords": ["twist"], "allow": ["itwist"]}]}
    assert policy.check("i t w i s t ending", allowed).allowed


def test_a_two_letter_keyword_must_be_a_whole_run(policy):
    # "xxx" normalises to "xx" (runs are capped at two): inside a run it would refuse every
    # spelled-out "x x o"; as a whole run it still refuses "x x x"
    assert policy.check("x x o").allowed and policy.check("love you x x o").allowed
    for text in ("x x x", "x.x.x", "x x x x", "xxx"):
        assert not policy.check(text).allowed, text
    rules = {"rules": [{"id": "short", "keywords": ["ooo"]}]}  # a guild's short keyword alike
    assert policy.check("o o o", rules).rule == "short"
    assert policy.check("b o o k", rules).allowed  # "oo" inside a longer run: not the keyword

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

"""Pure helpers of bot.moderation: option parsing (errors name the option), rule building,
AutoMod exemptions, modal values, audit lines (never the prompt)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from bot.moderation.audit_mirror import describe
from bot.moderation.commands import InputError, parse_duration, parse_limit, parse_since
from bot.moderation.review import modal_values
from bot.moderation.rules import RuleDefinitionError, applicable, build_rule, engine_error_field, split_list
from bot.store import AuditRecord

NOW = datetime(2026, 11, 29, 12, tzinfo=timezone.utc)


@pytest.mark.parametrize("text,seconds", [("30m", 1800), ("2h", 7200), ("1d12h", 129600), ("1w", 604800),
                                          (" 90 S ", 90)])
def test_durations(text, seconds):
    assert parse_duration(text, "duration") == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "soon", "2", "5y", "2h junk", "0m", "400d"])
def test_bad_durations_name_the_option(text):
    with pytest.raises(InputError, match=r"^duration: "):
        parse_duration(text, "duration")


def test_since_is_a_span_or_a_date():
    assert parse_since("24h", NOW) == NOW - timedelta(hours=24)
    assert parse_since("2026-11-01", NOW) == datetime(2026, 11, 1, tzinfo=timezone.utc)
    with pytest.raises(InputError, match=r"^since: "):
        parse_since("last week", NOW)


def test_limits():
    assert parse_limit("daily_quota", "none") is None and parse_limit("daily_quota", "5") == 5
    assert parse_limit("cooldown_s", "2.5") == 2.5
    with pytest.raises(InputError, match=r"^max_concurrent_per_user: expected a number; got 'x'"):
        parse_limit("max_concurrent_per_user", "x")


def test_build_rule_shapes_and_errors():
    rule = build_rule("spoilers", keywords="ending*, plot twist,", regex=None, allow="happy ending",
                      name=" No spoilers ", category="spoilers", existing=[])
    assert rule == {"id": "spoilers", "keywords": ["ending*", "plot twist"], "regex": [],
                    "allow": ["happy ending"], "name": "No spoilers", "category": "spoilers"}
    for rid, kw, existing, msg in (("a b", "x", [], "id: use"), ("automod.1", "x", [], "id: must not start"),
                                   ("dup", "x", [{"id": "dup"}], "id: a rule 'dup' exists"),
                                   ("ok", " , ", [], "keywords: give keywords")):
        with pytest.raises(RuleDefinitionError, match=msg):
            build_rule(rid, keywords=kw, regex=None, allow=None, name=None, category=None, existing=existing)
    assert split_list(None) == []


def test_engine_errors_keep_the_field():
    msg = "guild rules.rules[0] (rule 'x'): regex[0]: pattern matches the empty string, so it would match every text"
    assert engine_error_field(msg) == "regex[0]: pattern matches the empty string, so it would match every text"


def test_automod_exemptions():
    rules = [{"id": "1", "exempt_roles": ["10"], "exempt_channels": []},
             {"id": "2", "exempt_roles": [], "exempt_channels": ["77"]}, {"id": "3"}]
    member = SimpleNamespace(user=SimpleNamespace(roles=[SimpleNamespace(id=10)]), channel_id=77)
    assert [r["id"] for r in applicable(rules, member)] == ["3"]
    other = SimpleNamespace(user=SimpleNamespace(roles=[]), channel_id=5)
    assert [r["id"] for r in applicable(rules, other)] == ["1", "2", "3"]


def test_modal_values_read_rows_and_labels():
    data = {"components": [{"type": 1, "components": [{"type": 4, "custom_id": "reason", "value": "spam"}]},
                           {"type": 18, "component": {"type": 4, "custom_id": "note", "value": "x"}}]}
    assert modal_values(data) == {"reason": "spam", "note": "x"}


def test_audit_lines_never_show_the_prompt():
    r = AuditRecord(id=1, at=NOW, action="job.done", actor_id="5", guild_id="1", channel_id="2", subject_id=None,
                    command="emoji", job_id="j1", prompt="secret words", prompt_hash="ab" * 32, verdict="allowed",
                    model_hash="cd" * 32, output_hash="ef" * 32, reason=None, detail={})
    line = describe(r)
    assert "secret" not in line and "<@5>" in line and "`j1`" in line and "abababababab" in line

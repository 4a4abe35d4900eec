"""Content policy: checks prompts (and text outputs) before any compute is spent.

Public API::

    from engine import policy
    verdict = policy.check("a cat in a hat", guild_rules=[{"id": "no-spoilers", "keywords": ["ending*"]}])
    verdict.allowed, verdict.rule, verdict.category, verdict.normalized, verdict.matched_form

    p = policy.Policy()                      # compiled global rules + cache of guild rule sets
    p.check(text, guild_rules, automod_rules)
    policy.rules_from_automod(discord_json)  # GET /guilds/{id}/auto-moderation/rules → rules
    policy.NearMissTracker().record_refusal("discord:123")  # escalation decision

Modules: ``normalize`` (matching form), ``rules`` (rule data, validation, compilation),
``checker`` (Verdict, Policy), ``near_miss`` (escalation), ``output_checks`` (post-generation
hooks), ``cli`` (`aigc moderate`). The shipped global list is ``global_rules.toml``.
"""
from engine.policy.checker import MAX_TEXT_CHARS, Policy, Verdict, check, default_policy
from engine.policy.near_miss import Escalation, NearMissTracker
from engine.policy.normalize import normalize
from engine.policy.output_checks import (
    NudeNetImageCheck, OutputCheck, OutputChecks, OutputVerdict, TextRulesCheck,
    available_image_checks,
)
from engine.policy.rules import (
    RuleError, RuleSet, RuleSetSpec, RuleSpec, load_global_rules, load_rules_file, parse_rules,
    rules_from_automod,
)

__all__ = [
    "MAX_TEXT_CHARS", "Policy", "Verdict", "check", "default_policy", "Escalation",
    "NearMissTracker", "normalize", "NudeNetImageCheck", "OutputCheck", "OutputChecks",
    "OutputVerdict", "TextRulesCheck", "available_image_checks", "RuleError", "RuleSet",
    "RuleSetSpec", "RuleSpec", "load_global_rules", "load_rules_file", "parse_rules",
    "rules_from_automod",
]

"""The policy check itself: text in, :class:`Verdict` out, before any compute is spent."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from engine.policy.normalize import normalize
from engine.policy.rules import (
    Form, RuleSet, RuleSetSpec, Source, fingerprint, load_global_rules, parse_rules,
)

__all__ = ["Verdict", "Policy", "check", "default_policy", "MAX_TEXT_CHARS"]

# Longer texts are refused outright: no prompt needs more, and it bounds the matching work.
MAX_TEXT_CHARS = 20_000
TOO_LONG_RULE = "limit.text_length"


class Verdict(BaseModel):
    """What the policy says about one text. ``rule`` and ``rule_name`` identify the rule for
    users and moderators; the matched term itself is never part of a verdict."""

    model_config = ConfigDict(frozen=True)

    allowed: bool
    rule: str | None = None  # rule id, e.g. "global.sexual" or "automod.123"
    rule_name: str | None = None
    category: str | None = None
    source: Source | Literal["limit"] | None = None
    normalized: str
    matched_form: Form | None = None
    field: str | None = None  # set by check_options: the option whose text was refused

    def public(self) -> dict[str, Any]:
        """The wire shape of `aigc moderate --json` and POST /v1/moderate."""
        return {"allowed": self.allowed, "rule": self.rule, "category": self.category,
                "normalized": self.normalized}

    def user_message(self) -> str:
        if self.allowed:
            return "Allowed."
        return f"Refused by content rule {self.rule_name or self.rule} ({self.category})."


class Policy:
    """Global rules plus per-guild rule sets, compiled once and cached by content.

    Thread-safe: rule sets are immutable once compiled and the cache is guarded by a lock.
    """

    def __init__(self, global_rules: Any = None, *, cache_size: int = 256,
                 max_text_chars: int = MAX_TEXT_CHARS, match_normalized: bool = True) -> None:
        spec = load_global_rules() if global_rules is None else parse_rules(global_rules, where="global rules")
        self.global_rules = RuleSet(spec, "global")
        self.max_text_chars = max_text_chars
        self.match_normalized = match_normalized  # False: raw text only (the benchmark baseline)
        self._cache: OrderedDict[tuple[str, str], RuleSet] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def rule_set(self, rules: Any, source: Source = "guild") -> RuleSet:
        """Compile (or fetch from the cache) a rule set given as data; see ``parse_rules``."""
        if isinstance(rules, RuleSet):
            return rules
        spec = rules if isinstance(rules, RuleSetSpec) else parse_rules(rules, where=f"{source} rules")
        key = (source, fingerprint(spec))
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        compiled = RuleSet(spec, source)
        with self._lock:
            self._cache[key] = compiled
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return compiled

    def check(self, text: str, guild_rules: Any = None, automod_rules: Any = None) -> Verdict:
        """Check ``text`` against the global rules, then the guild's own rules, then the
        guild's imported AutoMod rules. Raw and normalised forms are both matched."""
        if len(text) > self.max_text_chars:
            return Verdict(allowed=False, rule=TOO_LONG_RULE, rule_name="Text too long",
                           category="limit", source="limit",
                           normalized=normalize(text[: self.max_text_chars]))
        normalized = normalize(text)
        forms: dict[Form, str] = {"raw": text.casefold()}
        if self.match_normalized:
            forms["normalized"] = normalized
        sets = [self.global_rules]
        if guild_rules is not None:
            sets.append(self.rule_set(guild_rules, "guild"))
        if automod_rules is not None:
            sets.append(self.rule_set(automod_rules, "automod"))
        for rule_set in sets:
            found = rule_set.find(forms)
            if found is not None:
                rule, match = found
                return Verdict(allowed=False, rule=rule.id, rule_name=rule.name,
                               category=rule.category, source=rule.source,
                               normalized=normalized, matched_form=match.form)
        return Verdict(allowed=True, normalized=normalized)


    def check_options(self, options: dict[str, Any], guild_rules: Any = None,
                      automod_rules: Any = None) -> Verdict:
        """Check every text in a job's options (strings, and strings inside lists), in order;
        the first refusal names its option in ``field`` (``tags[2]`` for list items)."""
        last = Verdict(allowed=True, normalized="")
        for field_name, text in _texts(options):
            verdict = self.check(text, guild_rules, automod_rules)
            if not verdict.allowed:
                return verdict.model_copy(update={"field": field_name})
            last = verdict
        return last


def _texts(options: dict[str, Any]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for name, value in options.items():
        if isinstance(value, str):
            found.append((name, value))
        elif isinstance(value, (list, tuple)):
            found.extend((f"{name}[{i}]", v) for i, v in enumerate(value) if isinstance(v, str))
    return found


_default: Policy | None = None
_default_lock = threading.Lock()


def default_policy() -> Policy:
    """The process-wide policy with the shipped global rules (compiled on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Policy()
        return _default


def check(text: str, guild_rules: Any = None) -> Verdict:
    """Check a prompt (or a text output) with the shipped global rules plus ``guild_rules``."""
    return default_policy().check(text, guild_rules)

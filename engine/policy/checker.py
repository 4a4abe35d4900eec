"""The policy check itself: text in, :class:`Verdict` out, before any compute is spent."""
from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from engine.policy.normalize import normalize, spaced_runs
from engine.policy.rules import (
    Form, RuleError, RuleSet, RuleSetSpec, Source, fingerprint, load_global_rules, parse_rules,
)
from engine.protocol import automod_terms, rule_set_terms

__all__ = ["Verdict", "Policy", "check", "default_policy", "compile_rule_set", "content_key",
           "MAX_TEXT_CHARS"]

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


# When a check may run on the caller's thread (an event loop): short texts and rule sets that
# are compiled already and small. Anything bigger is for a worker thread (Policy.is_quick).
QUICK_TEXT_CHARS = 1_000
QUICK_RULE_TERMS = 200


def content_key(rules: Any, source: Source) -> str:
    """A hash of a rule set's content as given (before validation), so a cached set costs
    neither parsing nor compiling: canonical JSON (sorted keys), prefixed with its source."""
    data = rules.model_dump(mode="json") if isinstance(rules, RuleSetSpec) else rules
    try:
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):  # not JSON data (an in-process caller): hash the parsed form
        canonical = "spec:" + fingerprint(parse_rules(data, where=f"{source} rules"))
    return hashlib.sha256(f"{source}\0{canonical}".encode()).hexdigest()


def compile_rule_set(rules: Any, source: Source) -> RuleSet:
    """Validate and compile a rule set given as data (see ``parse_rules``); the expensive step
    that :meth:`Policy.rule_set` caches. Raises :class:`RuleError`."""
    spec = rules if isinstance(rules, RuleSetSpec) else parse_rules(rules, where=f"{source} rules")
    return RuleSet(spec, source)


class Policy:
    """Global rules plus per-guild rule sets, compiled once and cached by content.

    The cache is an LRU bounded twice: at most ``cache_size`` sets and at most ``cache_terms``
    keywords/regexes/allow entries in all, so callers sending many distinct (or large) rule
    sets cannot grow memory without bound. Invalid sets are cached too (their error), so a
    bad set sent again is refused without parsing it again.

    Thread-safe: rule sets are immutable once compiled and the cache is guarded by a lock;
    threads asking for the same uncached set at once compile it once.
    """

    def __init__(self, global_rules: Any = None, *, cache_size: int = 32,
                 cache_terms: int = 100_000, max_text_chars: int = MAX_TEXT_CHARS,
                 match_normalized: bool = True) -> None:
        spec = load_global_rules() if global_rules is None else parse_rules(global_rules, where="global rules")
        self.global_rules = RuleSet(spec, "global")
        self.max_text_chars = max_text_chars
        self.match_normalized = match_normalized  # False: raw text only (the benchmark baseline)
        self._cache: OrderedDict[str, tuple[RuleSet | RuleError, int]] = OrderedDict()
        self._cache_size = cache_size
        self._cache_terms = cache_terms
        self._terms = 0  # the cache's total weight
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}

    @property
    def cache_len(self) -> int:
        with self._lock:
            return len(self._cache)

    def cached(self, rules: Any, source: Source = "guild") -> RuleSet | None:
        """The compiled set if it is in the cache already (None otherwise); never compiles."""
        if isinstance(rules, RuleSet):
            return rules
        hit = self._lookup(content_key(rules, source))
        return hit if isinstance(hit, RuleSet) else None

    def is_quick(self, text: str, guild_rules: Any = None, automod_rules: Any = None) -> bool:
        """True when checking ``text`` is cheap enough for an event loop: a short text, and
        each rule set (if any) small and compiled already."""
        if len(text) > QUICK_TEXT_CHARS:
            return False
        for rules, source in ((guild_rules, "guild"), (automod_rules, "automod")):
            if rules is None:
                continue
            compiled = self.cached(rules, source) if _small(rules, source) else None
            if compiled is None or compiled.spec.terms > QUICK_RULE_TERMS:
                return False
        return True

    def rule_set(self, rules: Any, source: Source = "guild") -> RuleSet:
        """Compile (or fetch from the cache) a rule set given as data; see ``parse_rules``."""
        if isinstance(rules, RuleSet):
            return rules
        key = content_key(rules, source)
        hit = self._lookup(key)
        if hit is None:
            with self._lock:
                building = self._building.setdefault(key, threading.Lock())
            with building:  # one compile per content, however many threads ask at once
                hit = self._lookup(key)
                if hit is None:
                    try:
                        hit = compile_rule_set(rules, source)
                    except RuleError as exc:
                        hit = exc
                    self._store(key, hit)
            with self._lock:
                self._building.pop(key, None)
        if isinstance(hit, RuleError):
            raise RuleError(str(hit))
        return hit

    def _lookup(self, key: str) -> RuleSet | RuleError | None:
        with self._lock:
            entry = self._cache.get(key)
            if entry is None:
                return None
            self._cache.move_to_end(key)
            return entry[0]

    def _store(self, key: str, value: RuleSet | RuleError) -> None:
        weight = 1 + (value.spec.terms if isinstance(value, RuleSet) else 0)
        with self._lock:
            if key in self._cache:
                return
            self._cache[key] = (value, weight)
            self._terms += weight
            while len(self._cache) > 1 and (len(self._cache) > self._cache_size
                                            or self._terms > self._cache_terms):
                _, (_, old) = self._cache.popitem(last=False)
                self._terms -= old
            if len(self._cache) > self._cache_size:  # cache_size 0: keep nothing
                self._cache.clear()
                self._terms = 0

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
            joined = spaced_runs(text)
            if joined:
                forms["joined"] = joined
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


def _small(rules: Any, source: Source) -> bool:
    """Whether a rule set given as data is small enough to hash on an event loop."""
    if isinstance(rules, RuleSetSpec):
        return rules.terms <= QUICK_RULE_TERMS
    try:
        terms = automod_terms(rules) if source == "automod" else rule_set_terms(rules)
    except ValueError:  # over a cap: certainly not small
        return False
    return terms <= QUICK_RULE_TERMS


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

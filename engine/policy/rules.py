"""Policy rules shaped like Discord AutoMod keyword rules, validated and compiled (over 400
lines: validation, the caps and compilation of one rule format stay together).

A rule has an id, a name, a category, keywords, regexes and an allow list:

- Keywords (≤ 60 characters, ≤ 1000 per rule) match whole words by default; ``*`` at the
  start and/or end widens them like AutoMod: ``cat*`` (words starting with cat), ``*cat``
  (words ending with cat), ``*cat*`` (anywhere). ``*`` elsewhere is an error. A space in a
  keyword matches any run of separators in the normalised form ("kill yourself" also catches
  "killyourself" and "kill.yourself"). Keywords match the raw text (case-folded, literally)
  and the normalised text (see :mod:`engine.policy.normalize`), where each letter may repeat
  and ``i``/``l`` count as one letter (``1`` and ``|`` stand for either).
- Regexes (≤ 260 characters, ≤ 10 per rule, like AutoMod) are compiled with RE2
  (``google-re2``): matching time is linear in the text, whatever the pattern, so
  catastrophic backtracking cannot happen. We evaluated three options: RE2 gives a guarantee
  and speaks the same dialect as AutoMod's Rust ``regex`` crate (no backreferences or
  look-around), so imported AutoMod patterns behave the same; the ``regex`` package's
  ``timeout=`` only bounds the damage after the fact and turns a slow pattern into a flaky
  verdict; static "nested quantifier" checks on stdlib ``re`` miss overlapping alternations
  such as ``(a|a)*b``. Regexes are case-insensitive, match raw and normalised text, and a
  pattern that matches the empty string is rejected (it would block every text).
- The allow list (same wildcard syntax) exempts a match when the word(s) it falls in are
  allowed, as AutoMod's ``allow_list`` does.

Bad definitions raise :class:`RuleError` naming the rule and the field.
"""
from __future__ import annotations

import hashlib
import json
import re
import tomllib
from itertools import chain, groupby
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal

import re2
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.policy.normalize import normalize
from engine.protocol import (  # the caps are part of the wire contract; one source for both
    MAX_GUILD_RULES, MAX_KEYWORD_CHARS, MAX_REGEX_CHARS, MAX_RULE_ALLOW, MAX_RULE_KEYWORDS,
    MAX_RULE_REGEXES, MAX_RULE_SET_TERMS,
)

__all__ = [
    "RuleError", "RuleSpec", "RuleSetSpec", "CompiledRule", "RuleSet", "Match", "Form",
    "MAX_KEYWORD_CHARS", "MAX_REGEX_CHARS", "load_global_rules", "parse_rules", "load_rules_file",
    "rules_from_automod", "GLOBAL_RULES_PATH",
]

MAX_KEYWORDS = MAX_RULE_KEYWORDS
MAX_REGEXES = MAX_RULE_REGEXES
MAX_ALLOW = MAX_RULE_ALLOW
GLOBAL_RULES_PATH = Path(__file__).with_name("global_rules.toml")

# raw: the casefolded text; normalized: normalize(text); joined: normalize.spaced_runs(text),
# where keywords match anywhere inside a run (no word boundaries).
Form = Literal["raw", "normalized", "joined"]
_FORMS: tuple[Form, ...] = ("raw", "normalized", "joined")
Source = Literal["global", "guild", "automod"]


class RuleError(ValueError):
    """A rule definition is invalid; the message names the rule and the field."""


def _check_keyword(value: str, field: str) -> str:
    kw = value.strip()
    core = kw.strip("*")
    if not core.strip():
        raise ValueError(f"{field}: keyword {value!r} is empty (only spaces or '*')")
    if len(kw) > MAX_KEYWORD_CHARS:
        raise ValueError(f"{field}: keyword is {len(kw)} characters, at most {MAX_KEYWORD_CHARS}")
    if "*" in core:
        raise ValueError(f"{field}: '*' is allowed only at the start or end of a keyword")
    if len(kw) - len(kw.lstrip("*")) > 1 or len(kw) - len(kw.rstrip("*")) > 1:
        raise ValueError(f"{field}: use a single '*' as a wildcard")
    if not normalize(core):  # e.g. only zero-width characters: it would match everywhere
        raise ValueError(f"{field}: keyword {value!r} has nothing visible to match")
    return kw


class RuleSpec(BaseModel):
    """One rule as data (what a guild sends, or an entry of global_rules.toml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")
    name: str = Field(default="", max_length=100)
    category: str = Field(default="custom", min_length=1, max_length=32)
    keywords: list[str] = Field(default_factory=list, max_length=MAX_KEYWORDS)
    regex: list[str] = Field(default_factory=list, max_length=MAX_REGEXES)
    allow: list[str] = Field(default_factory=list, max_length=MAX_ALLOW)
    enabled: bool = True
    description: str = Field(default="", max_length=500)

    @field_validator("keywords", "allow")
    @classmethod
    def _keywords(cls, value: list[str], info: Any) -> list[str]:
        return [_check_keyword(v, f"{info.field_name}[{i}]") for i, v in enumerate(value)]

    @field_validator("regex")
    @classmethod
    def _regexes(cls, value: list[str]) -> list[str]:
        for i, pattern in enumerate(value):
            _compile_regex(pattern, f"regex[{i}]")
        return value

    @model_validator(mode="after")
    def _something_to_match(self) -> "RuleSpec":
        if not self.keywords and not self.regex:
            raise ValueError("a rule needs at least one keyword or regex")
        return self

    @property
    def display_name(self) -> str:
        return self.name or self.id


class RuleSetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[RuleSpec] = Field(default_factory=list, max_length=MAX_GUILD_RULES)
    allow: list[str] = Field(default_factory=list, max_length=MAX_ALLOW)

    @field_validator("allow")
    @classmethod
    def _allow(cls, value: list[str]) -> list[str]:
        return [_check_keyword(v, f"allow[{i}]") for i, v in enumerate(value)]

    @model_validator(mode="after")
    def _unique_ids(self) -> "RuleSetSpec":
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is used twice")
            seen.add(rule.id)
        if self.terms > MAX_RULE_SET_TERMS:
            raise ValueError(f"at most {MAX_RULE_SET_TERMS} keywords, regexes and allow-list "
                             f"entries in all, got {self.terms}")
        return self

    @property
    def terms(self) -> int:
        """Keywords, regexes and allow-list entries in all: the size of the compiled set."""
        return len(self.allow) + sum(len(r.keywords) + len(r.regex) + len(r.allow) for r in self.rules)


def _re2_options() -> "re2.Options":
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # we report the error ourselves, with the rule and field
    options.max_mem = 8 << 20  # a bound on the compiled program, so huge patterns fail early
    return options


def _compile_regex(pattern: str, field: str) -> Any:
    if not pattern:
        raise ValueError(f"{field}: pattern is empty")
    if len(pattern) > MAX_REGEX_CHARS:
        raise ValueError(f"{field}: pattern is {len(pattern)} characters, at most {MAX_REGEX_CHARS}")
    try:
        compiled = re2.compile(pattern, _re2_options())
    except re2.error as exc:
        detail = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"{field}: not a valid RE2 pattern ({detail}); backreferences and "
                         "look-around are not supported") from None
    if compiled.search("") is not None:
        raise ValueError(f"{field}: pattern matches the empty string, so it would match every text")
    return compiled


def _explain(exc: ValidationError, where: str) -> RuleError:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc and not msg.startswith(loc) else msg)
    return RuleError(f"{where}: " + "; ".join(parts))


# ---- compilation ----------------------------------------------------------------------------

_ALNUM = r"[^\W_]"
_LEFT = rf"(?<!{_ALNUM})"
_RIGHT = rf"(?!{_ALNUM})"


def _letters(word: str) -> str:
    """Each letter may repeat; ``i``/``l`` are one class. Consecutive equal classes merge
    into one counted repeat (``kill`` → ``k+[il]{2,}``), which keeps matching linear."""
    out = []
    for key, group in groupby(word, key=lambda c: "il" if c in "il" else c):
        n = len(list(group))
        atom = "[il]" if key == "il" else re.escape(key)
        # The normaliser caps runs at two equal characters, so "k!|1" arrives as "kii".
        out.append(atom + ("+" if n == 1 else "{2,}"))
    return "".join(out)


def _keyword_pattern(keyword: str, form: Form) -> str:
    prefix_wild, suffix_wild = keyword.startswith("*"), keyword.endswith("*")
    core = keyword.strip("*").strip()
    if form == "raw":
        body = r"\s+".join(re.escape(w) for w in core.casefold().split())
    else:
        words = [w for w in normalize(core).split() if w]
        body = r"[\W_]*".join(_letters(w) for w in words)
    if form == "joined":  # inside a run of spelled-out letters there are no word boundaries,
        # except for a keyword of two letters once normalised ("xxx" -> "xx"): such pairs turn
        # up inside innocent runs ("x x o", hugs and kisses), so it must be a whole run
        return f"{_LEFT}{body}{_RIGHT}" if len("".join(words)) <= 2 else body
    return f"{'' if prefix_wild else _LEFT}{body}{'' if suffix_wild else _RIGHT}"


# Alternatives per compiled regex. CPython compiles a regex's final program in C holding the
# GIL throughout: one alternation of a rule's 1,000 keywords held it for up to ~50 ms at a
# time, and the event loop of the process compiling a guild's big rule set (on a thread) stood
# still that long, again and again. Chunks of this size hold it a few ms at a time; matching
# costs the same (the engine tries every alternative at each position either way).
ALTERNATION_CHUNK = 64


def _alternations(patterns: Iterable[str]) -> tuple[re.Pattern[str], ...]:
    """``patterns`` (sorted, deduplicated) as a few alternations of at most ALTERNATION_CHUNK."""
    ordered = sorted(set(patterns))
    return tuple(re.compile("|".join(f"(?:{p})" for p in ordered[i:i + ALTERNATION_CHUNK]))
                 for i in range(0, len(ordered), ALTERNATION_CHUNK))


def _keywords_regex(keywords: Iterable[str], form: Form) -> tuple[re.Pattern[str], ...]:
    return _alternations(_keyword_pattern(k, form) for k in keywords)


@dataclass(frozen=True)
class Match:
    rule_id: str
    form: Form
    start: int
    end: int


class AllowList:
    """Keywords (with AutoMod wildcards) that exempt the word(s) a match falls in."""

    def __init__(self, entries: Iterable[str]) -> None:
        entries = list(entries)
        self._by_form: dict[Form, tuple[re.Pattern[str], ...]] = {}
        for form in _FORMS:  # an allowed entry covers a whole run of the joined form
            self._by_form[form] = _alternations(_keyword_pattern(e, "normalized" if form == "joined" else form)
                                                for e in entries)

    def __bool__(self) -> bool:
        return any(self._by_form.values())

    def exempts(self, text: str, start: int, end: int, form: Form) -> bool:
        patterns = self._by_form[form]
        if not patterns:
            return False
        while start > 0 and (text[start - 1].isalnum()):
            start -= 1
        while end < len(text) and text[end].isalnum():
            end += 1
        # The allowed entry must cover the whole span of words the match touched.
        window = max(0, start - MAX_KEYWORD_CHARS * 2), min(len(text), end + MAX_KEYWORD_CHARS * 2)
        return any(m.start() <= start and m.end() >= end
                   for pattern in patterns for m in pattern.finditer(text, *window))


@dataclass(frozen=True)
class CompiledRule:
    id: str
    name: str
    category: str
    source: Source
    keyword_re: dict[str, tuple[re.Pattern[str], ...]]
    regexes: tuple[Any, ...]
    allow: AllowList

    def find(self, forms: dict[Form, str], set_allow: AllowList) -> Match | None:
        for form, text in forms.items():
            spans = ((m.start(), m.end()) for kw in self.keyword_re[form] for m in kw.finditer(text))
            regex_spans = self._regex_spans(text) if form != "joined" else iter(())  # keywords only
            for start, end in chain(spans, regex_spans):
                if self.allow.exempts(text, start, end, form) or set_allow.exempts(text, start, end, form):
                    continue
                return Match(self.id, form, start, end)
        return None

    def _regex_spans(self, text: str) -> Iterator[tuple[int, int]]:
        for pattern in self.regexes:
            for m in pattern.finditer(text):
                if m.end() > m.start():
                    yield m.start(), m.end()


def compile_rule(spec: RuleSpec, source: Source) -> CompiledRule:
    return CompiledRule(
        id=spec.id, name=spec.display_name, category=spec.category, source=source,
        keyword_re={form: _keywords_regex(spec.keywords, form) for form in _FORMS},
        regexes=tuple(_compile_regex(p, f"regex[{i}]") for i, p in enumerate(spec.regex)),
        allow=AllowList(spec.allow),
    )


class RuleSet:
    """Compiled rules plus a set-wide allow list; immutable, safe to share between threads."""

    def __init__(self, spec: RuleSetSpec, source: Source) -> None:
        self.spec = spec
        self.source = source
        self.rules = tuple(compile_rule(r, source) for r in spec.rules if r.enabled)
        self.allow = AllowList(spec.allow)
        self.fingerprint = fingerprint(spec)

    def __len__(self) -> int:
        return len(self.rules)

    def find(self, forms: dict[Form, str]) -> tuple[CompiledRule, Match] | None:
        for rule in self.rules:
            match = rule.find(forms, self.allow)
            if match is not None:
                return rule, match
        return None


def fingerprint(spec: RuleSetSpec) -> str:
    return hashlib.sha256(json.dumps(spec.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


# ---- loading --------------------------------------------------------------------------------

def parse_rules(data: Any, *, where: str = "rules") -> RuleSetSpec:
    """Validate rules given as data: a list of rules, ``{"rules": [...], "allow": [...]}``, or
    the JSON of Discord's ``GET /guilds/{id}/auto-moderation/rules`` (recognised by
    ``trigger_type``). Raises :class:`RuleError` naming the rule and the field."""
    if isinstance(data, RuleSetSpec):
        return data
    if isinstance(data, list) and any(isinstance(r, dict) and "trigger_type" in r for r in data):
        return rules_from_automod(data)
    if isinstance(data, list):
        data = {"rules": data}
    if not isinstance(data, dict):
        raise RuleError(f"{where}: expected a list of rules or an object with 'rules', got {type(data).__name__}")
    unknown = set(data) - {"rules", "allow"}
    if unknown:
        raise RuleError(f"{where}: unknown field(s) {sorted(unknown)}; expected 'rules' and 'allow'")
    raw_rules = data.get("rules", [])
    if not isinstance(raw_rules, list):
        raise RuleError(f"{where}.rules: expected a list, got {type(raw_rules).__name__}")
    rules = []
    for i, raw in enumerate(raw_rules):
        label = f"{where}.rules[{i}]"
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            label += f" (rule {raw['id']!r})"
        try:
            rules.append(RuleSpec.model_validate(raw))
        except ValidationError as exc:
            raise _explain(exc, label) from None
    try:
        return RuleSetSpec(rules=rules, allow=data.get("allow", []))
    except ValidationError as exc:
        raise _explain(exc, where) from None


def load_rules_file(path: str | Path) -> RuleSetSpec:
    """Rules from a .json or .toml file (same shapes as :func:`parse_rules`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleError(f"{path}: cannot read rules file ({exc.strerror})") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RuleError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'} ({exc})") from None
    return parse_rules(data, where=path.name)


def load_global_rules(path: Path = GLOBAL_RULES_PATH) -> RuleSetSpec:
    return load_rules_file(path)


AUTOMOD_KEYWORD = 1  # Discord trigger_type KEYWORD; 3 SPAM, 4 KEYWORD_PRESET, 5 MENTION_SPAM, 6 MEMBER_PROFILE


def rules_from_automod(payload: Any) -> RuleSetSpec:
    """Convert Discord's ``GET /guilds/{id}/auto-moderation/rules`` JSON into our rules.

    Only enabled KEYWORD rules (trigger_type 1) carry lists we can apply: their
    ``keyword_filter``, ``regex_patterns`` and ``allow_list`` become one rule with id
    ``automod.<rule id>``, category ``automod``. Other trigger types are skipped: presets
    (4) are Discord's private lists (our global rules cover the same categories), and spam and
    mention rules do not apply to a prompt. Keyword rules on member profiles (event_type 2)
    are imported too, since the words are what matters here.
    """
    if isinstance(payload, dict):
        payload = [payload]
    if not isinstance(payload, list):
        raise RuleError(f"automod: expected a list of rule objects, got {type(payload).__name__}")
    rules = []
    for i, raw in enumerate(payload):
        if not isinstance(raw, dict):
            raise RuleError(f"automod[{i}]: expected an object, got {type(raw).__name__}")
        if raw.get("trigger_type") != AUTOMOD_KEYWORD or raw.get("enabled") is False:
            continue
        rule_id = str(raw.get("id", i))
        label = f"automod[{i}] (rule {raw.get('name', rule_id)!r})"
        meta = raw.get("trigger_metadata") or {}
        if not isinstance(meta, dict):
            raise RuleError(f"{label}.trigger_metadata: expected an object")
        keywords = [k for k in meta.get("keyword_filter", []) or [] if str(k).strip("* ")]
        regexes = list(meta.get("regex_patterns", []) or [])
        if not keywords and not regexes:
            continue
        try:
            rules.append(RuleSpec(id=f"automod.{rule_id}", name=str(raw.get("name", ""))[:100],
                                  category="automod", keywords=keywords, regex=regexes,
                                  allow=list(meta.get("allow_list", []) or [])))
        except ValidationError as exc:
            raise _explain(exc, label) from None
    return RuleSetSpec(rules=rules)

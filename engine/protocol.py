"""Wire schemas of the engine's HTTP API (/v1) (over 400 lines: the whole contract in one
dependency-light module, which the bot may import and nothing else of the engine).

This module is the contract between the engine and every front (bot, CLI, HTTP clients).
It must stay dependency-light: pydantic only, never torch, so that `import bot` never
imports torch.
"""
from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

API_VERSION = "v1"
SEED_MAX = 2**32 - 1
LOCALES = ("en-US", "zh-CN")

# Discord's command/option name rule (lowercase); the engine enforces it so that every
# catalog entry can become a slash command unchanged.
NAME_RE = re.compile(r"^[-_'\w\u0900-\u097F\u0E00-\u0E7F]{1,32}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_name(value: str) -> str:
    if not NAME_RE.match(value) or value != value.lower():
        raise ValueError("must be 1-32 lowercase letters, digits, '-', '_' or \"'\"")
    return value


def _check_localizations(value: dict[str, str], limit: int) -> dict[str, str]:
    for locale, text in value.items():
        if not re.match(r"^[a-z]{2}(-[A-Z]{2})?$", locale):
            raise ValueError(f"locale {locale!r} is not a Discord locale such as 'en-US' or 'zh-CN'")
        if not 1 <= len(text) <= limit:
            raise ValueError(f"localization for {locale} must be 1-{limit} characters")
    return value


Name = Annotated[str, AfterValidator(_check_name)]


class OptionType(str, Enum):
    string = "string"
    integer = "integer"
    number = "number"
    boolean = "boolean"


class Presentation(str, Enum):
    """How a front shows an artifact of a modality."""

    inline_text = "inline_text"
    image = "image"
    audio = "audio"
    animation = "animation"
    file = "file"


class Choice(_Model):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    value: str | int | float
    name_localizations: dict[str, str] = {}


class OptionSpec(_Model):
    name: Name
    type: OptionType
    description: Annotated[str, Field(min_length=1, max_length=100)]
    required: bool = False
    default: str | int | float | bool | None = None
    min_value: float | None = None
    max_value: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    choices: list[Choice] = []
    # Choice values a locale lists first (e.g. {"zh-CN": ["person-zh"]}). Discord keeps one order
    # of static choices for every locale, so a front offers such an option as autocomplete,
    # answered from ``choices`` in the member's locale; the engine still accepts only ``choices``.
    choice_order: dict[str, list[str | int | float]] = {}
    # Name of an autocomplete source the plugin provides; fronts ask /v1/autocomplete.
    autocomplete: str | None = None
    # "seed" / "count": this option maps to the job's top-level field, not to `options`.
    job_field: Literal["seed", "count"] | None = None
    name_localizations: dict[str, str] = {}
    description_localizations: dict[str, str] = {}

    @field_validator("description_localizations")
    @classmethod
    def _desc_l10n(cls, v: dict[str, str]) -> dict[str, str]:
        return _check_localizations(v, 100)

    @field_validator("name_localizations")
    @classmethod
    def _name_l10n(cls, v: dict[str, str]) -> dict[str, str]:
        for text in _check_localizations(v, 32).values():
            _check_name(text)
        return v

    @model_validator(mode="after")
    def _order_names_choices(self) -> "OptionSpec":
        values = {c.value for c in self.choices}
        for locale, order in self.choice_order.items():
            if locale not in LOCALES:
                raise ValueError(f"choice_order: unknown locale {locale!r} (known: {', '.join(LOCALES)})")
            if unknown := [v for v in order if v not in values]:
                raise ValueError(f"choice_order.{locale}: {unknown!r} are not among the choices")
        return self


def ordered_choices(option: OptionSpec, locale: str | None) -> list[Choice]:
    """The option's choices with those ``locale`` lists first (``choice_order``), else as declared."""
    first = option.choice_order.get(locale or "", [])
    rank = {v: i for i, v in enumerate(first)}
    return sorted(option.choices, key=lambda c: rank.get(c.value, len(first)))


class ActionSpec(_Model):
    """A follow-up a front offers under a result (a button)."""

    name: Name
    label: Annotated[str, Field(min_length=1, max_length=80)]
    emoji: str | None = None
    # per_output: one button per output (e.g. variations of output i).
    per_output: bool = False
    # Options the action asks for before it runs (a front shows a form/modal).
    options: list[OptionSpec] = []
    label_localizations: dict[str, str] = {}


class ModalitySpec(_Model):
    name: str
    mime: str
    extension: str
    presentation: Presentation
    description: str = ""


class CommandSpec(_Model):
    name: Name
    description: Annotated[str, Field(min_length=1, max_length=100)]
    plugin: str
    modality: str
    generator: str
    options: list[OptionSpec] = []
    actions: list[ActionSpec] = []
    max_count: int = 1
    nsfw: bool = False
    name_localizations: dict[str, str] = {}
    description_localizations: dict[str, str] = {}


class PluginSpec(_Model):
    name: str
    version: str
    description: str = ""
    source: str  # "builtin" or "entry_point:<dist>"
    commands: list[CommandSpec]
    modalities: list[ModalitySpec] = []


class FailedPlugin(_Model):
    name: str
    source: str
    reason: str


class Catalog(_Model):
    api: str = API_VERSION
    plugins: list[PluginSpec]
    failed: list[FailedPlugin] = []
    modalities: list[ModalitySpec]
    # Stable hash of the whole catalog, so fronts sync only on change.
    hash: str = ""


# ---- jobs ---------------------------------------------------------------------------


class Requester(_Model):
    platform: Annotated[str, Field(min_length=1, max_length=32)] = "http"
    guild: Annotated[str, Field(max_length=64)] | None = None
    channel: Annotated[str, Field(max_length=64)] | None = None
    user: Annotated[str, Field(min_length=1, max_length=64)] = "anonymous"
    locale: Annotated[str, Field(max_length=16)] = "en-US"
    # Who turns repeated refused prompts into a block: "engine" (its near-miss tracker,
    # 403 requester_blocked) or "front" (the front counts them and blocks in its own terms,
    # e.g. the Discord bot's per-server bans, with exemptions only it can judge). Either way
    # the engine refuses every prompt its policy refuses.
    escalation: Literal["engine", "front"] = "engine"

    @property
    def key(self) -> str:
        """Identity used for fairness: one user on one platform."""
        return f"{self.platform}:{self.user}"


class ParentRef(_Model):
    """The output a follow-up action starts from. A front that keeps job records may also
    send the parent's (command, options, seed), so actions work after the engine forgot it."""

    job: Annotated[str, Field(min_length=1, max_length=64)]
    action: Annotated[str, Field(min_length=1, max_length=32)]
    index: Annotated[int, Field(ge=0, le=63)] = 0
    command: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    options: dict[str, Any] | None = None
    seed: Annotated[int, Field(ge=0, le=SEED_MAX)] | None = None


class SourceRef(_Model):
    """An earlier output a job draws from without being a follow-up of it (a Blend's two ends,
    which an ``/animate`` morph names by options): the engine names each in the new files'
    Content Credentials as an ``inputTo`` ingredient, as it names a follow-up's parent."""

    job: Annotated[str, Field(min_length=1, max_length=64)]
    index: Annotated[int, Field(ge=0, le=63)] = 0


MAX_SOURCES = 4


# ---- policy rule sets: size caps ----------------------------------------------------------
#
# Guild rules and AutoMod rules arrive with every /v1/moderate and /v1/jobs request and are
# compiled into regexes, so their size is capped here, before any work. The caps accept
# anything Discord's AutoMod can hold (1,000 keywords of 60 characters per keyword rule, 10
# regexes of 260 characters, allow lists of 100 entries, 1,000 for the preset rule; at most
# 6 keyword rules + 1 member-profile rule + 1 preset + 1 spam + 1 mention-spam rule a guild).
MAX_RULE_KEYWORDS = 1000  # keywords per rule (AutoMod keyword_filter: 1,000)
MAX_KEYWORD_CHARS = 60  # characters per keyword or allow-list entry (AutoMod: 60)
MAX_RULE_REGEXES = 10  # regexes per rule (AutoMod regex_patterns: 10)
MAX_REGEX_CHARS = 260  # characters per regex (AutoMod: 260)
MAX_RULE_ALLOW = 1000  # allow-list entries per rule, and set-wide (AutoMod preset: 1,000)
MAX_GUILD_RULES = 100  # rules in a guild's own set (AutoMod: 6 keyword rules)
MAX_AUTOMOD_RULES = 25  # AutoMod rule objects of any trigger type (Discord allows about 10)
# Keywords + regexes + allow-list entries in one set: what bounds compile time and memory.
# A guild's whole AutoMod (7 keyword rules, their allow lists, the preset's) stays under 9,000.
MAX_RULE_SET_TERMS = 10_000


def _too_large(loc: tuple[str | int, ...], message: str) -> PydanticCustomError:
    # ``loc`` is the place inside the field; the HTTP layer appends it to the field's name.
    return PydanticCustomError("rule_set_too_large", message, {"loc": loc})


def _capped_list(value: Any, limit: int, what: str, loc: tuple[str | int, ...],
                 chars: int | None = None) -> int:
    """How many items ``value`` holds when it is a list; raises past ``limit`` items or when
    a string item is longer than ``chars``. Other shapes are left to the rule parser."""
    if not isinstance(value, list):
        return 0
    if len(value) > limit:
        raise _too_large(loc, f"at most {limit} {what}, got {len(value)}")
    if chars is not None:
        for i, item in enumerate(value):
            if isinstance(item, str) and len(item.strip()) > chars:
                raise _too_large((*loc, i), f"at most {chars} characters, got {len(item.strip())}")
    return len(value)


def _own_rule_terms(rule: Any, loc: tuple[str | int, ...]) -> int:
    if not isinstance(rule, dict):
        return 0
    return (_capped_list(rule.get("keywords"), MAX_RULE_KEYWORDS, "keywords per rule",
                         (*loc, "keywords"), MAX_KEYWORD_CHARS)
            + _capped_list(rule.get("regex"), MAX_RULE_REGEXES, "regexes per rule",
                           (*loc, "regex"), MAX_REGEX_CHARS)
            + _capped_list(rule.get("allow"), MAX_RULE_ALLOW, "allow-list entries per rule",
                           (*loc, "allow"), MAX_KEYWORD_CHARS))


def _automod_rule_terms(rule: Any, loc: tuple[str | int, ...]) -> int:
    meta = rule.get("trigger_metadata") if isinstance(rule, dict) else None
    if not isinstance(meta, dict):
        return 0
    loc = (*loc, "trigger_metadata")
    return (_capped_list(meta.get("keyword_filter"), MAX_RULE_KEYWORDS, "keywords per rule",
                         (*loc, "keyword_filter"), MAX_KEYWORD_CHARS)
            + _capped_list(meta.get("regex_patterns"), MAX_RULE_REGEXES, "regexes per rule",
                           (*loc, "regex_patterns"), MAX_REGEX_CHARS)
            + _capped_list(meta.get("allow_list"), MAX_RULE_ALLOW, "allow-list entries per rule",
                           (*loc, "allow_list"), MAX_KEYWORD_CHARS))


def _total(terms: int) -> int:
    if terms > MAX_RULE_SET_TERMS:
        raise _too_large((), f"at most {MAX_RULE_SET_TERMS} keywords, regexes and allow-list "
                             f"entries in all, got {terms}")
    return terms


def automod_terms(value: Any) -> int:
    """Size-check Discord AutoMod rules JSON (a list of rule objects, or one) and return its
    number of keywords, regexes and allow-list entries. Raises ``rule_set_too_large``."""
    if isinstance(value, dict):
        return _total(_automod_rule_terms(value, ()))
    _capped_list(value, MAX_AUTOMOD_RULES, "AutoMod rules", ())
    if not isinstance(value, list):
        return 0
    return _total(sum(_automod_rule_terms(r, (i,)) for i, r in enumerate(value)))


def rule_set_terms(value: Any) -> int:
    """Size-check guild rules in any shape the engine accepts (a list of rules, ``{"rules",
    "allow"}``, or AutoMod rules JSON) and return their number of terms."""
    if isinstance(value, list) and any(isinstance(r, dict) and "trigger_type" in r for r in value):
        return automod_terms(value)
    loc: tuple[str | int, ...] = ()
    terms = 0
    if isinstance(value, dict):
        terms += _capped_list(value.get("allow"), MAX_RULE_ALLOW, "set-wide allow-list entries",
                              ("allow",), MAX_KEYWORD_CHARS)
        value, loc = value.get("rules"), ("rules",)
    if not isinstance(value, list):
        return terms
    _capped_list(value, MAX_GUILD_RULES, "rules", loc)
    return _total(terms + sum(_own_rule_terms(r, (*loc, i)) for i, r in enumerate(value)))


def _check_rules(value: Any) -> Any:
    rule_set_terms(value)
    return value


def _check_automod(value: Any) -> Any:
    automod_terms(value)
    return value


GuildRules = Annotated[Any, AfterValidator(_check_rules)]
AutoModRules = Annotated[Any, AfterValidator(_check_automod)]


class PolicyContext(_Model):
    """Rules a front adds to the engine's global list for this request: the guild's own
    rules and its imported Discord AutoMod rules (compiled once, cached by content; sizes
    capped above)."""

    rules: GuildRules = None
    automod: AutoModRules = None


class JobRequest(_Model):
    command: Annotated[str, Field(min_length=1, max_length=32)]
    options: dict[str, Any] = {}
    seed: Annotated[int, Field(ge=0, le=SEED_MAX)] | None = None
    count: Annotated[int, Field(ge=1, le=64)] | None = None
    requester: Requester = Requester()
    idempotency_key: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    priority: Literal["normal", "high"] = "normal"
    parent: ParentRef | None = None
    sources: Annotated[list[SourceRef], Field(max_length=MAX_SOURCES)] = []
    deadline_s: Annotated[float, Field(gt=0, le=86400)] | None = None
    # Draw the visible "AI" mark on images (per-guild setting on the bot); None: engine default.
    visible_mark: bool | None = None
    policy: PolicyContext | None = None


class JobStatus(str, Enum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.done, JobStatus.failed, JobStatus.cancelled)


class ArtifactView(_Model):
    id: str
    index: int
    url: str
    mime: str
    filename: str
    size: int
    # ``sha256``/``size``: the file as the engine made and first served it (signed with Content
    # Credentials where the format allows). ``labelled_sha256``: the deterministic labelled file
    # under the manifest, the output's stable identity: the engine makes it again on demand and
    # checks it against this. A C2PA manifest is not byte-reproducible, so a file made again is
    # signed again with new bytes (the ETag and the ledger name them). Equal when not signed.
    sha256: str
    presentation: Presentation
    labelled_sha256: str | None = None  # None in views recorded before signing: then it is sha256
    text: str | None = None  # inline text for text modalities
    meta: dict[str, Any] = {}


class Timings(_Model):
    created: float
    started: float | None = None
    finished: float | None = None
    queue_ms: float | None = None
    run_ms: float | None = None
    total_ms: float | None = None


class ErrorInfo(_Model):
    code: str
    message: str
    field: str | None = None
    # For prompt_refused: the rule's id and category (never the matched term).
    rule: str | None = None
    category: str | None = None


class JobView(_Model):
    id: str
    status: JobStatus
    command: str
    plugin: str
    modality: str
    options: dict[str, Any]
    seed: int
    count: int
    position: int | None = None
    progress: float = 0.0
    requester: Requester
    parent: ParentRef | None = None
    model: dict[str, str] = {}
    timings: Timings
    artifacts: list[ArtifactView] = []
    error: ErrorInfo | None = None
    action_options: dict[str, Any] = {}  # a follow-up's own options (e.g. morph's target)


class JobAccepted(_Model):
    id: str
    status: JobStatus
    position: int | None


class DisplayRequest(_Model):
    """Who posts a job's display copy: GB 45438's ContentPropagator and PropagateID, written
    into the file (e.g. "Discord via AIGC Bot", "discord:GUILD/CHANNEL/INTERACTION")."""

    propagator: str = Field(min_length=1, max_length=64)
    propagate_id: str = Field(min_length=1, max_length=128)
    cell: int = Field(256, ge=32, le=512, description="px per output in the picture")


class AutocompleteRequest(_Model):
    command: str
    option: str
    value: Annotated[str, Field(max_length=100)] = ""
    options: dict[str, Any] = {}


class AutocompleteResponse(_Model):
    choices: Annotated[list[Choice], Field(max_length=25)]


class ModerateRequest(_Model):
    text: Annotated[str, Field(max_length=20_000)]
    guild: str | None = None
    rules: GuildRules = None
    automod: AutoModRules = None


class ModerateResponse(_Model):
    allowed: bool
    rule: str | None = None
    category: str | None = None
    normalized: str


class ErrorBody(_Model):
    """Every error: {"error": {"code", "message", "field"?, "rule"?, "category"?}}."""

    error: ErrorInfo


class Health(_Model):
    """The process is up."""

    status: Literal["ok"] = "ok"


class Readiness(_Model):
    """Whether the models are loaded and warm (503 until they are)."""

    ready: bool
    device: str
    # generators backing off after their process crashed, with why: their jobs wait queued
    unavailable: dict[str, str] | None = None

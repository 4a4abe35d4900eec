"""Wire schemas of the engine's HTTP API (/v1).

This module is the contract between the engine and every front (bot, CLI, HTTP clients).
It must stay dependency-light: pydantic only, never torch, so that `import bot` never
imports torch.
"""
from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

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


class PolicyContext(_Model):
    """Rules a front adds to the engine's global list for this request: the guild's own
    rules and its imported Discord AutoMod rules (compiled once, cached by content)."""

    rules: Any = None
    automod: Any = None


class JobRequest(_Model):
    command: Annotated[str, Field(min_length=1, max_length=32)]
    options: dict[str, Any] = {}
    seed: Annotated[int, Field(ge=0, le=SEED_MAX)] | None = None
    count: Annotated[int, Field(ge=1, le=64)] | None = None
    requester: Requester = Requester()
    idempotency_key: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    priority: Literal["normal", "high"] = "normal"
    parent: ParentRef | None = None
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
    sha256: str
    presentation: Presentation
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


class JobAccepted(_Model):
    id: str
    status: JobStatus
    position: int | None


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
    rules: Any = None
    automod: Any = None


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

"""Plain records the store returns (never ORM rows), and the values callers pass in."""
from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Literal

PromptStorage = Literal["full", "hash"]


def prompt_hash(prompt: str) -> str:
    """sha256 of the NFC form, so the same prompt typed differently still matches."""
    return hashlib.sha256(unicodedata.normalize("NFC", prompt).encode()).hexdigest()


def id_hash(value: str) -> str:
    """How erasure records name whom they erased without keeping the id itself."""
    return hashlib.sha256(f"aigc-erasure:{value}".encode()).hexdigest()


# ---- jobs ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArtifactRecord:
    id: str
    index: int
    sha256: str
    url: str
    filename: str
    mime: str = ""
    size: int = 0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArtifactRecord:
        return cls(id=str(d["id"]), index=int(d["index"]), sha256=str(d["sha256"]), url=str(d["url"]),
                   filename=str(d["filename"]), mime=str(d.get("mime", "")), size=int(d.get("size", 0)))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "index": self.index, "sha256": self.sha256, "url": self.url,
                "filename": self.filename, "mime": self.mime, "size": self.size}


@dataclass(frozen=True, slots=True)
class NewJob:
    """What the bot knows when the engine accepted a job."""

    id: str
    user_id: str
    command: str
    options: dict[str, Any]
    guild_id: str | None = None
    channel_id: str | None = None
    idempotency_key: str | None = None
    engine_url: str | None = None
    seed: int | None = None
    count: int = 1
    status: str = "queued"
    parent_job_id: str | None = None
    parent_action: str | None = None
    parent_index: int = 0
    action_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: str
    idempotency_key: str | None
    engine_url: str | None
    guild_id: str | None
    channel_id: str | None
    user_id: str
    command: str
    options: dict[str, Any]
    seed: int | None
    count: int
    status: str
    artifacts: tuple[ArtifactRecord, ...]
    model: dict[str, Any]
    timings: dict[str, Any]
    error: dict[str, Any] | None
    result_channel_id: str | None
    result_message_id: str | None
    parent_job_id: str | None
    parent_action: str | None
    parent_index: int
    created_at: datetime
    updated_at: datetime
    action_options: dict[str, Any] = field(default_factory=dict)  # a follow-up's own (morph's target)


# ---- settings ------------------------------------------------------------------------


class Scope(str, Enum):
    """Where a setting value applies; later scopes override earlier ones."""

    guild = "guild"
    channel = "channel"
    role = "role"
    user = "user"


@dataclass(frozen=True, slots=True)
class ScopedValue:
    guild_id: str
    scope: Scope
    scope_id: str
    key: str
    value: Any
    updated_at: datetime


# ---- quotas --------------------------------------------------------------------------


QuotaLimitName = Literal["cooldown", "daily", "user_concurrent", "guild_concurrent"]


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    """Limits in force for one (guild, user) at reservation time; None means no limit."""

    cooldown_s: float = 0.0
    daily: int | None = None
    user_concurrent: int | None = None
    guild_concurrent: int | None = None


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    daily_used: int
    user_active: int
    guild_active: int
    last_reserved_at: datetime | None
    day_resets_at: datetime
    next_active_expiry: datetime | None  # latest time an active reservation frees itself


@dataclass(frozen=True, slots=True)
class QuotaDenial:
    limit: QuotaLimitName
    limit_value: float
    used: float
    resets_at: datetime | None  # None: when one of the running jobs finishes


@dataclass(frozen=True, slots=True)
class Reservation:
    id: str
    guild_id: str | None
    user_id: str
    channel_id: str | None
    job_id: str | None
    cost: int
    status: str  # reserved | committed | refunded
    created_at: datetime
    expires_at: datetime
    settled_at: datetime | None


# ---- moderation ----------------------------------------------------------------------


class ReviewStatus(str, Enum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"


@dataclass(frozen=True, slots=True)
class ReviewItem:
    id: int
    job_id: str
    guild_id: str
    channel_id: str | None
    requester_id: str
    review_channel_id: str | None
    review_message_id: str | None
    status: ReviewStatus
    moderator_id: str | None
    reason: str | None
    created_at: datetime
    decided_at: datetime | None


@dataclass(frozen=True, slots=True)
class ReviewDecision:
    item: ReviewItem
    applied: bool  # False: someone decided first; item shows that decision


@dataclass(frozen=True, slots=True)
class Ban:
    guild_id: str
    user_id: str
    moderator_id: str | None
    reason: str | None
    created_at: datetime
    expires_at: datetime | None


# ---- audit ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One thing to append to the audit log; ``prompt`` is kept or hashed per ``prompt_storage``."""

    action: str
    actor_id: str | None = None
    guild_id: str | None = None
    channel_id: str | None = None
    subject_id: str | None = None
    command: str | None = None
    job_id: str | None = None
    prompt: str | None = None
    prompt_storage: PromptStorage = "full"
    verdict: str | None = None
    model_hash: str | None = None
    output_hash: str | None = None
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: datetime
    action: str
    actor_id: str | None
    guild_id: str | None
    channel_id: str | None
    subject_id: str | None
    command: str | None
    job_id: str | None
    prompt: str | None
    prompt_hash: str | None
    verdict: str | None
    model_hash: str | None
    output_hash: str | None
    reason: str | None
    detail: dict[str, Any]


# ---- erasure -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErasureReport:
    """Rows touched per table, e.g. {"jobs": 3, "audit_log": 5}."""

    deleted: dict[str, int]
    redacted: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.deleted.values()) + sum(self.redacted.values())

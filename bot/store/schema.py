"""Table definitions of the bot's store (SQLAlchemy Core), the current schema version.

Columns that a later schema version added are listed in ``bot.store.migrations``; the tables
here are always the newest layout.
"""
from __future__ import annotations

from datetime import datetime, timezone
from sqlalchemy import (
    JSON, BigInteger, Column, DateTime, Dialect, Index, Integer, MetaData, String, Table, Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

SNOWFLAKE = String(32)  # Discord ids travel as strings; 32 leaves room for other platforms
JOB_ID = String(64)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware UTC datetime")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


JSONValue = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments INTEGER PRIMARY KEY; Postgres gets a 64-bit identity.
AutoId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
})

schema_version = Table(
    "schema_version", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1: a single row
    Column("version", Integer, nullable=False),
    Column("upgraded_at", UTCDateTime, nullable=False),
)

jobs = Table(
    "jobs", metadata,
    Column("id", JOB_ID, primary_key=True),  # the engine's job id
    Column("idempotency_key", String(128), unique=True),  # interaction id
    Column("engine_url", String(512)),  # the engine that accepted it (jobs stick to it)
    Column("guild_id", SNOWFLAKE, index=True),
    Column("channel_id", SNOWFLAKE),
    Column("user_id", SNOWFLAKE, nullable=False, index=True),
    Column("command", String(32), nullable=False),
    Column("options", JSONValue, nullable=False),
    Column("seed", BigInteger),  # 0..2**32-1 does not fit a signed 32-bit INTEGER
    Column("count", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("artifacts", JSONValue, nullable=False),
    Column("model", JSONValue, nullable=False),
    Column("timings", JSONValue, nullable=False),
    Column("error", JSONValue),
    Column("result_channel_id", SNOWFLAKE),
    Column("result_message_id", SNOWFLAKE, index=True),
    Column("parent_job_id", JOB_ID),
    Column("parent_action", String(32)),
    Column("parent_index", Integer, nullable=False, server_default="0"),  # since v2
    Column("action_options", JSONValue),  # since v3: a follow-up's own options (morph's target)
    Column("created_at", UTCDateTime, nullable=False, index=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

# One row per (guild, scope, scope id, setting); scope is guild | channel | role | user.
scoped_settings = Table(
    "scoped_settings", metadata,
    Column("guild_id", SNOWFLAKE, primary_key=True),
    Column("scope", String(8), primary_key=True),
    Column("scope_id", SNOWFLAKE, primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("value", JSONValue),
    Column("updated_at", UTCDateTime, nullable=False),
)

quota_reservations = Table(
    "quota_reservations", metadata,
    Column("id", String(36), primary_key=True),
    Column("guild_id", SNOWFLAKE, nullable=False),  # "" for direct messages
    Column("user_id", SNOWFLAKE, nullable=False),
    Column("channel_id", SNOWFLAKE),
    Column("job_id", JOB_ID),
    Column("cost", Integer, nullable=False),
    Column("status", String(12), nullable=False),  # reserved | committed | refunded
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("settled_at", UTCDateTime),
    Index(None, "guild_id", "user_id", "created_at"),
    Index(None, "guild_id", "status"),
)

# A row per guild that reservations lock (SELECT ... FOR UPDATE) so that checks and inserts
# of concurrent reservations in one guild run one after another.
quota_locks = Table(
    "quota_locks", metadata,
    Column("key", String(64), primary_key=True),
)

review_items = Table(
    "review_items", metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("job_id", JOB_ID, nullable=False, unique=True),
    Column("guild_id", SNOWFLAKE, nullable=False, index=True),
    Column("channel_id", SNOWFLAKE),  # where it was requested
    Column("requester_id", SNOWFLAKE, nullable=False),
    Column("review_channel_id", SNOWFLAKE),
    Column("review_message_id", SNOWFLAKE, index=True),
    Column("status", String(10), nullable=False),  # pending | approved | rejected
    Column("moderator_id", SNOWFLAKE),
    Column("reason", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("decided_at", UTCDateTime),
)

bans = Table(
    "bans", metadata,
    Column("guild_id", SNOWFLAKE, primary_key=True),
    Column("user_id", SNOWFLAKE, primary_key=True),
    Column("moderator_id", SNOWFLAKE),
    Column("reason", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime),
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("guild_id", SNOWFLAKE, index=True),
    Column("channel_id", SNOWFLAKE),
    Column("actor_id", SNOWFLAKE, index=True),
    Column("subject_id", SNOWFLAKE, index=True),  # the user an action is about (e.g. who was banned)
    Column("action", String(48), nullable=False),
    Column("command", String(32)),
    Column("job_id", JOB_ID),
    Column("prompt", Text),  # only when the guild stores prompts in full
    Column("prompt_hash", String(64)),  # since v2
    Column("verdict", String(32)),
    Column("model_hash", String(64)),
    Column("output_hash", String(64)),
    Column("reason", Text),
    Column("detail", JSONValue, nullable=False),
)

ALL_TABLES: tuple[Table, ...] = tuple(metadata.sorted_tables)


__all__ = [
    "ALL_TABLES", "UTCDateTime", "audit_log", "bans", "jobs", "metadata", "quota_locks",
    "quota_reservations", "review_items", "schema_version", "scoped_settings",
]

"""The bot's persistent state: SQLAlchemy 2 async over SQLite (default) or Postgres.

    store = await Store.open("sqlite+aiosqlite:///data/aigc.sqlite3")
    job = await store.jobs.create(NewJob(...))
    ...
    await store.close()

Repositories return plain records (``bot.store.records``), never ORM rows.
"""
from bot.store.database import StoreConfigError, normalize_store_url
from bot.store.migrations import LATEST_VERSION, SchemaError, UpgradeReport
from bot.store.records import (
    ArtifactRecord, AuditEvent, AuditRecord, Ban, ErasureReport, JobRecord, NewJob, PromptStorage, QuotaDenial,
    QuotaLimits, QuotaUsage, Reservation, ReviewDecision, ReviewItem, ReviewStatus, Scope, ScopedValue,
    prompt_hash,
)
from bot.store.store import Store

__all__ = [
    "LATEST_VERSION", "ArtifactRecord", "AuditEvent", "AuditRecord", "Ban", "ErasureReport", "JobRecord",
    "NewJob", "PromptStorage", "QuotaDenial", "QuotaLimits", "QuotaUsage", "Reservation", "ReviewDecision",
    "ReviewItem", "ReviewStatus", "SchemaError", "Scope", "ScopedValue", "Store", "StoreConfigError",
    "UpgradeReport", "normalize_store_url", "prompt_hash",
]

"""``Store``: opens the database, upgrades its schema, and offers the repositories plus the
erasure and retention functions (the only ways rows leave the audit log; each logs itself)."""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import delete, or_, select, text, update
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.audit import AuditLog, append_audit
from bot.store.database import Clock, Database, StoreConfigError, normalize_store_url, utcnow
from bot.store.jobs import JobRepository
from bot.store.migrations import UpgradeReport, upgrade_schema
from bot.store.moderation import BanList, ReviewQueue
from bot.store.quota_ledger import QuotaLedger
from bot.store.records import AuditEvent, ErasureReport, PromptStorage, Scope, id_hash
from bot.store.schema import audit_log, bans, jobs, quota_locks, quota_reservations, review_items, scoped_settings
from bot.store.scoped_values import ScopedValueRepository


class Store:
    """The bot's persistent state. Open with ``await Store.open(url)``; close with ``close()``."""

    def __init__(self, db: Database, schema_report: UpgradeReport):
        self._db = db
        self.schema_report = schema_report
        self.jobs = JobRepository(db)
        self.settings = ScopedValueRepository(db)
        self.quota = QuotaLedger(db)
        self.reviews = ReviewQueue(db)
        self.bans = BanList(db)
        self.audit = AuditLog(db)

    @classmethod
    async def open(cls, url: str | URL, *, pg_schema: str | None = None, clock: Clock = utcnow,
                   echo: bool = False) -> Store:
        """Connect and create or upgrade the schema. ``pg_schema``: keep the tables in this
        Postgres schema (created if missing), e.g. to share one database between deployments."""
        u = normalize_store_url(url)
        if u.drivername.startswith("sqlite"):
            Path(u.database or "").expanduser().parent.mkdir(parents=True, exist_ok=True)
        elif pg_schema is None and u.query.get("schema"):
            pg_schema = str(u.query["schema"])
            u = u.difference_update_query(["schema"])
        db = Database.create(u, pg_schema=pg_schema, clock=clock, echo=echo)
        try:
            if pg_schema is not None:
                async with db.engine.begin() as conn:
                    quoted = conn.dialect.identifier_preparer.quote_schema(pg_schema)
                    await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quoted}"))
            async with db.write() as conn:
                report = await conn.run_sync(upgrade_schema)
        except BaseException:
            await db.dispose()
            raise
        return cls(db, report)

    async def close(self) -> None:
        await self._db.dispose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def now(self) -> datetime:
        """The store's clock (UTC); tests move it."""
        return self._db.now()

    @property
    def backend(self) -> Literal["sqlite", "postgresql"]:
        return "sqlite" if self._db.dialect == "sqlite" else "postgresql"

    # ---- erasure and retention ----------------------------------------------------------

    async def forget_user(self, user_id: str, *, requested_by: str | None = None,
                          keep_audit: bool = False) -> ErasureReport:
        """`/forget-me` (requested_by None or the user) or a moderator's `/mod purge user`.

        Deletes the user's jobs, their review items, quota reservations and user-scope
        settings everywhere. Audit rows where the user acted or was acted upon are deleted, or,
        with ``keep_audit`` (jurisdictions that require logs), kept with prompt text removed
        (the prompt hash stays). Bans are kept: erasure must not lift a moderation measure.
        The erasure itself is logged with a hash of the user id, not the id."""
        async with self._db.write() as conn:
            job_ids = select(jobs.c.id).where(jobs.c.user_id == user_id)
            deleted = {
                "review_items": await _delete(conn, review_items, or_(review_items.c.requester_id == user_id,
                                                                      review_items.c.job_id.in_(job_ids))),
                "jobs": await _delete(conn, jobs, jobs.c.user_id == user_id),
                "quota_reservations": await _delete(conn, quota_reservations, quota_reservations.c.user_id == user_id),
                "scoped_settings": await _delete(conn, scoped_settings, (scoped_settings.c.scope == Scope.user.value)
                                                 & (scoped_settings.c.scope_id == user_id)),
            }
            about_user = or_(audit_log.c.actor_id == user_id, audit_log.c.subject_id == user_id)
            redacted: dict[str, int] = {}
            if keep_audit:
                result = await conn.execute(update(audit_log).where(about_user, audit_log.c.prompt.is_not(None))
                                            .values(prompt=None))
                redacted["audit_log"] = result.rowcount
            else:
                deleted["audit_log"] = await _delete(conn, audit_log, about_user)
            self_service = requested_by in (None, user_id)
            await append_audit(conn, self._db.now(), AuditEvent(
                action="erasure.user", actor_id=None if self_service else requested_by,
                detail={"subject_sha256": id_hash(user_id), "self_service": self_service, "keep_audit": keep_audit,
                        "deleted": deleted, "redacted": redacted}))
        return ErasureReport(deleted=deleted, redacted=redacted)

    async def purge_member(self, guild_id: str, user_id: str, *, actor_id: str | None,
                           reason: str | None = None) -> ErasureReport:
        """`/mod purge user`: delete one member's jobs and review items in one guild (the
        caller deletes the posted messages first). Audit rows stay: they are the moderation
        trail; the purge itself is logged with the member as subject."""
        async with self._db.write() as conn:
            job_ids = select(jobs.c.id).where(jobs.c.guild_id == guild_id, jobs.c.user_id == user_id)
            deleted = {
                "review_items": await _delete(conn, review_items, (review_items.c.guild_id == guild_id) & or_(
                    review_items.c.requester_id == user_id, review_items.c.job_id.in_(job_ids))),
                "jobs": await _delete(conn, jobs, (jobs.c.guild_id == guild_id) & (jobs.c.user_id == user_id)),
            }
            await append_audit(conn, self._db.now(), AuditEvent(
                action="mod.purge", actor_id=actor_id, guild_id=guild_id, subject_id=user_id, reason=reason,
                detail={"deleted": deleted}))
        return ErasureReport(deleted=deleted)

    async def purge_guild(self, guild_id: str, *, actor_id: str | None = None,
                          reason: str = "bot removed from guild") -> ErasureReport:
        """Delete everything stored about a guild (the bot left it), bans and audit included."""
        async with self._db.write() as conn:
            deleted = {
                "review_items": await _delete(conn, review_items, review_items.c.guild_id == guild_id),
                "jobs": await _delete(conn, jobs, jobs.c.guild_id == guild_id),
                "quota_reservations": await _delete(conn, quota_reservations,
                                                    quota_reservations.c.guild_id == guild_id),
                "quota_locks": await _delete(conn, quota_locks, quota_locks.c.key == f"guild:{guild_id}"),
                "scoped_settings": await _delete(conn, scoped_settings, scoped_settings.c.guild_id == guild_id),
                "bans": await _delete(conn, bans, bans.c.guild_id == guild_id),
                "audit_log": await _delete(conn, audit_log, audit_log.c.guild_id == guild_id),
            }
            await append_audit(conn, self._db.now(), AuditEvent(
                action="erasure.guild", actor_id=actor_id, reason=reason,
                detail={"guild_sha256": id_hash(guild_id), "deleted": deleted}))
        return ErasureReport(deleted=deleted)

    async def apply_retention(self, guild_id: str | None, *, older_than_days: int | None,
                              prompt_storage: PromptStorage) -> ErasureReport:
        """Apply one guild's retention settings (``guild_id`` None: direct-message records).

        Deletes jobs, review items, settled or expired reservations and audit rows older than
        ``older_than_days`` (None keeps them), and with ``prompt_storage="hash"`` removes the
        prompt text of the guild's audit rows (hashes stay). Logged when it changed anything."""
        if older_than_days is not None and older_than_days < 1:
            raise ValueError("older_than_days must be at least 1 (or None to keep everything)")
        if prompt_storage not in ("full", "hash"):
            raise ValueError(f"prompt_storage must be 'full' or 'hash', got {prompt_storage!r}")
        now = self._db.now()

        def in_guild(col: Any) -> Any:
            return col.is_(None) if guild_id is None else col == guild_id

        deleted: dict[str, int] = {}
        redacted: dict[str, int] = {}
        async with self._db.write() as conn:
            if older_than_days is not None:
                cutoff = now - timedelta(days=older_than_days)
                old_jobs = select(jobs.c.id).where(in_guild(jobs.c.guild_id), jobs.c.created_at < cutoff)
                deleted["review_items"] = await _delete(conn, review_items, review_items.c.job_id.in_(old_jobs))
                deleted["jobs"] = await _delete(conn, jobs, in_guild(jobs.c.guild_id) & (jobs.c.created_at < cutoff))
                deleted["quota_reservations"] = await _delete(
                    conn, quota_reservations,
                    (quota_reservations.c.guild_id == (guild_id or "")) & (quota_reservations.c.created_at < cutoff)
                    & ((quota_reservations.c.status != "reserved") | (quota_reservations.c.expires_at < now)))
                deleted["audit_log"] = await _delete(conn, audit_log,
                                                     in_guild(audit_log.c.guild_id) & (audit_log.c.at < cutoff))
            if prompt_storage == "hash":
                result = await conn.execute(update(audit_log).where(
                    in_guild(audit_log.c.guild_id), audit_log.c.prompt.is_not(None)).values(prompt=None))
                redacted["audit_log"] = result.rowcount
            report = ErasureReport(deleted={k: v for k, v in deleted.items() if v},
                                   redacted={k: v for k, v in redacted.items() if v})
            if report.total:
                await append_audit(conn, now, AuditEvent(
                    action="retention.applied", guild_id=guild_id,
                    detail={"older_than_days": older_than_days, "prompt_storage": prompt_storage,
                            "deleted": report.deleted, "redacted": report.redacted}))
        return report


async def _delete(conn: AsyncConnection, table: Any, where: Any) -> int:
    return (await conn.execute(delete(table).where(where))).rowcount


__all__ = ["Store", "StoreConfigError"]

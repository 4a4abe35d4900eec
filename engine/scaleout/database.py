"""PostgreSQL for the scale-out: one asyncpg pool per process and the shared schema.

Why artifacts live here (``files``, bytea) rather than in a shared directory: a worker commits
an output's file, its ledger row and the journal's note in *one* transaction, so no node ever
sees a recorded output whose file is missing, and no shared filesystem (NFS and its locking)
is needed between machines. Our outputs are small (an emoji PNG is ~10-40 KB; bytea is fine
up to tens of MB); a modality with big files (video) would want object storage instead.
"""
from __future__ import annotations

import asyncpg

SCHEMA = """
CREATE TABLE IF NOT EXISTS aigc_jobs (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT UNIQUE,
    request JSONB NOT NULL,
    command TEXT NOT NULL,
    options JSONB NOT NULL,
    seed BIGINT NOT NULL,
    count INTEGER NOT NULL,
    action TEXT NOT NULL,
    source JSONB,
    action_options JSONB NOT NULL,
    visible_mark BOOLEAN NOT NULL,
    status TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL,
    updated DOUBLE PRECISION NOT NULL,
    model JSONB,
    error JSONB,
    started DOUBLE PRECISION,
    finished DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS aigc_jobs_status ON aigc_jobs (status) WHERE status IN ('queued', 'running');
-- how many outputs are recorded: a worker's commit adds its new rows to it, so the job is 'done'
-- exactly when the last one lands, even when two workers finish outputs of one job at once
-- (a count(*) in each commit would see only its own snapshot and neither would say 'done')
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                   AND table_name = 'aigc_jobs' AND column_name = 'outputs_done') THEN
        ALTER TABLE aigc_jobs ADD COLUMN outputs_done INTEGER NOT NULL DEFAULT 0;
        IF to_regclass('aigc_outputs') IS NOT NULL THEN
            UPDATE aigc_jobs j SET outputs_done = (SELECT count(*) FROM aigc_outputs o WHERE o.job = j.id);
        END IF;
    END IF;
END $$;
CREATE TABLE IF NOT EXISTS aigc_outputs (
    job TEXT NOT NULL REFERENCES aigc_jobs (id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    artifact JSONB NOT NULL,
    worker TEXT NOT NULL DEFAULT '',
    recorded DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (job, idx)
);
CREATE TABLE IF NOT EXISTS aigc_files (
    id TEXT PRIMARY KEY,
    job TEXT NOT NULL REFERENCES aigc_jobs (id) ON DELETE CASCADE,
    data BYTEA NOT NULL,
    mime TEXT NOT NULL,
    filename TEXT NOT NULL,
    sha256 TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS aigc_files_job ON aigc_files (job);
CREATE TABLE IF NOT EXISTS aigc_ledger (
    id BIGSERIAL PRIMARY KEY,
    sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
    content_sha256 TEXT,
    job TEXT NOT NULL,
    output_index INTEGER NOT NULL,
    command TEXT NOT NULL,
    model TEXT NOT NULL,
    model_sha256 TEXT NOT NULL DEFAULT '',
    created DOUBLE PRECISION NOT NULL,
    platform TEXT,
    guild TEXT,
    mime TEXT,
    recorded_at DOUBLE PRECISION NOT NULL,
    rendition TEXT NOT NULL DEFAULT '',
    signed INTEGER NOT NULL DEFAULT 0,
    UNIQUE (sha256, job, output_index)
);
-- the labelled file and its signed copies (Content Credentials), engine/provenance/ledger.py
ALTER TABLE aigc_ledger ADD COLUMN IF NOT EXISTS signed INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS aigc_ledger_job ON aigc_ledger (job);
CREATE INDEX IF NOT EXISTS aigc_ledger_content ON aigc_ledger (content_sha256);
CREATE OR REPLACE FUNCTION aigc_ledger_append_only() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'the provenance ledger is append-only'; END; $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS aigc_ledger_no_change ON aigc_ledger;
CREATE TRIGGER aigc_ledger_no_change BEFORE UPDATE OR DELETE ON aigc_ledger
    FOR EACH ROW EXECUTE FUNCTION aigc_ledger_append_only();
"""
_SCHEMA_LOCK = 0x41494743  # "AIGC": nodes starting together create the schema one at a time


def asyncpg_dsn(url: str) -> str:
    """asyncpg takes postgresql:// (SQLAlchemy's postgresql+asyncpg:// names the same thing)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _keep(conn: asyncpg.Connection) -> None:
    """What a connection goes back to the pool with: as it is. asyncpg's default reset costs a
    round trip per use (``RESET ALL; UNLISTEN *; CLOSE ALL; pg_advisory_unlock_all()``) for
    state we never make: no session settings, listeners, cursors or session advisory locks
    (the schema lock is transaction-scoped). An open transaction is still rolled back by
    asyncpg itself before this is called."""


async def open_pool(url: str, *, min_size: int = 1, max_size: int = 8,
                    synchronous_commit: bool = True) -> asyncpg.Pool:
    """A pool on ``url`` with the schema in place (created under an advisory lock).

    Generic plans: every statement we prepare is a short lookup or write by primary key or
    over small array parameters, planned once per connection. Left to choose, PostgreSQL kept
    re-planning each execution (its cost estimate for an array parameter never favours the
    generic plan): 0.6-0.8 ms of each 1.1-2 ms worker commit on this project's machine.

    No sequential scans where an index serves: a plan made while a table was tiny (a new
    database) stays cached in the connection until an ``ANALYZE`` invalidates it, and with
    autovacuum off or behind, that is never or minutes later. The foreign-key checks of each
    commit (outputs and files -> jobs) then scanned all of ``aigc_jobs``, four times per commit:
    after 3,000 jobs a commit took 3.3 ms instead of 1.0. Every statement we send is a keyed
    lookup or write, and the few with no usable index (pruning by age, a count) are still planned
    as scans, as the only way left."""
    pool = await asyncpg.create_pool(asyncpg_dsn(url), min_size=min_size, max_size=max_size, command_timeout=30,
                                     reset=_keep,
                                     server_settings={"synchronous_commit": "on" if synchronous_commit else "off",
                                                      "plan_cache_mode": "force_generic_plan",
                                                      "enable_seqscan": "off"})
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
        await conn.execute(SCHEMA)
    return pool

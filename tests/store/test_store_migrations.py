"""Opening an older database upgrades it; a newer or foreign one is refused."""
from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import inspect, text

from bot.store import LATEST_VERSION, AuditEvent, NewJob, SchemaError, Store, prompt_hash
from bot.store.database import Database
from bot.store.schema import metadata

pytestmark = pytest.mark.fresh_database


async def _raw(backend, *statements: str) -> None:
    db = Database.create(backend.url, pg_schema=backend.pg_schema)
    try:
        async with db.write() as conn:
            for s in statements:
                await conn.execute(text(s))
    finally:
        await db.dispose()


async def _columns(backend) -> dict[str, set[str]]:
    db = Database.create(backend.url, pg_schema=backend.pg_schema)
    try:
        async with db.read() as conn:
            return await conn.run_sync(
                lambda c: {t: {col["name"] for col in inspect(c).get_columns(t)} for t in inspect(c).get_table_names()})
    finally:
        await db.dispose()


def _declared() -> dict[str, set[str]]:
    return {name: {c.name for c in t.columns} for name, t in metadata.tables.items()}


async def test_fresh_database_matches_declared_schema(open_store, backend) -> None:
    s = await open_store()
    assert s.schema_report.from_version is None and s.schema_report.to_version == LATEST_VERSION
    assert await _columns(backend) == _declared()


async def test_version_1_database_is_upgraded_keeping_data(open_store, backend) -> None:
    s = await open_store()
    await s.jobs.create(NewJob(id="old", user_id="u1", guild_id="g1", command="imagine", options={"prompt": "p"}))
    await s.audit.append(AuditEvent(action="job.done", actor_id="u1", guild_id="g1", prompt="an old prompt"))
    await s.close()
    # Turn it into what version 1 looked like: no jobs.parent_index, no audit_log.prompt_hash,
    # and (to exercise tables added later) no bans table.
    await _raw(backend, "ALTER TABLE jobs DROP COLUMN parent_index", "ALTER TABLE audit_log DROP COLUMN prompt_hash",
               "DROP TABLE bans", "UPDATE schema_version SET version = 1")
    cols = await _columns(backend)
    assert "parent_index" not in cols["jobs"] and "bans" not in cols

    upgraded = await open_store()
    assert upgraded.schema_report.from_version == 1 and upgraded.schema_report.to_version == LATEST_VERSION
    assert upgraded.schema_report.applied[0].startswith("v2:")
    assert await _columns(backend) == _declared()
    old = await upgraded.jobs.get("old")
    assert old is not None and old.parent_index == 0 and old.options == {"prompt": "p"}
    (row,) = await upgraded.audit.query(guild_id="g1")
    assert row.prompt_hash == prompt_hash("an old prompt")  # backfilled
    await upgraded.bans.ban("g1", "u1", moderator_id="m")  # the table exists again
    assert (await open_store()).schema_report.applied == ()


async def test_newer_database_is_refused(open_store, backend) -> None:
    await (await open_store()).close()
    await _raw(backend, f"UPDATE schema_version SET version = {LATEST_VERSION + 1}")
    with pytest.raises(SchemaError, match="newer than this bot"):
        await open_store()


async def test_foreign_tables_are_not_touched(open_store, backend) -> None:
    await _raw(backend, "CREATE TABLE jobs (id INTEGER PRIMARY KEY, something TEXT)")
    with pytest.raises(SchemaError, match="not created by this bot"):
        await open_store()


async def test_two_processes_starting_together_create_the_schema_once(backend, clock) -> None:
    stores = await asyncio.gather(*(Store.open(backend.url, pg_schema=backend.pg_schema, clock=clock)
                                    for _ in range(3)))
    try:
        reports = sorted((s.schema_report.from_version or 0) for s in stores)
        assert reports == [0, LATEST_VERSION, LATEST_VERSION]
    finally:
        for s in stores:
            await s.close()


async def test_postgres_schema_can_be_named_in_the_url(clock) -> None:
    from store_test_backends import PG_URL, pg_admin

    schema = f"aigc_test_url_{uuid.uuid4().hex[:12]}"
    await pg_admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    try:
        s = await Store.open(f"{PG_URL}?schema={schema}", clock=clock)  # created by open()
        try:
            assert s.backend == "postgresql" and s.schema_report.from_version is None
            await s.jobs.create(NewJob(id="j", user_id="u", command="c", options={}))
        finally:
            await s.close()
        reopened = await Store.open(PG_URL, pg_schema=schema, clock=clock)
        assert (await reopened.jobs.get("j")) is not None
        await reopened.close()
    finally:
        await pg_admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

"""Schema versions and the ordered steps that upgrade an older database at start-up.

A new database gets the current tables (``schema.metadata``) and is stamped with
``LATEST_VERSION``. An older one runs every step above its version in order, inside the same
transaction (DDL is transactional on both SQLite and Postgres), then any table that did not
exist yet is created. A database newer than this code is refused: downgrades are not supported.

To change the schema: edit ``schema.py``, append a ``Migration`` below that brings a database
of the previous version to the new layout (``add_column`` for additive changes), and bump
nothing else; ``LATEST_VERSION`` follows the last step.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Column, Connection, func, inspect, select, text, update
from sqlalchemy.schema import CreateColumn

from bot.store import schema
from bot.store.database import utcnow
from bot.store.records import prompt_hash

BASELINE_VERSION = 1


class SchemaError(RuntimeError):
    """The database's schema cannot be used or upgraded by this version of the bot."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int  # the version the database has after this step
    description: str
    apply: Callable[[Connection], None]


@dataclass(frozen=True, slots=True)
class UpgradeReport:
    from_version: int | None  # None: the database was empty
    to_version: int
    applied: tuple[str, ...]


def add_column(conn: Connection, column: Column) -> None:
    """ALTER TABLE ... ADD COLUMN for a column as it is declared in ``schema`` now.

    The column must be nullable or carry a server default, so existing rows get a value."""
    if not (column.nullable or column.server_default is not None):
        raise SchemaError(f"{column.table.name}.{column.name}: an added column needs NULL or a server default")
    existing = {c["name"] for c in inspect(conn).get_columns(column.table.name)}
    if column.name in existing:
        return
    table = conn.dialect.identifier_preparer.format_table(column.table)
    spec = CreateColumn(column).compile(dialect=conn.dialect)
    conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {spec}"))


def _v2_parent_index_and_prompt_hash(conn: Connection) -> None:
    """Jobs remember which output a follow-up started from; audit rows keep a prompt hash
    so that prompts can be dropped (retention, hash-only guilds) and still be matched."""
    add_column(conn, schema.jobs.c.parent_index)
    add_column(conn, schema.audit_log.c.prompt_hash)
    log = schema.audit_log
    rows = conn.execute(select(log.c.id, log.c.prompt).where(log.c.prompt.is_not(None), log.c.prompt_hash.is_(None)))
    for row_id, prompt in rows.all():
        conn.execute(update(log).where(log.c.id == row_id).values(prompt_hash=prompt_hash(prompt)))


def _v3_action_options(conn: Connection) -> None:
    """A follow-up keeps its full options (the parent's) and its own (morph's target) apart."""
    add_column(conn, schema.jobs.c.action_options)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(2, "jobs.parent_index; audit_log.prompt_hash (backfilled)", _v2_parent_index_and_prompt_hash),
    Migration(3, "jobs.action_options", _v3_action_options),
)
LATEST_VERSION = MIGRATIONS[-1].version if MIGRATIONS else BASELINE_VERSION


def upgrade_schema(conn: Connection) -> UpgradeReport:
    """Create or upgrade the schema; call inside one write transaction (see Store.open)."""
    if conn.dialect.name == "postgresql":
        # Two bots starting at once: the second waits here, then finds the schema current.
        conn.execute(select(func.pg_advisory_xact_lock(0x41494743)))  # "AIGC"
    tables = set(inspect(conn).get_table_names())
    sv = schema.schema_version
    now = utcnow()
    if sv.name not in tables:
        ours = set(schema.metadata.tables) & tables
        if ours:
            raise SchemaError(f"the database has store tables ({', '.join(sorted(ours))}) but no schema_version "
                              "table; it was not created by this bot, refusing to touch it")
        schema.metadata.create_all(conn)
        conn.execute(sv.insert().values(id=1, version=LATEST_VERSION, upgraded_at=now))
        return UpgradeReport(None, LATEST_VERSION, ("create all tables",))
    current = conn.execute(select(sv.c.version).where(sv.c.id == 1)).scalar_one_or_none()
    if current is None:
        raise SchemaError("schema_version table is empty; the database is damaged")
    if current > LATEST_VERSION:
        raise SchemaError(f"the database has schema version {current}, newer than this bot understands "
                          f"({LATEST_VERSION}); upgrade the bot (downgrades are not supported)")
    if current == LATEST_VERSION:
        return UpgradeReport(current, LATEST_VERSION, ())
    applied: list[str] = []
    for step in MIGRATIONS:
        if step.version > current:
            step.apply(conn)
            applied.append(f"v{step.version}: {step.description}")
    schema.metadata.create_all(conn, checkfirst=True)  # tables that later versions introduced
    conn.execute(update(sv).where(sv.c.id == 1).values(version=LATEST_VERSION, upgraded_at=now))
    return UpgradeReport(current, LATEST_VERSION, tuple(applied))

"""The async engine behind the store and its transaction helpers.

SQLite: WAL journal, foreign keys on, and every write transaction begins with
``BEGIN IMMEDIATE`` so that a check-then-write (quota reservation, review decision) holds the
write lock from its first read; several bot processes may share one file.
Postgres: write transactions that must be atomic lock rows (``SELECT ... FOR UPDATE``).
"""
from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.dml import Insert
from sqlalchemy import Table

Clock = Callable[[], datetime]

SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class StoreConfigError(ValueError):
    """The store URL or options cannot work; the message says which and why."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def normalize_store_url(url: str | URL) -> URL:
    """Accept the usual spellings and pick the async driver: postgres:// → postgresql+asyncpg."""
    try:
        u = make_url(url)
    except Exception as e:  # sqlalchemy raises ArgumentError with the bad string
        raise StoreConfigError(f"store URL is not a valid SQLAlchemy URL: {e}") from None
    backend = u.get_backend_name()
    if backend in ("postgres", "postgresql"):
        u = u.set(drivername="postgresql+asyncpg")
    elif backend == "sqlite":
        u = u.set(drivername="sqlite+aiosqlite")
    if u.drivername not in SUPPORTED_DRIVERS:
        raise StoreConfigError(
            f"store URL driver {u.drivername!r} is not supported; use sqlite+aiosqlite:///FILE "
            "or postgresql+asyncpg://USER@HOST/DB")
    if u.drivername.startswith("sqlite") and u.database in (None, "", ":memory:"):
        raise StoreConfigError("store URL must name a SQLite file (an in-memory database is not shared "
                               "between connections)")
    return u


class Database:
    """One async engine plus read/write transaction helpers and the store's clock."""

    def __init__(self, engine: AsyncEngine, clock: Clock = utcnow):
        self.engine = engine
        self.clock = clock
        self.dialect = engine.dialect.name
        # In one process, queue SQLite writers here instead of in SQLite's busy-wait loop.
        self._sqlite_write_lock = asyncio.Lock() if self.dialect == "sqlite" else None

    @classmethod
    def create(cls, url: str | URL, *, pg_schema: str | None = None, clock: Clock = utcnow,
               echo: bool = False) -> Database:
        u = normalize_store_url(url)
        if u.drivername.startswith("sqlite"):
            engine = create_async_engine(u, echo=echo, connect_args={"timeout": 30})
            _configure_sqlite(engine)
        else:
            connect_args: dict[str, Any] = {}
            if pg_schema is not None:
                if not _SCHEMA_NAME.match(pg_schema):
                    raise StoreConfigError(f"pg_schema {pg_schema!r} must match {_SCHEMA_NAME.pattern}")
                connect_args["server_settings"] = {"search_path": pg_schema}
            engine = create_async_engine(u, echo=echo, pool_pre_ping=True, connect_args=connect_args)
        return cls(engine, clock)

    def now(self) -> datetime:
        return self.clock()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        if self._sqlite_write_lock is None:
            async with self.engine.connect() as conn:
                async with conn.begin():
                    yield conn
            return
        async with self._sqlite_write_lock:
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(sqlite_begin="IMMEDIATE")
                async with conn.begin():
                    yield conn

    def insert(self, table: Table) -> Insert:
        """A dialect insert that offers ``on_conflict_do_nothing/do_update``."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    async def dispose(self) -> None:
        await self.engine.dispose()


def _configure_sqlite(engine: AsyncEngine) -> None:
    # The recipe from SQLAlchemy's aiosqlite docs: turn off the driver's implicit BEGIN and
    # emit our own, so that we can choose IMMEDIATE and DDL is transactional.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")  # first: the pragmas below may wait on other processes
        _set_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable across app crashes in WAL mode
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def _set_wal(cursor: Any, attempts: int = 100) -> None:
    """Switch a new file to WAL. When several processes open a new file at once, SQLite can
    answer "database is locked" to the switch at once, without its busy handler (seen with
    three stores opening together), so retry; a file already in WAL needs no switch."""
    for attempt in range(attempts):
        try:
            cursor.execute("PRAGMA journal_mode")
            if str(cursor.fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as e:  # the driver's OperationalError (sqlite3's, through the async adapter)
            if "locked" not in str(e) or attempt == attempts - 1:
                raise
            time.sleep(0.05)  # in the driver's connection thread, not on the event loop

"""Store-backed tests run on both backends: a real SQLite file and a real PostgreSQL.

PostgreSQL: $AIGC_TEST_POSTGRES_URL, default postgresql+asyncpg://postgres@127.0.0.1:5432/test
(the CI machine's trust-auth database). Each test gets its own schema, dropped afterwards.
If PostgreSQL cannot be reached the tests FAIL (they are part of the contract), saying how to
start it.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from bot.store import Store

PG_URL = os.environ.get("AIGC_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")


class FakeClock:
    """The store's clock, moved by hand."""

    def __init__(self, start: datetime = datetime(2026, 3, 14, 12, 0, tzinfo=timezone.utc)):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> datetime:
        self.now += timedelta(**kw)
        return self.now


@dataclass
class Backend:
    name: str
    url: str
    pg_schema: str | None = None


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _pg_admin(sql: str) -> None:
    try:
        conn = await asyncpg.connect(_asyncpg_dsn(PG_URL), timeout=5)
    except Exception as e:  # noqa: BLE001 - any failure to connect means the same thing here
        pytest.fail(
            f"PostgreSQL is not reachable at {make_url(PG_URL).render_as_string(hide_password=True)} "
            f"({type(e).__name__}: {e}). The store tests need it: start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` "
            "or point AIGC_TEST_POSTGRES_URL at one.", pytrace=False)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}")
        return
    schema = f"aigc_test_{uuid.uuid4().hex[:16]}"
    await _pg_admin(f'CREATE SCHEMA "{schema}"')
    try:
        yield Backend("postgresql", PG_URL, schema)
    finally:
        await _pg_admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


OpenStore = Callable[[], Awaitable[Store]]


@pytest.fixture
async def open_store(backend: Backend, clock: FakeClock) -> AsyncIterator[OpenStore]:
    """Opens (and at the end closes) stores on the test's backend; call it again to 'restart'."""
    opened: list[Store] = []

    async def _open() -> Store:
        s = await Store.open(backend.url, pg_schema=backend.pg_schema, clock=clock)
        opened.append(s)
        return s

    yield _open
    for s in opened:
        await s.close()


@pytest.fixture
async def store(open_store: OpenStore) -> Store:
    return await open_store()

"""Store-backed tests run on both backends: a real SQLite file and a real PostgreSQL.

PostgreSQL: $AIGC_TEST_POSTGRES_URL, default postgresql+asyncpg://postgres@127.0.0.1:5432/test
(the CI machine's trust-auth database). A test session creates its own schema, empties it
before each test and drops it at the end; tests marked fresh_database get a schema of their own.
If PostgreSQL cannot be reached the tests FAIL (they are part of the contract), saying how to
start it.
"""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bot.store import Store
from bot.store.schema import metadata
from store_test_backends import PG_URL, Backend, FakeClock, pg_admin

BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fresh_database: the test gets an empty database (own Postgres schema)")


@pytest.fixture(scope="session")
def shared_pg_schema() -> Iterator[str]:
    """One migrated schema for the session; tests start from it emptied (much cheaper than
    creating a schema and its tables per test). Tests marked fresh_database get their own."""
    schema = f"aigc_test_{uuid.uuid4().hex[:16]}"

    async def create() -> None:
        await pg_admin(f'CREATE SCHEMA "{schema}"')
        await (await Store.open(PG_URL, pg_schema=schema)).close()

    _run_in_own_loop(create())
    yield schema
    _run_in_own_loop(pg_admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def _run_in_own_loop(coro: Coroutine[Any, Any, None]) -> None:
    """Session set-up runs while a test's loop is running: give it a loop in another thread."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}")
        return
    if request.node.get_closest_marker("fresh_database") is None:
        schema = request.getfixturevalue("shared_pg_schema")
        # DELETE, not TRUNCATE: on tables this small it is several times cheaper
        await pg_admin("; ".join(f'DELETE FROM "{schema}"."{t.name}"'
                                  for t in metadata.sorted_tables if t.name != "schema_version"))
        yield Backend("postgresql", PG_URL, schema)
        return
    schema = f"aigc_test_{uuid.uuid4().hex[:16]}"
    await pg_admin(f'CREATE SCHEMA "{schema}"')
    try:
        yield Backend("postgresql", PG_URL, schema)
    finally:
        await pg_admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


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

from __future__ import annotations

import pytest

from bot.store import Store, StoreConfigError, normalize_store_url


@pytest.mark.parametrize(("given", "expected"), [
    ("sqlite:///data/x.db", "sqlite+aiosqlite:///data/x.db"),
    ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
    ("postgresql://u:p@h:5433/db", "postgresql+asyncpg://u:p@h:5433/db"),
    ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
])
def test_usual_spellings_get_the_async_driver(given: str, expected: str) -> None:
    assert normalize_store_url(given).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize(("given", "message"), [
    ("mysql://h/db", "driver 'mysql' is not supported"),
    ("sqlite://", "must name a SQLite file"),
    ("not a url", "not a valid SQLAlchemy URL"),
])
async def test_unusable_urls_are_refused_before_connecting(given: str, message: str) -> None:
    with pytest.raises(StoreConfigError, match=message):
        await Store.open(given)


async def test_sqlite_parent_directory_is_created_and_wal_is_on(tmp_path) -> None:
    path = tmp_path / "nested" / "dir" / "bot.sqlite3"
    store = await Store.open(f"sqlite:///{path}")
    try:
        assert store.backend == "sqlite" and path.exists()
        async with store._db.read() as conn:
            assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        await store.close()

"""Helpers of the store tests: the PostgreSQL URL, admin SQL, and a hand-moved clock.

PostgreSQL: $AIGC_TEST_POSTGRES_URL, default postgresql+asyncpg://postgres@127.0.0.1:5432/test.
If it cannot be reached the tests FAIL (they are part of the contract), saying how to start it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest
from sqlalchemy.engine import make_url

PG_URL = os.environ.get("AIGC_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


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


async def pg_admin(sql: str) -> None:
    """Run SQL as the test database's owner; FAIL the test if PostgreSQL is not there."""
    problem = None
    try:
        conn = await asyncpg.connect(_asyncpg_dsn(PG_URL), timeout=5)
    except Exception as e:  # noqa: BLE001 - any failure to connect means the same thing here
        problem = f"{type(e).__name__}: {e}"
    if problem is not None:
        pytest.fail(
            f"PostgreSQL is not reachable at {make_url(PG_URL).render_as_string(hide_password=True)} "
            f"({problem}). The store tests need it: start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` "
            "or point AIGC_TEST_POSTGRES_URL at one.", pytrace=False)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()

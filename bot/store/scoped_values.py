"""Raw per-scope setting values (JSON); ``bot.scoped_settings`` validates and resolves them."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, delete, or_, select

from bot.store.database import Database
from bot.store.records import Scope, ScopedValue
from bot.store.schema import scoped_settings as t


def _to_value(row: Any) -> ScopedValue:
    m = row._mapping
    return ScopedValue(guild_id=m["guild_id"], scope=Scope(m["scope"]), scope_id=m["scope_id"], key=m["key"],
                       value=m["value"], updated_at=m["updated_at"])


class ScopedValueRepository:
    def __init__(self, db: Database):
        self._db = db

    async def set(self, guild_id: str, scope: Scope, scope_id: str, key: str, value: Any) -> None:
        now = self._db.now()
        stmt = self._db.insert(t).values(guild_id=guild_id, scope=scope.value, scope_id=scope_id, key=key,
                                         value=value, updated_at=now)
        stmt = stmt.on_conflict_do_update(index_elements=[t.c.guild_id, t.c.scope, t.c.scope_id, t.c.key],
                                          set_={"value": stmt.excluded.value, "updated_at": now})
        async with self._db.write() as conn:
            await conn.execute(stmt)

    async def delete(self, guild_id: str, scope: Scope, scope_id: str, key: str) -> bool:
        async with self._db.write() as conn:
            result = await conn.execute(delete(t).where(
                t.c.guild_id == guild_id, t.c.scope == scope.value, t.c.scope_id == scope_id, t.c.key == key))
        return result.rowcount > 0

    async def get_many(self, guild_id: str, scopes: Sequence[tuple[Scope, str]],
                       keys: Iterable[str] | None = None) -> list[ScopedValue]:
        """Values of the given (scope, scope id) pairs in one guild, optionally for some keys."""
        if not scopes:
            return []
        q = select(t).where(t.c.guild_id == guild_id,
                            or_(*(and_(t.c.scope == s.value, t.c.scope_id == sid) for s, sid in scopes)))
        if keys is not None:
            q = q.where(t.c.key.in_(list(keys)))
        async with self._db.read() as conn:
            rows = (await conn.execute(q)).all()
        return [_to_value(r) for r in rows]

    async def list_guild(self, guild_id: str) -> list[ScopedValue]:
        q = select(t).where(t.c.guild_id == guild_id).order_by(t.c.scope, t.c.scope_id, t.c.key)
        async with self._db.read() as conn:
            rows = (await conn.execute(q)).all()
        return [_to_value(r) for r in rows]

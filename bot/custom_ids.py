"""custom_id of result buttons: `aigc:<action>:<job>[:<index>]`, so buttons keep working after a
restart (the job record is looked up in the store)."""
from __future__ import annotations

import re
from dataclasses import dataclass

PATTERN = r"aigc:(?P<action>[a-z0-9_-]{1,32}):(?P<job>[A-Za-z0-9_-]{1,40})(?::(?P<index>\d{1,2}))?"
_RE = re.compile(PATTERN + r"\Z")


@dataclass(frozen=True)
class ButtonId:
    action: str
    job: str
    index: int | None = None

    def encode(self) -> str:
        out = f"aigc:{self.action}:{self.job}" + ("" if self.index is None else f":{self.index}")
        assert len(out) <= 100, "Discord caps custom_id at 100 characters"
        return out

    @classmethod
    def decode(cls, custom_id: str) -> "ButtonId | None":
        m = _RE.match(custom_id)
        if not m:
            return None
        idx = m.group("index")
        return cls(m.group("action"), m.group("job"), int(idx) if idx is not None else None)

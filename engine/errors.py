"""The one error the engine's rooms raise for a caller: an HTTP status, a code, the field and rule."""
from __future__ import annotations

from dataclasses import dataclass, field as dc_field  # one of the fields is named "field"

from engine.protocol import ErrorInfo


@dataclass
class EngineError(Exception):
    status: int
    code: str
    message: str
    field: str | None = None
    headers: dict[str, str] = dc_field(default_factory=dict)
    rule: str | None = None
    category: str | None = None
    extra: dict[str, str] = dc_field(default_factory=dict)  # more fields for the error body

    def info(self) -> ErrorInfo:
        return ErrorInfo(code=self.code, message=self.message, field=self.field, rule=self.rule,
                         category=self.category)

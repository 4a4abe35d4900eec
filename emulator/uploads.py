"""Request bodies: JSON or multipart (payload_json + files[n]), and attachment resolution."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .errors import ENTITY_TOO_LARGE, ApiError, FormErrors
from .state import World


@dataclass
class Upload:
    field: str  # e.g. "files[0]"
    filename: str
    content_type: str
    data: bytes

    @property
    def index(self) -> int | None:
        if self.field.startswith("files[") and self.field.endswith("]"):
            try:
                return int(self.field[6:-1])
            except ValueError:
                return None
        return None


async def read_body(request: web.Request) -> tuple[Any, list[Upload]]:
    """Parse a Discord request body. Multipart: ``payload_json`` plus ``files[n]`` parts."""
    ctype = request.content_type
    if ctype.startswith("multipart/"):
        payload: Any = {}
        uploads: list[Upload] = []
        reader = await request.multipart()
        async for part in reader:
            name = part.name or ""  # type: ignore[union-attr]
            data = await part.read()  # type: ignore[union-attr]
            if name == "payload_json":
                payload = _loads(data)
            else:
                uploads.append(Upload(
                    field=name,
                    filename=part.filename or name,  # type: ignore[union-attr]
                    content_type=part.headers.get("Content-Type", "application/octet-stream"),  # type: ignore[union-attr]
                    data=bytes(data),
                ))
        return payload, uploads
    raw = await request.read()
    if not raw:
        return None, []
    return _loads(raw), []


def _loads(raw: bytes | bytearray) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, 50109, "The request body contains invalid JSON.") from None


def check_sizes(uploads: list[Upload], limit: int) -> None:
    for up in uploads:
        if len(up.data) > limit:
            raise ApiError(413, ENTITY_TOO_LARGE, "Request entity too large")


def resolve_attachments(
    world: World,
    channel_id: int,
    payload: dict[str, Any],
    uploads: list[Upload],
    existing: list[int] | None,
    limit: int,
) -> list[int] | None:
    """Store uploads and work out the message's attachment ids.

    ``payload["attachments"]`` lists what the message keeps: existing attachments by
    snowflake, new ones by the index n of their ``files[n]`` part. Without that key new
    files are appended to what the message had (None = attachments unchanged).
    """
    check_sizes(uploads, limit)
    by_index = {u.index: u for u in uploads if u.index is not None}
    used: set[int] = set()
    listed = payload.get("attachments")
    if listed is None:
        if not uploads:
            return None
        result = list(existing or [])
        for up in uploads:
            result.append(world.store_file(channel_id, up.filename, up.content_type, up.data).id)
        return result
    errs = FormErrors()
    result = []
    for i, entry in enumerate(listed):
        raw_id = entry.get("id") if isinstance(entry, dict) else None
        try:
            att_id = int(raw_id)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            errs.add(("attachments", i, "id"), "BASE_TYPE_REQUIRED", "This field is required")
            continue
        if existing and att_id in existing:
            result.append(att_id)
        elif att_id in by_index:
            up = by_index[att_id]
            used.add(att_id)
            stored = world.store_file(channel_id, entry.get("filename") or up.filename, up.content_type, up.data,
                                      description=entry.get("description"))
            result.append(stored.id)
        else:
            errs.add(("attachments", i, "id"), "ATTACHMENT_NOT_FOUND", "Unknown attachment")
    errs.raise_if_any()
    return result

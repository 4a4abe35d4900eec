"""Discord-shaped errors: {code, message, errors?} with Discord's JSON error codes.

Handlers raise ``ApiError``; the REST layer turns it into a response whose
Content-Type is exactly ``application/json`` (discord.py compares the string).
"""

from __future__ import annotations

from typing import Any

# JSON error codes used by the emulator (Discord's numbering).
UNKNOWN_CHANNEL = 10003
UNKNOWN_GUILD = 10004
UNKNOWN_MESSAGE = 10008
UNKNOWN_USER = 10013
UNKNOWN_WEBHOOK = 10015
UNKNOWN_APPLICATION_COMMAND = 10063
UNKNOWN_INTERACTION = 10062
EMPTY_MESSAGE = 50006
MISSING_PERMISSIONS = 50013
INVALID_WEBHOOK_TOKEN = 50027
INVALID_FORM_BODY = 50035
ALREADY_ACKNOWLEDGED = 40060
ENTITY_TOO_LARGE = 40005
MAX_DAILY_COMMAND_CREATES = 30034


class FormErrors:
    """Collects field errors into Discord's nested ``errors`` object.

    Paths are tuples of keys/indices, e.g. ``("embeds", 0, "title")`` becomes
    ``{"embeds": {"0": {"title": {"_errors": [...]}}}}``.
    """

    def __init__(self) -> None:
        self.tree: dict[str, Any] = {}

    def add(self, path: tuple[str | int, ...], code: str, message: str) -> None:
        node = self.tree
        for key in path:
            node = node.setdefault(str(key), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def __bool__(self) -> bool:
        return bool(self.tree)

    def raise_if_any(self) -> None:
        if self.tree:
            raise ApiError(400, INVALID_FORM_BODY, "Invalid Form Body", self.tree)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


def form_error(path: tuple[str | int, ...], code: str, message: str) -> ApiError:
    errs = FormErrors()
    errs.add(path, code, message)
    return ApiError(400, INVALID_FORM_BODY, "Invalid Form Body", errs.tree)


def unauthorized() -> ApiError:
    return ApiError(401, 0, "401: Unauthorized")


def not_found(code: int, what: str) -> ApiError:
    return ApiError(404, code, f"Unknown {what}")

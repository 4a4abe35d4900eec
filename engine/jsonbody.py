"""Decoding an untrusted JSON request body: strict UTF-8, bounded nesting, bounded integers,
no lone surrogates. Every refusal names the field (a dotted path into the body) and the rule.

Plain functions, no aiohttp: engine/server.py maps :class:`BodyError` to its JSON error.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 32  # objects/arrays nested deeper than this are refused before parsing
MAX_INT_DIGITS = 32  # wider than any 64/128-bit id; far below Python's 4,300-digit limit
UTF8_CHARSETS = ("utf-8", "utf8")


@dataclass
class BodyError(Exception):
    status: int
    code: str
    field: str
    rule: str

    @property
    def message(self) -> str:
        return f"{self.field}: {self.rule}"

    def __str__(self) -> str:
        return self.message


class _HugeInt:
    """Stands in for an integer literal with too many digits, so that the path can be named."""

    def __init__(self, digits: int) -> None:
        self.digits = digits


# A JSON string (an unterminated one runs to the end of the text), so brackets inside
# strings are not counted. Possessive: linear in the length of the body.
_STRING = re.compile(r'"(?:[^"\\]|\\.?)*+"?', re.S)
_BRACKETS = re.compile(r"[\[\]{}]")


def nesting_depth_exceeds(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether objects/arrays in ``text`` nest deeper than ``limit``. On a valid prefix of
    JSON this agrees with the parser, so json.loads never recurses deeper than this allows."""
    depth = 0
    for m in _BRACKETS.finditer(_STRING.sub("", text)):
        if m.group() in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth = max(0, depth - 1)
    return False


def _parse_int(literal: str) -> int | _HugeInt:
    digits = len(literal.lstrip("-"))
    return _HugeInt(digits) if digits > MAX_INT_DIGITS else int(literal)


def _refuse_constant(name: str) -> Any:
    raise BodyError(400, "invalid_json", "body", f"{name} is not JSON (numbers must be finite)")


def decode_json_body(raw: bytes, charset: str | None = None) -> Any:
    """The body's JSON value; raises BodyError naming the field and the rule."""
    if charset is not None and charset.lower() not in UTF8_CHARSETS:
        raise BodyError(415, "unsupported_media_type", "charset",
                        "must be utf-8 (JSON bodies are UTF-8 only)")
    try:
        text = raw.decode("utf-8-sig")  # strict; a leading byte-order mark is tolerated
    except UnicodeDecodeError as e:
        raise BodyError(400, "invalid_json", "body",
                        f"must be valid UTF-8 (invalid byte at offset {e.start})") from None
    if nesting_depth_exceeds(text):
        raise BodyError(400, "invalid_json", "body",
                        f"objects and arrays may nest at most {MAX_DEPTH} deep")
    try:
        value = json.loads(text, parse_int=_parse_int, parse_constant=_refuse_constant)
    except json.JSONDecodeError as e:
        raise BodyError(400, "invalid_json", "body",
                        f"is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
    except RecursionError:  # cannot happen after the depth check; kept as a guard
        raise BodyError(400, "invalid_json", "body",
                        f"objects and arrays may nest at most {MAX_DEPTH} deep") from None
    check_tree(value)
    return value


def _is_text(s: str) -> bool:
    if s.isascii():
        return True
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _path(parts: list[str | int]) -> str:
    # keys come from the client: each is shortened, so a message stays small
    return ".".join(str(p) if len(str(p)) <= 64 else f"{str(p)[:63]}…" for p in parts) or "body"


def check_tree(value: Any) -> None:
    """Refuse lone surrogates (in keys or strings) and too-wide integers anywhere in a decoded
    JSON value, naming the path (``options.prompt``) of the first in document order."""
    stack: list[tuple[Any, list[str | int]]] = [(value, [])]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            if not _is_text(node):
                raise BodyError(422, "invalid_request", _path(path),
                                "must be valid Unicode text (no lone surrogates)")
        elif isinstance(node, _HugeInt):
            raise BodyError(422, "invalid_request", _path(path),
                            f"integers may have at most {MAX_INT_DIGITS} digits (got {node.digits})")
        elif isinstance(node, float) and not math.isfinite(node):
            raise BodyError(422, "invalid_request", _path(path),
                            "numbers must be finite (at most about 1.8e308)")
        elif isinstance(node, dict):
            for key in node:
                if not _is_text(key):
                    raise BodyError(422, "invalid_request", _path(path),
                                    "keys must be valid Unicode text (no lone surrogates)")
            stack.extend((item, [*path, key]) for key, item in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((item, [*path, i]) for i, item in reversed(list(enumerate(node))))

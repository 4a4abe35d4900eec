"""Application command registry with Discord's validation rules.

Bulk overwrite (PUT) keeps a command's id when (name, type) already exists in that scope,
bumps ``version`` only when the content changed, and counts a *create* for every new
(name, type), which is what Discord's 200-creates-per-day cap counts.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import MAX_DAILY_COMMAND_CREATES, ApiError, FormErrors

LOCALES = frozenset(
    "id da de en-GB en-US es-ES es-419 fr hr it lt hu nl no pl pt-BR ro fi sv-SE vi tr cs el bg ru "
    "uk hi th zh-CN ja zh-TW ko".split()
)
MAX_GLOBAL_SLASH = 100
MAX_CONTEXT_MENUS = 15  # per type (user, message)
MAX_OPTIONS = 25
MAX_CHOICES = 25
MAX_COMMAND_CHARS = 8000
OPTION_SUBCOMMAND, OPTION_GROUP = 1, 2
OPTION_STRING, OPTION_INTEGER, OPTION_NUMBER = 3, 4, 10

Path = tuple[str | int, ...]


def _name_char_ok(ch: str) -> bool:
    # ^[-_'\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]$ without the third-party regex module.
    if ch in "-_'":
        return True
    cp = ord(ch)
    if 0x0900 <= cp <= 0x097F or 0xA8E0 <= cp <= 0xA8FF or 0x0E00 <= cp <= 0x0E7F:
        return True
    return unicodedata.category(ch)[0] in "LN"


def valid_slash_name(name: Any) -> bool:
    return (
        isinstance(name, str)
        and 1 <= len(name) <= 32
        and all(_name_char_ok(c) for c in name)
        and name == name.lower()
    )


def _check_name(errs: FormErrors, path: Path, name: Any, *, slash: bool) -> None:
    if slash:
        if not valid_slash_name(name):
            errs.add(path, "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
    elif not isinstance(name, str) or not (1 <= len(name) <= 32):
        errs.add(path, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")


def _check_localizations(
    errs: FormErrors, path: Path, locs: Any, check: Callable[[Path, Any], None]
) -> None:
    if locs is None:
        return
    if not isinstance(locs, dict):
        errs.add(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        return
    for locale, value in locs.items():
        if locale not in LOCALES:
            errs.add(path + (locale,), "ENUM_TYPE_COERCE", f"Value \"{locale}\" is not a valid enum value.")
        else:
            check(path + (locale,), value)


def _check_description(errs: FormErrors, path: Path, desc: Any) -> None:
    if not isinstance(desc, str) or not (1 <= len(desc) <= 100):
        errs.add(path, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")


def _longest(base: Any, locs: Any) -> int:
    values = [base] + list((locs or {}).values())
    return max((len(v) for v in values if isinstance(v, str)), default=0)


def _validate_options(errs: FormErrors, path: Path, options: Any, depth: int) -> int:
    """Validate an options list; returns the characters it counts toward 8000."""
    if options is None:
        return 0
    if not isinstance(options, list):
        errs.add(path, "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType.")
        return 0
    if len(options) > MAX_OPTIONS:
        errs.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_OPTIONS} or fewer in length.")
    chars = 0
    names: set[str] = set()
    seen_optional = False
    for i, opt in enumerate(options):
        p = path + (i,)
        otype = opt.get("type")
        if not isinstance(otype, int) or not 1 <= otype <= 11:
            errs.add(p + ("type",), "ENUM_TYPE_COERCE", f"Value \"{otype}\" is not a valid enum value.")
        _check_name(errs, p + ("name",), opt.get("name"), slash=True)
        _check_localizations(errs, p + ("name_localizations",), opt.get("name_localizations"),
                             lambda lp, v: _check_name(errs, lp, v, slash=True))
        _check_description(errs, p + ("description",), opt.get("description"))
        _check_localizations(errs, p + ("description_localizations",), opt.get("description_localizations"),
                             lambda lp, v: _check_description(errs, lp, v))
        if opt.get("name") in names:
            errs.add(p + ("name",), "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS", "Option names must be unique")
        names.add(opt.get("name"))
        chars += _longest(opt.get("name"), opt.get("name_localizations"))
        chars += _longest(opt.get("description"), opt.get("description_localizations"))
        if otype in (OPTION_SUBCOMMAND, OPTION_GROUP):
            if depth >= (1 if otype == OPTION_GROUP else 2):
                errs.add(p + ("type",), "APPLICATION_COMMAND_OPTION_TYPE_INVALID", "Subcommands nest at most two levels")
            chars += _validate_options(errs, p + ("options",), opt.get("options"), depth + 1)
            continue
        if opt.get("required"):
            if seen_optional:
                errs.add(p + ("required",), "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                         "Required options must be placed before non-required options")
        else:
            seen_optional = True
        choices = opt.get("choices")
        if choices is not None:
            if opt.get("autocomplete"):
                errs.add(p + ("autocomplete",), "APPLICATION_COMMAND_OPTION_AUTOCOMPLETE_CHOICES",
                         "Autocomplete cannot be set with choices")
            if len(choices) > MAX_CHOICES:
                errs.add(p + ("choices",), "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CHOICES} or fewer in length.")
            for k, ch in enumerate(choices):
                cp = p + ("choices", k)
                name = ch.get("name")
                if not isinstance(name, str) or not (1 <= len(name) <= 100):
                    errs.add(cp + ("name",), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
                _check_localizations(errs, cp + ("name_localizations",), ch.get("name_localizations"),
                                     lambda lp, v: None if isinstance(v, str) and 1 <= len(v) <= 100 else
                                     errs.add(lp, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."))
                value = ch.get("value")
                if otype == OPTION_STRING and (not isinstance(value, str) or len(value) > 100):
                    errs.add(cp + ("value",), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
                chars += _longest(name, ch.get("name_localizations")) + len(str(value))
    return chars


def validate_command(errs: FormErrors, path: Path, cmd: Any) -> None:
    if not isinstance(cmd, dict):
        errs.add(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        return
    ctype = cmd.get("type", 1)
    slash = ctype == 1
    _check_name(errs, path + ("name",), cmd.get("name"), slash=slash)
    _check_localizations(errs, path + ("name_localizations",), cmd.get("name_localizations"),
                         lambda lp, v: _check_name(errs, lp, v, slash=slash))
    chars = _longest(cmd.get("name"), cmd.get("name_localizations"))
    if slash:
        _check_description(errs, path + ("description",), cmd.get("description"))
        _check_localizations(errs, path + ("description_localizations",), cmd.get("description_localizations"),
                             lambda lp, v: _check_description(errs, lp, v))
        chars += _longest(cmd.get("description"), cmd.get("description_localizations"))
        chars += _validate_options(errs, path + ("options",), cmd.get("options"), 0)
    else:
        if cmd.get("description"):
            errs.add(path + ("description",), "APPLICATION_COMMAND_CONTEXT_MENU_DESCRIPTION",
                     "Context menu commands cannot have description")
        if cmd.get("options"):
            errs.add(path + ("options",), "APPLICATION_COMMAND_CONTEXT_MENU_OPTIONS",
                     "Context menu commands cannot have options")
    if chars > MAX_COMMAND_CHARS:
        errs.add(path, "APPLICATION_COMMAND_TOO_LARGE", f"Command exceeds maximum size ({MAX_COMMAND_CHARS})")


def validate_command_list(commands: Any) -> None:
    errs = FormErrors()
    if not isinstance(commands, list):
        errs.add((), "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType.")
        errs.raise_if_any()
    seen: set[tuple[int, str]] = set()
    counts = {1: 0, 2: 0, 3: 0}
    for i, cmd in enumerate(commands):
        validate_command(errs, (i,), cmd)
        if not isinstance(cmd, dict):
            continue
        key = (cmd.get("type", 1), cmd.get("name"))
        if key in seen:
            errs.add((i, "name"), "APPLICATION_COMMANDS_DUPLICATE_NAME", "Application command names must be unique")
        seen.add(key)  # type: ignore[arg-type]
        if key[0] in counts:
            counts[key[0]] += 1
    if counts[1] > MAX_GLOBAL_SLASH:
        errs.add((), "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_GLOBAL_SLASH} or fewer in length.")
    if counts[2] > MAX_CONTEXT_MENUS or counts[3] > MAX_CONTEXT_MENUS:
        errs.add((), "APPLICATION_COMMANDS_CONTEXT_MENU_LIMIT", f"Maximum of {MAX_CONTEXT_MENUS} context menu commands per type")
    errs.raise_if_any()


# Fields Discord stores; anything else the client sends is dropped.
_STORED = (
    "type", "name", "name_localizations", "description", "description_localizations", "options",
    "default_member_permissions", "dm_permission", "nsfw", "contexts", "integration_types",
)


def _content(cmd: dict[str, Any]) -> str:
    return json.dumps({k: cmd.get(k) for k in _STORED}, sort_keys=True)


@dataclass
class CommandRegistry:
    application_id: int
    new_id: Callable[[], int]
    # scope: None = global, else guild id → list of stored commands
    scopes: dict[int | None, list[dict[str, Any]]] = field(default_factory=dict)
    # (scope, "YYYY-MM-DD") → creates counted
    creates: dict[tuple[int | None, str], int] = field(default_factory=dict)
    max_daily_creates: int = 200

    def list(self, guild_id: int | None) -> list[dict[str, Any]]:
        return copy.deepcopy(self.scopes.get(guild_id, []))

    def creates_today(self, guild_id: int | None, now: float) -> int:
        return self.creates.get((guild_id, _day(now)), 0)

    def _store(self, guild_id: int | None, cmd: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        stored: dict[str, Any] = {k: copy.deepcopy(cmd[k]) for k in _STORED if k in cmd}
        stored.setdefault("type", 1)
        stored.setdefault("description", "")
        stored.setdefault("options", [])
        stored.setdefault("default_member_permissions", None)
        stored.setdefault("nsfw", False)
        stored["id"] = old["id"] if old else str(self.new_id())
        stored["application_id"] = str(self.application_id)
        if guild_id is not None:
            stored["guild_id"] = str(guild_id)
        if old is not None and _content(old) == _content(stored):
            stored["version"] = old["version"]
        else:
            stored["version"] = str(self.new_id())
        return stored

    def bulk_overwrite(self, guild_id: int | None, commands: Any, now: float) -> list[dict[str, Any]]:
        validate_command_list(commands)
        existing = {(c["type"], c["name"]): c for c in self.scopes.get(guild_id, [])}
        new = [c for c in commands if (c.get("type", 1), c["name"]) not in existing]
        self._charge_creates(guild_id, len(new), now)
        result = [self._store(guild_id, c, existing.get((c.get("type", 1), c["name"]))) for c in commands]
        self.scopes[guild_id] = result
        return copy.deepcopy(result)

    def upsert(self, guild_id: int | None, cmd: Any, now: float) -> tuple[dict[str, Any], bool]:
        errs = FormErrors()
        validate_command(errs, (), cmd)
        errs.raise_if_any()
        current = self.scopes.setdefault(guild_id, [])
        key = (cmd.get("type", 1), cmd["name"])
        old = next((c for c in current if (c["type"], c["name"]) == key), None)
        if old is None:
            self._charge_creates(guild_id, 1, now)
        stored = self._store(guild_id, cmd, old)
        if old is None:
            current.append(stored)
        else:
            current[current.index(old)] = stored
        return copy.deepcopy(stored), old is None

    def delete(self, guild_id: int | None, command_id: str) -> bool:
        current = self.scopes.get(guild_id, [])
        for c in current:
            if c["id"] == command_id:
                current.remove(c)
                return True
        return False

    def _charge_creates(self, guild_id: int | None, n: int, now: float) -> None:
        key = (guild_id, _day(now))
        if n and self.creates.get(key, 0) + n > self.max_daily_creates:
            tomorrow = _dt.datetime.fromtimestamp(now, _dt.UTC).replace(
                hour=0, minute=0, second=0, microsecond=0) + _dt.timedelta(days=1)
            retry = tomorrow.timestamp() - now
            raise ApiError(
                429, MAX_DAILY_COMMAND_CREATES,
                f"Max number of daily application command creates has been reached ({self.max_daily_creates})",
                extra={"retry_after": round(retry, 3), "global": False},
                headers={"Retry-After": str(int(retry) + 1), "Via": "1.1 google", "X-RateLimit-Scope": "shared"},
            )
        self.creates[key] = self.creates.get(key, 0) + n

    def find(self, guild_id: int | None, name: str, ctype: int = 1) -> dict[str, Any] | None:
        """A command as a user's client sees it: guild commands shadow global ones."""
        for scope in ([guild_id] if guild_id is not None else []) + [None]:
            for c in self.scopes.get(scope, []):
                if c["name"] == name and c["type"] == ctype:
                    return copy.deepcopy(c)
        return None

    def visible(self, guild_id: int | None) -> list[dict[str, Any]]:
        seen: set[tuple[int, str]] = set()
        out = []
        for scope in ([guild_id] if guild_id is not None else []) + [None]:
            for c in self.scopes.get(scope, []):
                if (c["type"], c["name"]) not in seen:
                    seen.add((c["type"], c["name"]))
                    out.append(copy.deepcopy(c))
        return out


def _day(now: float) -> str:
    return _dt.datetime.fromtimestamp(now, _dt.UTC).strftime("%Y-%m-%d")

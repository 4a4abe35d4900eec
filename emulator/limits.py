"""Discord's payload limits for messages, embeds, components, autocomplete and modals.

Each validator fills a ``FormErrors`` with Discord's error codes and messages, so the
caller raises one 400/50035 carrying every broken field, like Discord does.
"""

from __future__ import annotations

from typing import Any

from .errors import EMPTY_MESSAGE, ApiError, FormErrors

MAX_CONTENT = 2000
MAX_EMBEDS = 10
EMBED_TOTAL = 6000
EMBED_TITLE = 256
EMBED_DESCRIPTION = 4096
EMBED_FIELDS = 25
EMBED_FIELD_NAME = 256
EMBED_FIELD_VALUE = 1024
EMBED_FOOTER = 2048
EMBED_AUTHOR = 256
MAX_ACTION_ROWS = 5
MAX_ROW_BUTTONS = 5
CUSTOM_ID_MAX = 100
BUTTON_LABEL_MAX = 80
SELECT_OPTIONS_MAX = 25
SELECT_PLACEHOLDER_MAX = 150
MAX_V2_COMPONENTS = 40
MAX_ATTACHMENTS = 10
AUTOCOMPLETE_CHOICES = 25
CHOICE_NAME_MAX = 100
CHOICE_VALUE_MAX = 100
MODAL_TITLE_MAX = 45

Path = tuple[str | int, ...]


def _max_len(errs: FormErrors, path: Path, value: Any, limit: int) -> None:
    if isinstance(value, str) and len(value) > limit:
        errs.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _len_between(errs: FormErrors, path: Path, value: Any, lo: int, hi: int) -> None:
    if not isinstance(value, str) or not (lo <= len(value) <= hi):
        errs.add(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {lo} and {hi} in length.")


def embed_length(embed: dict[str, Any]) -> int:
    """Characters Discord counts toward the 6000 total."""
    total = len(embed.get("title") or "") + len(embed.get("description") or "")
    total += len((embed.get("footer") or {}).get("text") or "")
    total += len((embed.get("author") or {}).get("name") or "")
    for f in embed.get("fields") or []:
        total += len(f.get("name") or "") + len(f.get("value") or "")
    return total


def validate_embeds(errs: FormErrors, embeds: Any) -> None:
    if not isinstance(embeds, list):
        errs.add(("embeds",), "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType.")
        return
    if len(embeds) > MAX_EMBEDS:
        errs.add(("embeds",), "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length.")
    total = 0
    for i, embed in enumerate(embeds):
        path: Path = ("embeds", i)
        _max_len(errs, path + ("title",), embed.get("title"), EMBED_TITLE)
        _max_len(errs, path + ("description",), embed.get("description"), EMBED_DESCRIPTION)
        _max_len(errs, path + ("footer", "text"), (embed.get("footer") or {}).get("text"), EMBED_FOOTER)
        _max_len(errs, path + ("author", "name"), (embed.get("author") or {}).get("name"), EMBED_AUTHOR)
        fields = embed.get("fields") or []
        if len(fields) > EMBED_FIELDS:
            errs.add(path + ("fields",), "BASE_TYPE_MAX_LENGTH", f"Must be {EMBED_FIELDS} or fewer in length.")
        for j, f in enumerate(fields):
            _len_between(errs, path + ("fields", j, "name"), f.get("name"), 1, EMBED_FIELD_NAME)
            _len_between(errs, path + ("fields", j, "value"), f.get("value"), 1, EMBED_FIELD_VALUE)
        total += embed_length(embed)
    if total > EMBED_TOTAL:
        errs.add(("embeds",), "MAX_EMBED_SIZE_EXCEEDED", f"Embed size exceeds maximum size of {EMBED_TOTAL}")


def _check_custom_id(errs: FormErrors, path: Path, comp: dict[str, Any], seen: set[str]) -> None:
    cid = comp.get("custom_id")
    _len_between(errs, path + ("custom_id",), cid, 1, CUSTOM_ID_MAX)
    if isinstance(cid, str):
        if cid in seen:
            errs.add(path + ("custom_id",), "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated")
        seen.add(cid)


def _validate_interactive(errs: FormErrors, path: Path, comp: dict[str, Any], seen: set[str]) -> None:
    ctype = comp.get("type")
    if ctype == 2:  # button
        _max_len(errs, path + ("label",), comp.get("label"), BUTTON_LABEL_MAX)
        style = comp.get("style")
        if style == 5:
            if not comp.get("url"):
                errs.add(path + ("url",), "BASE_TYPE_REQUIRED", "This field is required")
        elif style == 6:
            if not comp.get("sku_id"):
                errs.add(path + ("sku_id",), "BASE_TYPE_REQUIRED", "This field is required")
        else:
            _check_custom_id(errs, path, comp, seen)
    elif ctype in (3, 5, 6, 7, 8):  # selects
        _check_custom_id(errs, path, comp, seen)
        _max_len(errs, path + ("placeholder",), comp.get("placeholder"), SELECT_PLACEHOLDER_MAX)
        options = comp.get("options")
        if ctype == 3:
            if not isinstance(options, list) or not (1 <= len(options) <= SELECT_OPTIONS_MAX):
                errs.add(path + ("options",), "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {SELECT_OPTIONS_MAX} in length.")
            else:
                for k, opt in enumerate(options):
                    _len_between(errs, path + ("options", k, "label"), opt.get("label"), 1, 100)
                    _len_between(errs, path + ("options", k, "value"), opt.get("value"), 1, 100)


def validate_components(errs: FormErrors, components: Any, flags: int) -> None:
    if not isinstance(components, list):
        errs.add(("components",), "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType.")
        return
    seen: set[str] = set()
    if flags & (1 << 15):  # components v2: any layout, ≤ 40 components in total
        count = 0

        def walk(path: Path, comp: dict[str, Any]) -> None:
            nonlocal count
            count += 1
            _validate_interactive(errs, path, comp, seen)
            for key in ("components",):
                for k, child in enumerate(comp.get(key) or []):
                    walk(path + (key, k), child)
            if isinstance(comp.get("accessory"), dict):
                walk(path + ("accessory",), comp["accessory"])

        for i, comp in enumerate(components):
            walk(("components", i), comp)
        if count > MAX_V2_COMPONENTS:
            errs.add(("components",), "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_V2_COMPONENTS} or fewer in length.")
        return
    if len(components) > MAX_ACTION_ROWS:
        errs.add(("components",), "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ACTION_ROWS} or fewer in length.")
    for i, row in enumerate(components):
        path: Path = ("components", i)
        if row.get("type") != 1:
            errs.add(path + ("type",), "UNION_TYPE_CHOICES", "Value of field \"type\" must be one of (1,).")
            continue
        children = row.get("components") or []
        if not children:
            errs.add(path + ("components",), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
        if len(children) > MAX_ROW_BUTTONS:
            errs.add(path + ("components",), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
        has_select = any(c.get("type") in (3, 5, 6, 7, 8) for c in children)
        if has_select and len(children) > 1:
            errs.add(path + ("components",), "COMPONENT_LAYOUT_WIDTH_EXCEEDED", "The specified component exceeds the maximum width")
        for j, comp in enumerate(children):
            _validate_interactive(errs, path + ("components", j), comp, seen)


def validate_message(payload: dict[str, Any], *, n_files: int = 0, creating: bool = True) -> None:
    """Validate a message create/edit body (content, embeds, components, attachments)."""
    errs = FormErrors()
    content = payload.get("content")
    if content is not None:
        if not isinstance(content, str):
            errs.add(("content",), "STRING_TYPE_CONVERT", "Could not interpret value as string.")
        else:
            _max_len(errs, ("content",), content, MAX_CONTENT)
    flags = int(payload.get("flags") or 0)
    if payload.get("embeds") is not None:
        validate_embeds(errs, payload["embeds"])
    if payload.get("components") is not None:
        validate_components(errs, payload["components"], flags)
    attachments = payload.get("attachments")
    if (isinstance(attachments, list) and len(attachments) > MAX_ATTACHMENTS) or n_files > MAX_ATTACHMENTS:
        errs.add(("attachments",), "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ATTACHMENTS} or fewer in length.")
    errs.raise_if_any()
    if creating and not (
        content or payload.get("embeds") or payload.get("components") or n_files or payload.get("sticker_ids")
        or payload.get("poll")
    ):
        raise ApiError(400, EMPTY_MESSAGE, "Cannot send an empty message")


def validate_autocomplete(data: dict[str, Any]) -> None:
    errs = FormErrors()
    choices = data.get("choices")
    if not isinstance(choices, list):
        errs.add(("data", "choices"), "BASE_TYPE_REQUIRED", "This field is required")
        errs.raise_if_any()
        return
    if len(choices) > AUTOCOMPLETE_CHOICES:
        errs.add(("data", "choices"), "BASE_TYPE_MAX_LENGTH", f"Must be {AUTOCOMPLETE_CHOICES} or fewer in length.")
    for i, choice in enumerate(choices):
        path: Path = ("data", "choices", i)
        _len_between(errs, path + ("name",), choice.get("name"), 1, CHOICE_NAME_MAX)
        value = choice.get("value")
        if isinstance(value, str):
            _max_len(errs, path + ("value",), value, CHOICE_VALUE_MAX)
        elif not isinstance(value, (int, float)) or isinstance(value, bool):
            errs.add(path + ("value",), "BASE_TYPE_REQUIRED", "This field is required")
    errs.raise_if_any()


def validate_modal(data: dict[str, Any]) -> None:
    errs = FormErrors()
    _len_between(errs, ("data", "title"), data.get("title"), 1, MODAL_TITLE_MAX)
    _len_between(errs, ("data", "custom_id"), data.get("custom_id"), 1, CUSTOM_ID_MAX)
    comps = data.get("components")
    if not isinstance(comps, list) or not (1 <= len(comps) <= 5):
        errs.add(("data", "components"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
    errs.raise_if_any()

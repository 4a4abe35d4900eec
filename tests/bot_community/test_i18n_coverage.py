"""Every user-facing string goes through bot.i18n in both locales (issue: zh-CN members got
English cooldown replies). Two static checks over the bot's source:

1. every ``t(locale, "key")`` names a key present in en-US *and* zh-CN, and no call pins the
   locale to a literal (``t("en-US", ...)`` answers a zh-CN member in English);
2. no reply path sends a literal English sentence: the text given to ``send_message``,
   ``followup.send``, ``send``, ``edit_original_response``, ``send_error``, ``_reply`` and
   ``Refused`` must not be a string literal or f-string with words in it.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

from bot.i18n import MESSAGES

BOT = Path(__file__).resolve().parents[2] / "bot"
SOURCES = sorted(BOT.rglob("*.py"))
REPLY_CALLS = {"send_message", "send", "edit_original_response", "edit_message", "send_error", "_reply",
               "Refused", "reply"}
WORDS = re.compile(r"[A-Za-z]{2,}[ ,.;:!?'-]+[A-Za-z]{2,}")


def _calls():
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                yield path.relative_to(BOT.parent), node


def _name(func: ast.expr) -> str | None:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def _literal_text(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
    return None


def test_every_t_key_exists_in_both_locales_and_no_locale_is_pinned():
    missing, pinned, seen = [], [], 0
    for where, call in _calls():
        if _name(call.func) != "t" or len(call.args) < 2:
            continue
        seen += 1
        locale, key = call.args[0], call.args[1]
        if isinstance(locale, ast.Constant):
            pinned.append(f"{where}:{call.lineno}: t({locale.value!r}, ...)")
        if isinstance(key, ast.Constant):
            for loc in ("en-US", "zh-CN"):
                if key.value not in MESSAGES[loc]:
                    missing.append(f"{where}:{call.lineno}: key {key.value!r} missing in {loc}")
    assert seen > 100  # the scan found the bot's t() calls
    assert missing == [] and pinned == [], "\n".join(missing + pinned)


def test_no_reply_path_sends_a_literal_english_sentence():
    found = []
    for where, call in _calls():
        if _name(call.func) not in REPLY_CALLS:
            continue
        texts = list(call.args[:1]) + [k.value for k in call.keywords if k.arg in ("content", "message")]
        for node in texts:
            text = _literal_text(node)
            if text is not None and WORDS.search(text):
                found.append(f"{where}:{call.lineno}: {text[:60]!r}")
    assert found == [], "send these through bot.i18n.t:\n" + "\n".join(found)


def test_the_scan_catches_what_it_should():
    sample = ast.parse('await it.followup.send(f"cooldown: wait {n}s between generations")\n'
                       'raise Refused("You are blocked")\nt("en-US", "quota")')
    calls = [n for n in ast.walk(sample) if isinstance(n, ast.Call)]
    sends = [c for c in calls if _name(c.func) in REPLY_CALLS and WORDS.search(_literal_text(c.args[0]) or "")]
    assert len(sends) == 2


def test_no_message_is_a_bare_pass_through():
    """A template that is only a placeholder (the old ``"quota": "{message}"``) sends whatever
    English the caller formats into it."""
    bare = [(loc, k) for loc, table in MESSAGES.items() for k, v in table.items()
            if re.fullmatch(r"\s*\{\w+\}\s*", v)]
    assert bare == []

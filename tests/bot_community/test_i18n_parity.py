"""Every user-facing string exists in en-US and zh-CN with the same placeholders."""
from __future__ import annotations

import string

from bot.i18n import MESSAGES, t


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_zh_cn_has_every_key_with_the_same_placeholders():
    en, zh = MESSAGES["en-US"], MESSAGES["zh-CN"]
    assert set(en) == set(zh)
    assert {k for k in en if fields(en[k]) != fields(zh[k])} == set()


def test_moderation_strings_format():
    assert "14" in t("zh-CN", "requester_blocked", minutes=14)
    assert t("en-US", "review_you_rejected", link="", reason="spam").endswith("Reason: spam")

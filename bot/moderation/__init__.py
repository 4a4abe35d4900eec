"""Moderated community use: the guild's prompt rules and AutoMod import (``rules``), the
review queue (``review``), the mod-log mirror of the audit log (``audit_mirror``), privacy and
retention (``privacy``), the parts built once for the bot (``service``), and the moderator
commands (``commands`` for `/mod`, nesting ``rule_commands``, ``review_commands``,
``settings_commands``). See README.md.

Nothing is imported here, so importing one room does not import the others.
"""

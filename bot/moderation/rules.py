"""The prompt rules a guild adds to the engine's global list: its own rules (the
``prompt_rules`` setting, managed with `/mod rules`) and its Discord AutoMod keyword rules
(AutoMod does not see what a bot posts, so the engine applies them to prompts).

AutoMod rules are fetched with ``GET /guilds/{id}/auto-moderation/rules`` (needs Manage
Server), cached per guild for ``ttl_s`` and dropped from the cache on AUTO_MODERATION_RULE_*
events. Rules the engine cannot compile are left out one by one (checked once per fetch with
POST /v1/moderate), so one odd AutoMod pattern cannot stop every generation in a guild.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import discord

from bot import engine_client as ec
from engine.protocol import PolicyContext

if TYPE_CHECKING:
    from bot.scoped_settings import CommunitySettings

log = logging.getLogger("aigc.bot.moderation.rules")
AUTOMOD_TTL_S = 300.0
AUTOMOD_ERROR_TTL_S = 60.0  # after a failed fetch, try again sooner
RULE_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
RESERVED_PREFIXES = ("global.", "automod.")
MAX_GUILD_RULES = 100


class RuleDefinitionError(ValueError):
    """A rule a moderator gave cannot be used; the message names the field."""


@dataclass
class _Cached:
    rules: list[dict[str, Any]]
    expires: float
    note: str = ""  # why the list is empty or shorter (no permission, invalid rules left out)


@dataclass
class GuildPolicy:
    client: discord.Client  # the Discord connection: AutoMod rules come over its REST client
    engine: ec.EngineClient
    ttl_s: float = AUTOMOD_TTL_S
    _automod: dict[int, _Cached] = field(default_factory=dict)
    _locks: dict[int, asyncio.Lock] = field(default_factory=dict)

    # ---- AutoMod --------------------------------------------------------------------

    def invalidate(self, guild_id: int) -> None:
        self._automod.pop(guild_id, None)

    async def automod_rules(self, guild_id: int) -> _Cached:
        cached = self._automod.get(guild_id)
        if cached is not None and cached.expires > time.monotonic():
            return cached
        lock = self._locks.setdefault(guild_id, asyncio.Lock())
        async with lock:  # one fetch per guild at a time
            cached = self._automod.get(guild_id)
            if cached is not None and cached.expires > time.monotonic():
                return cached
            cached = await self._fetch(guild_id)
            self._automod[guild_id] = cached
            return cached

    async def _fetch(self, guild_id: int) -> _Cached:
        now = time.monotonic()
        try:
            raw = await self.client.http.get_auto_moderation_rules(guild_id)
        except discord.Forbidden:
            return _Cached([], now + self.ttl_s, "the bot lacks Manage Server, so AutoMod rules are not imported")
        except (discord.HTTPException, asyncio.TimeoutError, OSError) as e:
            log.warning("could not fetch AutoMod rules", extra={"guild": guild_id, "error": repr(e)})
            return _Cached([], now + AUTOMOD_ERROR_TTL_S, f"fetching AutoMod rules failed ({type(e).__name__})")
        rules = [r for r in raw if r.get("trigger_type") == 1 and r.get("enabled", True)]
        usable, dropped = await self._usable(rules)
        note = f"left out (the engine cannot use them): {', '.join(dropped)}" if dropped else ""
        return _Cached(usable, now + self.ttl_s, note)

    async def _usable(self, rules: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
        if not rules:
            return [], []
        try:
            await self.engine.moderate("", automod=rules)
            return rules, []
        except ec.InvalidOption:
            pass
        except ec.EngineClientError:
            return rules, []  # the engine is away: it checks them again with the job
        usable, dropped = [], []
        for r in rules:
            try:
                await self.engine.moderate("", automod=[r])
                usable.append(r)
            except ec.InvalidOption as e:
                dropped.append(str(r.get("name") or r.get("id")))
                log.warning("AutoMod rule left out", extra={"rule": r.get("id"), "error": e.message})
            except ec.EngineClientError:
                usable.append(r)
        return usable, dropped

    # ---- per request ------------------------------------------------------------------

    async def context(self, it: discord.Interaction, settings: "CommunitySettings") -> PolicyContext | None:
        """What travels with the JobRequest: the guild's rules and the AutoMod rules that apply
        to this member in this channel (AutoMod's exempt roles and channels are honoured)."""
        if it.guild_id is None:
            return None
        rules = {"rules": list(settings.prompt_rules)} if settings.prompt_rules else None
        automod = applicable((await self.automod_rules(it.guild_id)).rules, it)
        if rules is None and not automod:
            return None
        return PolicyContext(rules=rules, automod=automod or None)

    def rule_label(self, rule_id: str | None, guild_id: int | None, settings: "CommunitySettings | None") -> str:
        """How a refusal names its rule: the rule's name where the bot knows it, never the term."""
        if not rule_id:
            return "?"
        if rule_id.startswith("automod.") and guild_id is not None:
            cached = self._automod.get(guild_id)
            for r in cached.rules if cached else []:
                if f"automod.{r.get('id')}" == rule_id and r.get("name"):
                    return f"AutoMod: {r['name']}"
            return "AutoMod"
        for r in settings.prompt_rules if settings else []:
            if r.get("id") == rule_id:
                return f"{r['name']} ({rule_id})" if r.get("name") else rule_id
        return rule_id


def applicable(rules: list[dict[str, Any]], it: discord.Interaction) -> list[dict[str, Any]]:
    roles = {str(r.id) for r in getattr(it.user, "roles", [])}
    channel = str(it.channel_id)
    return [r for r in rules
            if channel not in {str(c) for c in r.get("exempt_channels") or []}
            and not roles & {str(x) for x in r.get("exempt_roles") or []}]


def split_list(value: str | None) -> list[str]:
    """`a, b ,c` → [a, b, c]: how moderators type keyword lists in one option."""
    return [p.strip() for p in (value or "").split(",") if p.strip()]


def build_rule(rule_id: str, *, keywords: str | None, regex: str | None, allow: str | None,
               name: str | None, category: str | None, existing: list[dict[str, Any]]) -> dict[str, Any]:
    """A rule object from `/mod rules add` options; shape errors name the option."""
    rule_id = rule_id.strip()
    if not RULE_ID.match(rule_id):
        raise RuleDefinitionError("id: use 1-64 letters, digits, '_', '.', ':' or '-'")
    if rule_id.startswith(RESERVED_PREFIXES):
        raise RuleDefinitionError(f"id: must not start with {' or '.join(RESERVED_PREFIXES)} (reserved)")
    if any(r.get("id") == rule_id for r in existing):
        raise RuleDefinitionError(f"id: a rule {rule_id!r} exists already; remove it first")
    if len(existing) >= MAX_GUILD_RULES:
        raise RuleDefinitionError(f"id: a server may have at most {MAX_GUILD_RULES} rules")
    kws, patterns = split_list(keywords), [regex] if regex and regex.strip() else []
    if not kws and not patterns:
        raise RuleDefinitionError("keywords: give keywords (comma-separated) or a regex")
    rule: dict[str, Any] = {"id": rule_id, "keywords": kws, "regex": patterns, "allow": split_list(allow)}
    if name:
        rule["name"] = name.strip()[:100]
    if category:
        rule["category"] = category.strip()[:32]
    return rule


def engine_error_field(message: str) -> str:
    """The engine names the rule and the field (``guild rules.rules[3] (rule 'x'): keywords[0]:
    ...``); moderators added one rule, so keep the field and the reason only."""
    m = re.search(r"\): (.*)$", message)
    return m.group(1) if m else message.removeprefix("guild rules: ")

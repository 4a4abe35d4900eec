from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel, Field

from bot.scoped_settings import (
    ALL_SCOPES, FIRST_ROLE, GUILD_ONLY, CommunitySettings, Scope, ScopedSettings, SettingScopeError,
    SettingsContext, SettingValueError, UnknownSettingError,
)
from bot.store import Store

CTX = SettingsContext(guild_id="1", channel_id="10", user_id="100", role_ids=("7", "8"))


async def test_defaults_without_overrides(store: Store) -> None:
    s = ScopedSettings(store)
    resolved = await s.resolve(CTX)
    assert resolved == CommunitySettings()
    assert resolved.ai_mark_visible is True and resolved.command_enabled("imagine")
    assert await s.resolve(SettingsContext(guild_id=None, user_id="100")) == CommunitySettings()


async def test_layers_guild_channel_role_user(store: Store) -> None:
    s = ScopedSettings(store)
    await s.set("daily_quota", 10, guild_id="1")
    assert await s.get("daily_quota", CTX) == 10
    await s.set("daily_quota", 20, guild_id="1", scope=Scope.channel, scope_id="10")
    assert await s.get("daily_quota", CTX) == 20
    assert await s.get("daily_quota", SettingsContext(guild_id="1", channel_id="11")) == 10
    await s.set("daily_quota", 50, guild_id="1", scope=Scope.role, scope_id="7")
    await s.set("daily_quota", 30, guild_id="1", scope=Scope.role, scope_id="8")
    assert await s.get("daily_quota", CTX) == 50  # the most generous role
    await s.set("daily_quota", 5, guild_id="1", scope=Scope.user, scope_id="100")
    assert await s.get("daily_quota", CTX) == 5  # the member's own value wins
    await s.set("daily_quota", None, guild_id="1", scope=Scope.role, scope_id="8")
    await s.clear("daily_quota", guild_id="1", scope=Scope.user, scope_id="100")
    assert await s.get("daily_quota", CTX) is None  # an unlimited role wins
    explained = await s.explain("daily_quota", CTX)
    assert [(ly.scope, ly.value) for ly in explained] == [
        (None, 100), (Scope.guild, 10), (Scope.channel, 20), (Scope.role, 50), (Scope.role, None)]
    assert await s.get("daily_quota", SettingsContext(guild_id="2", channel_id="10")) == 100  # other guild


async def test_role_merge_rules(store: Store) -> None:
    s = ScopedSettings(store)
    await s.set("cooldown_s", 30, guild_id="1", scope=Scope.role, scope_id="7")
    await s.set("cooldown_s", 2, guild_id="1", scope=Scope.role, scope_id="8")
    await s.set("max_concurrent_per_user", 4, guild_id="1", scope=Scope.role, scope_id="8")
    resolved = await s.resolve(CTX)
    assert resolved.cooldown_s == 2 and resolved.max_concurrent_per_user == 4
    only7 = await s.resolve(SettingsContext(guild_id="1", user_id="100", role_ids=("7",)))
    assert only7.cooldown_s == 30 and only7.max_concurrent_per_user == 2


async def test_commands_merge_key_by_key(store: Store) -> None:
    s = ScopedSettings(store)
    await s.set("commands", {"imagine": False, "speak": False}, guild_id="1")
    await s.set("commands", {"imagine": True}, guild_id="1", scope=Scope.channel, scope_id="10")
    here = await s.resolve(CTX)
    assert here.command_enabled("imagine") and not here.command_enabled("speak") and here.command_enabled("other")
    elsewhere = await s.resolve(SettingsContext(guild_id="1", channel_id="99"))
    assert not elsewhere.command_enabled("imagine")
    await s.set("commands", {"speak": True}, guild_id="1", scope=Scope.role, scope_id="8")
    await s.set("commands", {"speak": False}, guild_id="1", scope=Scope.role, scope_id="7")
    assert (await s.resolve(CTX)).command_enabled("speak")  # any role allowing it allows it


async def test_allowed_roles_and_channel_flags(store: Store) -> None:
    s = ScopedSettings(store)
    await s.set("allowed_roles", [8, "9"], guild_id="1")
    await s.set("review_enabled", True, guild_id="1", scope=Scope.channel, scope_id="10")
    await s.set("ai_mark_visible", False, guild_id="1")
    resolved = await s.resolve(CTX)
    assert resolved.allowed_roles == ["8", "9"] and resolved.role_allowed(["8"]) and not resolved.role_allowed(["7"])
    assert resolved.review_enabled and not resolved.ai_mark_visible


@pytest.mark.parametrize(("name", "value", "message"), [
    ("daily_quota", -1, "daily_quota: Input should be greater than or equal to 0 (got -1)"),
    ("cooldown_s", "soon", "cooldown_s: Input should be a valid number"),
    ("prompt_storage", "plain", "prompt_storage: Input should be 'full' or 'hash' (got 'plain')"),
    ("review_channel", "#mods", "review_channel: String should match pattern"),
    ("allowed_roles", ["1", "x"], "allowed_roles[1]: String should match pattern"),
    ("commands", {"imagine": "maybe"}, "commands['imagine']: Input should be a valid boolean"),
    ("retention_days", 0, "retention_days: Input should be greater than or equal to 1 (got 0)"),
])
async def test_bad_values_name_the_setting_and_rule(store: Store, name: str, value, message: str) -> None:
    s = ScopedSettings(store)
    with pytest.raises(SettingValueError) as err:
        await s.set(name, value, guild_id="1")
    assert str(err.value).startswith(message)
    assert await store.settings.list_guild("1") == []  # nothing stored


async def test_scope_and_name_errors(store: Store) -> None:
    s = ScopedSettings(store)
    with pytest.raises(SettingScopeError, match="max_concurrent_per_guild: can be set for the server only, not for a channel"):
        await s.set("max_concurrent_per_guild", 3, guild_id="1", scope=Scope.channel, scope_id="10")
    with pytest.raises(SettingScopeError, match="needs the role id"):
        await s.set("daily_quota", 3, guild_id="1", scope=Scope.role)
    with pytest.raises(UnknownSettingError, match="unknown setting 'dialy_quota'; known settings: commands"):
        await s.set("dialy_quota", 3, guild_id="1")


async def test_stale_stored_values_are_ignored(store: Store) -> None:
    s = ScopedSettings(store)
    await store.settings.set("1", Scope.guild, "1", "daily_quota", "lots")  # written under an older rule
    await store.settings.set("1", Scope.channel, "10", "retention_days", 5)  # scope no longer allowed
    resolved = await s.resolve(CTX)
    assert resolved.daily_quota == 100 and resolved.retention_days == 90


class _PluginSettings(BaseModel):
    """Registering more settings is declaring a model."""

    greeting: Annotated[str, ALL_SCOPES, FIRST_ROLE, Field(min_length=1, max_length=20)] = "hello"
    volume: Annotated[int, GUILD_ONLY, Field(ge=0, le=11)] = 5


async def test_custom_registered_defaults(store: Store) -> None:
    s = ScopedSettings(store, _PluginSettings)
    assert (await s.resolve(CTX)).greeting == "hello"
    await s.set("greeting", "hi from 8", guild_id="1", scope=Scope.role, scope_id="8")
    await s.set("greeting", "hi from 7", guild_id="1", scope=Scope.role, scope_id="7")
    assert (await s.resolve(CTX)).greeting == "hi from 7"  # role 7 listed first (highest)
    with pytest.raises(SettingValueError, match=r"volume: Input should be less than or equal to 11 \(got 12\)"):
        await s.set("volume", 12, guild_id="1")

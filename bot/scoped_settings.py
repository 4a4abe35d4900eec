"""Per-guild settings with channel, role and user overrides (in the spirit of Red-DiscordBot's
Config): one typed model declares every setting with its default, its rule and where it may be
set; values live in the store; ``resolve`` merges them for one member in one channel.

Resolution, later layers winning: default < guild < channel < roles < user. When several of
a member's roles set a value, the setting's ``RoleMerge`` picks one (e.g. the most generous
quota). Dict settings (``commands``) merge key by key, so a channel can re-enable one command
that the guild turned off.

    settings = ScopedSettings(store)
    await settings.set("daily_quota", 200, guild_id=g, scope=Scope.role, scope_id=patron_role)
    resolved = await settings.resolve(SettingsContext(guild_id=g, channel_id=c, user_id=u, role_ids=roles))
    resolved.daily_quota, resolved.command_enabled("imagine")
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError

from bot.store import Scope, Store

log = logging.getLogger(__name__)
T = TypeVar("T", bound=BaseModel)


# ---- markers a setting's declaration carries ------------------------------------------


@dataclass(frozen=True, slots=True)
class Scopes:
    """Where a setting may be set. Settings without this marker are guild-wide only."""

    allowed: frozenset[Scope]

    def __init__(self, *scopes: Scope):
        object.__setattr__(self, "allowed", frozenset(scopes))


@dataclass(frozen=True, slots=True)
class RoleMerge:
    """How the values several roles of one member set become one."""

    name: str
    pick: Callable[[list[Any]], Any]


def _highest_none_unlimited(values: list[Any]) -> Any:
    return None if any(v is None for v in values) else max(values)


FIRST_ROLE = RoleMerge("first role (highest first)", lambda vs: vs[0])
LOWEST = RoleMerge("lowest", min)
HIGHEST = RoleMerge("highest", max)
MOST_GENEROUS_QUOTA = RoleMerge("highest (unlimited wins)", _highest_none_unlimited)
ANY_TRUE = RoleMerge("allowed if any role allows", any)

ALL_SCOPES = Scopes(Scope.guild, Scope.channel, Scope.role, Scope.user)
GUILD_AND_CHANNEL = Scopes(Scope.guild, Scope.channel)
GUILD_ONLY = Scopes(Scope.guild)


def _snowflake(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Snowflake = Annotated[str, BeforeValidator(_snowflake), Field(pattern=r"^\d{1,20}$")]
CommandName = Annotated[str, Field(pattern=r"^[-_\w]{1,32}$")]


# ---- the community settings -----------------------------------------------------------


class CommunitySettings(BaseModel):
    """Every per-guild setting of the bot. Add one by adding a field (default, rule, scopes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    commands: Annotated[dict[str, bool], ALL_SCOPES, ANY_TRUE, Field(
        description="command name -> enabled; commands not listed are enabled")] = {}
    allowed_roles: Annotated[list[Snowflake], GUILD_AND_CHANNEL, Field(
        max_length=250, description="roles that may use the bot here; empty: everyone")] = []
    allowed_channels: Annotated[list[Snowflake], GUILD_ONLY, Field(
        max_length=500, description="channels where the bot may be used; empty: everywhere")] = []
    command_roles: Annotated[dict[CommandName, Annotated[list[Snowflake], Field(max_length=250)]], GUILD_ONLY, Field(
        max_length=200, description="command name -> roles that may use it; absent or empty: no extra limit")] = {}
    command_channels: Annotated[dict[CommandName, Annotated[list[Snowflake], Field(max_length=500)]], GUILD_ONLY,
                                Field(max_length=200, description="command name -> the only channels it may be "
                                                                  "used in; absent or empty: anywhere")] = {}
    nsfw_commands: Annotated[list[CommandName], GUILD_ONLY, Field(
        max_length=200, description="commands usable only in age-restricted channels (besides those the "
                                    "catalog marks NSFW)")] = []
    review_enabled: Annotated[bool, GUILD_AND_CHANNEL, Field(
        description="hold outputs for moderator review before publishing")] = False
    review_channel: Annotated[Snowflake | None, GUILD_ONLY, Field(
        description="channel where moderators review held outputs")] = None
    modlog_channel: Annotated[Snowflake | None, GUILD_ONLY, Field(
        description="channel that mirrors the audit log")] = None
    ai_mark_visible: Annotated[bool, GUILD_AND_CHANNEL, Field(
        description="draw the visible 'AI' mark on images")] = True
    cooldown_s: Annotated[float, ALL_SCOPES, LOWEST, Field(
        ge=0, le=86_400, description="seconds between two generations of one member")] = 5.0
    daily_quota: Annotated[int | None, ALL_SCOPES, MOST_GENEROUS_QUOTA, Field(
        ge=0, le=1_000_000, description="outputs per member per UTC day; null: unlimited")] = 100
    max_concurrent_per_user: Annotated[int, ALL_SCOPES, HIGHEST, Field(
        ge=1, le=100, description="jobs one member may have running at once")] = 2
    max_concurrent_per_guild: Annotated[int, GUILD_ONLY, Field(
        ge=1, le=10_000, description="jobs the whole server may have running at once")] = 10
    retention_days: Annotated[int | None, GUILD_ONLY, Field(
        ge=1, le=3650, description="delete job records and audit rows older than this; null: keep")] = 90
    prompt_storage: Annotated[Literal["full", "hash"], GUILD_ONLY, Field(
        description="keep prompts in the audit log in full, or only their sha256")] = "full"
    prompt_rules: Annotated[list[dict[str, Any]], GUILD_ONLY, Field(
        max_length=100, description="the server's own prompt rules (the engine's rule objects: id, name, "
                                    "category, keywords, regex, allow); the engine validates them")] = []

    def command_enabled(self, command: str) -> bool:
        return self.commands.get(command, True)

    def role_allowed(self, role_ids: Iterable[str]) -> bool:
        return not self.allowed_roles or bool(set(self.allowed_roles) & {str(r) for r in role_ids})

    def command_role_allowed(self, command: str, role_ids: Iterable[str]) -> bool:
        roles = self.command_roles.get(command)
        return not roles or bool(set(roles) & {str(r) for r in role_ids})

    def channel_allowed(self, command: str, channel_id: str | None) -> bool:
        """Both the bot-wide channel list and the command's own must let this channel in."""
        here = str(channel_id) if channel_id is not None else None
        return all(not chans or here in chans for chans in (self.allowed_channels, self.command_channels.get(command)))

    def nsfw_only(self, command: str) -> bool:
        return command in self.nsfw_commands


# ---- errors ---------------------------------------------------------------------------


class SettingError(ValueError):
    """A setting name, scope or value was refused; the message names the setting and the rule."""


class UnknownSettingError(SettingError):
    pass


class SettingScopeError(SettingError):
    pass


class SettingValueError(SettingError):
    def __init__(self, name: str, rule: str, got: Any):
        super().__init__(f"{name}: {rule} (got {got!r})")
        self.setting, self.rule, self.got = name, rule, got


# ---- resolution -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SettingsContext:
    """Who asks where. ``role_ids`` highest first (only FIRST_ROLE settings care)."""

    guild_id: str | None
    channel_id: str | None = None
    user_id: str | None = None
    role_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SettingDef:
    name: str
    default: Any
    scopes: frozenset[Scope]
    role_merge: RoleMerge
    merge_keys: bool  # dict settings merge key by key across layers
    description: str
    adapter: TypeAdapter[Any]

    def validate(self, value: Any) -> Any:
        try:
            return self.adapter.validate_python(value)
        except ValidationError as e:
            first = e.errors()[0]
            where = "".join(f"[{p!r}]" for p in first["loc"])
            raise SettingValueError(self.name + where, first["msg"], first.get("input", value)) from None


@dataclass(frozen=True, slots=True)
class Layer:
    """One value that took part in a resolution (for `/mod limits` to show where it came from)."""

    scope: Scope | None  # None: the registered default
    scope_id: str | None
    value: Any


def setting_defs(model: type[BaseModel]) -> dict[str, SettingDef]:
    defs = {}
    for name, info in model.model_fields.items():
        scopes = next((m.allowed for m in info.metadata if isinstance(m, Scopes)), GUILD_ONLY.allowed)
        merge = next((m for m in info.metadata if isinstance(m, RoleMerge)), FIRST_ROLE)
        annotation = Annotated[(info.annotation, *info.metadata)]  # the field's type and its rules
        defs[name] = SettingDef(
            name=name, default=info.get_default(call_default_factory=True), scopes=scopes, role_merge=merge,
            merge_keys=getattr(info.annotation, "__origin__", None) is dict, description=info.description or "",
            adapter=TypeAdapter(annotation))
    return defs


_ARTICLE = {Scope.guild: "the server", Scope.channel: "a channel", Scope.role: "a role", Scope.user: "a member"}


class ScopedSettings(Generic[T]):
    """Typed settings over the store for one settings model (``CommunitySettings`` by default)."""

    def __init__(self, store: Store, model: type[T] = CommunitySettings):  # type: ignore[assignment]
        self._store = store
        self.model = model
        self.defs = setting_defs(model)

    def definition(self, name: str) -> SettingDef:
        try:
            return self.defs[name]
        except KeyError:
            raise UnknownSettingError(f"unknown setting {name!r}; known settings: {', '.join(self.defs)}") from None

    def validate(self, name: str, value: Any, scope: Scope = Scope.guild) -> Any:
        """The checked value, or SettingError naming the setting and the rule it breaks."""
        d = self.definition(name)
        if scope not in d.scopes:
            where = ", ".join(_ARTICLE[s] for s in Scope if s in d.scopes)
            raise SettingScopeError(f"{name}: can be set for {where} only, not for {_ARTICLE[scope]}")
        return d.validate(value)

    async def set(self, name: str, value: Any, *, guild_id: str, scope: Scope = Scope.guild,
                  scope_id: str | None = None) -> Any:
        checked = self.validate(name, value, scope)
        await self._store.settings.set(guild_id, scope, self._scope_id(guild_id, scope, scope_id), name,
                                       self.defs[name].adapter.dump_python(checked, mode="json"))
        return checked

    async def clear(self, name: str, *, guild_id: str, scope: Scope = Scope.guild, scope_id: str | None = None) -> bool:
        self.definition(name)
        return await self._store.settings.delete(guild_id, scope, self._scope_id(guild_id, scope, scope_id), name)

    @staticmethod
    def _scope_id(guild_id: str, scope: Scope, scope_id: str | None) -> str:
        if scope is Scope.guild:
            return guild_id
        if not scope_id:
            raise SettingScopeError(f"a {scope.value} setting needs the {scope.value} id")
        return str(scope_id)

    async def stored(self, name: str, *, guild_id: str, scope: Scope = Scope.guild,
                     scope_id: str | None = None) -> Any:
        """The value stored at exactly this scope, or None when nothing (valid) is stored there."""
        d = self.definition(name)
        key = (scope, self._scope_id(guild_id, scope, scope_id))
        for v in await self._store.settings.get_many(guild_id, [key], keys=[name]):
            try:
                return d.validate(v.value)
            except SettingValueError:
                return None
        return None

    async def resolve(self, ctx: SettingsContext) -> T:
        layers = await self._layers(ctx, None)
        return self.model.model_validate({name: self._merge(self.defs[name], ls, ctx) for name, ls in layers.items()})

    async def get(self, name: str, ctx: SettingsContext) -> Any:
        d = self.definition(name)
        layers = await self._layers(ctx, [name])
        return self._merge(d, layers[name], ctx)

    async def explain(self, name: str, ctx: SettingsContext) -> list[Layer]:
        """The default and every stored value that applies, in the order they are applied."""
        self.definition(name)
        return (await self._layers(ctx, [name]))[name]

    async def _layers(self, ctx: SettingsContext, names: Sequence[str] | None) -> dict[str, list[Layer]]:
        wanted = list(names) if names is not None else list(self.defs)
        layers = {n: [Layer(None, None, self.defs[n].default)] for n in wanted}
        if ctx.guild_id is None:
            return layers  # direct messages: defaults
        scopes: list[tuple[Scope, str]] = [(Scope.guild, ctx.guild_id)]
        if ctx.channel_id:
            scopes.append((Scope.channel, ctx.channel_id))
        scopes += [(Scope.role, r) for r in ctx.role_ids]
        if ctx.user_id:
            scopes.append((Scope.user, ctx.user_id))
        order = {key: i for i, key in enumerate(scopes)}
        stored = await self._store.settings.get_many(ctx.guild_id, scopes, keys=wanted)
        for v in sorted(stored, key=lambda v: order[(v.scope, v.scope_id)]):
            d = self.defs[v.key]
            if v.scope not in d.scopes:
                continue  # the setting's scopes narrowed since it was stored
            try:
                value = d.validate(v.value)
            except SettingValueError as e:  # stored under an older rule: ignore, keep serving
                log.warning("ignoring stored value of %s for %s %s: %s", v.key, v.scope.value, v.scope_id, e)
                continue
            layers[v.key].append(Layer(v.scope, v.scope_id, value))
        return layers

    @staticmethod
    def _merge(d: SettingDef, layers: list[Layer], ctx: SettingsContext) -> Any:
        value = layers[0].value
        roles = [ly.value for ly in layers if ly.scope is Scope.role]
        for ly in layers[1:]:
            if ly.scope is Scope.role:
                continue
            if ly.scope is Scope.user and roles:  # roles come before the member's own value
                value, roles = _apply(d, value, _merge_roles(d, roles)), []
            value = _apply(d, value, ly.value)
        if roles:
            value = _apply(d, value, _merge_roles(d, roles))
        return value


def _apply(d: SettingDef, current: Any, new: Any) -> Any:
    return {**current, **new} if d.merge_keys else new


def _merge_roles(d: SettingDef, values: list[Any]) -> Any:
    if not d.merge_keys:
        return d.role_merge.pick(values)
    keys = {k for v in values for k in v}
    return {k: d.role_merge.pick([v[k] for v in values if k in v]) for k in keys}


__all__ = [
    "ALL_SCOPES", "ANY_TRUE", "FIRST_ROLE", "GUILD_AND_CHANNEL", "GUILD_ONLY", "HIGHEST", "LOWEST",
    "MOST_GENEROUS_QUOTA", "CommandName", "CommunitySettings", "Layer", "RoleMerge", "Scope", "ScopedSettings", "Scopes",
    "SettingDef", "SettingError", "SettingScopeError", "SettingValueError", "SettingsContext", "Snowflake",
    "UnknownSettingError", "setting_defs",
]

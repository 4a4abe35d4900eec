"""The emulated Discord world: users, guilds, channels, messages, files, commands (over 400
lines: one data model whose mutations must all bump ``revision`` the same way).

Plain data and plain functions; no aiohttp. Every mutation bumps ``revision`` and wakes
waiters, so tests and the playground can await "the bot posted something".
Gateway delivery is delegated to a ``Dispatcher`` (the gateway hub) so this module stays
transport-free.
"""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import Callable
from typing import Any, Protocol

from .clock import Clock
from .commands import CommandRegistry
from .config import EmulatorConfig
from .errors import (
    MISSING_PERMISSIONS,
    UNKNOWN_CHANNEL,
    UNKNOWN_GUILD,
    UNKNOWN_MESSAGE,
    UNKNOWN_USER,
    ApiError,
    not_found,
)
from .models import (
    ADMINISTRATOR,
    ALL_PERMISSIONS,
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE,
    DM,
    FLAG_EPHEMERAL,
    GUILD_TEXT,
    Channel,
    Emoji,
    Guild,
    Member,
    Message,
    Role,
    StoredFile,
    User,
)
from .snowflake import SnowflakeFactory, iso_timestamp

# Event data, or a function of the receiving session's intents (e.g. GUILD_CREATE members).
EventData = dict[str, Any] | Callable[[int], dict[str, Any]]


class Dispatcher(Protocol):
    def dispatch(self, event: str, data: EventData, *, guild_id: int | None = None,
                 intent: int | None = None) -> None: ...


class _NullDispatcher:
    def dispatch(self, event: str, data: EventData, *, guild_id: int | None = None,
                 intent: int | None = None) -> None:
        pass


# Gateway intents that gate the events the emulator emits.
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_EXPRESSIONS = 1 << 3
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15


class World:
    def __init__(self, config: EmulatorConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.ids = SnowflakeFactory(clock)
        self.base_url = ""  # set by the server once it is listening
        self.dispatcher: Dispatcher = _NullDispatcher()
        self.revision = 0
        self._changed: asyncio.Event | None = None
        self.reset()

    # ---- lifecycle -------------------------------------------------------------------
    def reset(self) -> None:
        self.users: dict[int, User] = {}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.messages: dict[int, Message] = {}
        self.files: dict[int, StoredFile] = {}
        self.dm_channels: dict[int, int] = {}  # user id → DM channel id
        app_id = self.config.application_id or self.ids.next()
        self.config.application_id = app_id
        self.bot_user = User(id=app_id, username=self.config.bot_username, bot=True)
        self.owner = User(id=self.ids.next(), username=self.config.owner_username)
        self.users[self.bot_user.id] = self.bot_user
        self.users[self.owner.id] = self.owner
        self.commands = CommandRegistry(
            application_id=app_id, new_id=self.ids.next, max_daily_creates=self.config.max_daily_command_creates
        )
        self.touch()

    @property
    def application_id(self) -> int:
        return self.bot_user.id

    def touch(self) -> int:
        """Record a change and wake everyone waiting for one."""
        self.revision += 1
        if self._changed is not None:
            self._changed.set()
            self._changed = None
        return self.revision

    async def wait_until(self, predicate: Callable[[], Any], timeout: float) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked on every change and every 20 ms)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError("condition not met in time")
            if self._changed is None:
                self._changed = asyncio.Event()
            # Also re-check every few ms: predicates may read state outside the world
            # (a discord.py client's cache, the call recorder).
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.02))
            except TimeoutError:
                pass

    def now_iso(self) -> str:
        return iso_timestamp(self.clock.time())

    # ---- lookups ---------------------------------------------------------------------
    def user(self, user_id: int) -> User:
        try:
            return self.users[user_id]
        except KeyError:
            raise not_found(UNKNOWN_USER, "User") from None

    def guild(self, guild_id: int) -> Guild:
        try:
            return self.guilds[guild_id]
        except KeyError:
            raise not_found(UNKNOWN_GUILD, "Guild") from None

    def channel(self, channel_id: int) -> Channel:
        try:
            return self.channels[channel_id]
        except KeyError:
            raise not_found(UNKNOWN_CHANNEL, "Channel") from None

    def message(self, channel_id: int | None, message_id: int) -> Message:
        msg = self.messages.get(message_id)
        if msg is None or msg.deleted or (channel_id is not None and msg.channel_id != channel_id):
            raise not_found(UNKNOWN_MESSAGE, "Message")
        return msg

    # ---- creation --------------------------------------------------------------------
    def create_user(self, username: str, *, bot: bool = False, user_id: int | None = None,
                    locale: str = "en-US") -> User:
        user = User(id=user_id or self.ids.next(), username=username, bot=bot, locale=locale)
        self.users[user.id] = user
        self.touch()
        return user

    def create_guild(
        self,
        name: str,
        *,
        guild_id: int | None = None,
        owner_id: int | None = None,
        bot_permissions: int = DEFAULT_BOT_PERMISSIONS,
        everyone_permissions: int = DEFAULT_EVERYONE,
        channels: tuple[str, ...] = ("general",),
        locale: str = "en-US",
    ) -> Guild:
        gid = guild_id or self.ids.next()
        if gid in self.guilds:
            raise ValueError(f"guild {gid} exists")
        owner = owner_id or self.owner.id
        guild = Guild(id=gid, name=name, owner_id=owner, locale=locale)
        # @everyone shares the guild's id, as on Discord.
        guild.roles[gid] = Role(id=gid, name="@everyone", permissions=everyone_permissions)
        bot_role = Role(id=self.ids.next(), name=self.bot_user.username, permissions=bot_permissions,
                        position=1, managed=True)
        guild.roles[bot_role.id] = bot_role
        joined = self.now_iso()
        guild.members[owner] = Member(user_id=owner, role_ids=[], joined_at=joined)
        guild.members[self.bot_user.id] = Member(user_id=self.bot_user.id, role_ids=[bot_role.id], joined_at=joined)
        self.guilds[gid] = guild
        for ch in channels:
            self._add_channel(guild, ch)
        self.touch()
        self.dispatcher.dispatch(
            "GUILD_CREATE", lambda intents: self.guild_create_payload(
                gid, members=bool(intents & INTENT_GUILD_MEMBERS), joined=True),
            guild_id=gid)
        return guild

    def _add_channel(self, guild: Guild, name: str, ctype: int = GUILD_TEXT, topic: str | None = None) -> Channel:
        ch = Channel(id=self.ids.next(), type=ctype, name=name, guild_id=guild.id,
                     position=len(guild.channel_ids), topic=topic)
        self.channels[ch.id] = ch
        guild.channel_ids.append(ch.id)
        return ch

    def create_channel(self, guild_id: int, name: str, *, ctype: int = GUILD_TEXT, topic: str | None = None,
                       nsfw: bool = False) -> Channel:
        guild = self.guild(guild_id)
        ch = self._add_channel(guild, name, ctype, topic)
        ch.nsfw = nsfw
        self.touch()
        self.dispatcher.dispatch("CHANNEL_CREATE", ch.payload(), guild_id=guild_id, intent=INTENT_GUILDS)
        return ch

    def create_role(self, guild_id: int, name: str, permissions: int) -> Role:
        guild = self.guild(guild_id)
        role = Role(id=self.ids.next(), name=name, permissions=permissions, position=len(guild.roles))
        guild.roles[role.id] = role
        self.touch()
        self.dispatcher.dispatch("GUILD_ROLE_CREATE", {"guild_id": str(guild_id), "role": role.payload()},
                                 guild_id=guild_id, intent=INTENT_GUILDS)
        return role

    def add_member(self, guild_id: int, user_id: int, role_ids: list[int] | None = None,
                   nick: str | None = None) -> Member:
        guild = self.guild(guild_id)
        self.user(user_id)
        member = Member(user_id=user_id, role_ids=list(role_ids or []), joined_at=self.now_iso(), nick=nick)
        guild.members[user_id] = member
        self.touch()
        data = member.payload(self.users[user_id])
        data["guild_id"] = str(guild_id)
        self.dispatcher.dispatch("GUILD_MEMBER_ADD", data, guild_id=guild_id, intent=INTENT_GUILD_MEMBERS)
        return member

    def set_member_roles(self, guild_id: int, user_id: int, role_ids: list[int]) -> Member:
        guild = self.guild(guild_id)
        member = guild.members[user_id]
        member.role_ids = list(role_ids)
        self.touch()
        data = member.payload(self.users[user_id])
        data["guild_id"] = str(guild_id)
        # Discord sends the bot its own member updates without the members intent.
        self.dispatcher.dispatch("GUILD_MEMBER_UPDATE", data, guild_id=guild_id,
                                 intent=None if user_id == self.bot_user.id else 1 << 1)
        return member

    def set_bot_permissions(self, guild_id: int, permissions: int) -> None:
        """Replace the bot's managed role permissions (e.g. drop Manage Expressions)."""
        guild = self.guild(guild_id)
        member = guild.members[self.bot_user.id]
        role = next(guild.roles[r] for r in member.role_ids if guild.roles[r].managed)
        role.permissions = permissions
        self.touch()
        self.dispatcher.dispatch("GUILD_ROLE_UPDATE", {"guild_id": str(guild_id), "role": role.payload()},
                                 guild_id=guild_id, intent=INTENT_GUILDS)

    def set_automod_rules(self, guild_id: int, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Set keyword rules: each {name, keywords, regex_patterns?, allow_list?, enabled?, custom_message?}."""
        guild = self.guild(guild_id)
        stored = []
        for rule in rules:
            stored.append({
                "id": str(self.ids.next()),
                "guild_id": str(guild_id),
                "name": rule.get("name", "Keyword filter"),
                "creator_id": str(guild.owner_id),
                "event_type": 1,
                "trigger_type": 1,
                "trigger_metadata": {
                    "keyword_filter": list(rule.get("keywords", rule.get("keyword_filter", []))),
                    "regex_patterns": list(rule.get("regex_patterns", [])),
                    "allow_list": list(rule.get("allow_list", [])),
                },
                "actions": [{"type": 1, "metadata": {"custom_message": rule.get("custom_message", "")}}],
                "enabled": bool(rule.get("enabled", True)),
                "exempt_roles": [str(r) for r in rule.get("exempt_roles", [])],
                "exempt_channels": [str(c) for c in rule.get("exempt_channels", [])],
            })
        guild.automod_rules = stored
        self.touch()
        return stored

    def dm_channel(self, user_id: int) -> Channel:
        self.user(user_id)
        if user_id in self.dm_channels:
            return self.channels[self.dm_channels[user_id]]
        ch = Channel(id=self.ids.next(), type=DM, recipient_ids=[user_id])
        self.channels[ch.id] = ch
        self.dm_channels[user_id] = ch.id
        self.touch()
        return ch

    # ---- permissions -----------------------------------------------------------------
    def permissions(self, guild_id: int, user_id: int) -> int:
        """Base guild permissions (no channel overwrites; the emulator does not model them)."""
        guild = self.guild(guild_id)
        if user_id == guild.owner_id:
            return ALL_PERMISSIONS
        member = guild.members.get(user_id)
        if member is None:
            return 0
        perms = guild.roles[guild.id].permissions
        for rid in member.role_ids:
            role = guild.roles.get(rid)
            if role:
                perms |= role.permissions
        return ALL_PERMISSIONS if perms & ADMINISTRATOR else perms

    def require(self, guild_id: int | None, perm: int, user_id: int | None = None) -> None:
        if guild_id is None:
            return
        if not self.permissions(guild_id, user_id or self.bot_user.id) & perm:
            raise ApiError(403, MISSING_PERMISSIONS, "Missing Permissions")

    # ---- payloads --------------------------------------------------------------------
    def member_payload(self, guild_id: int, user_id: int, *, with_permissions: bool = False) -> dict[str, Any]:
        guild = self.guild(guild_id)
        perms = self.permissions(guild_id, user_id) if with_permissions else None
        return guild.members[user_id].payload(self.users[user_id], perms)

    def guild_create_payload(self, guild_id: int, *, members: bool = True, joined: bool = False) -> dict[str, Any]:
        """GUILD_CREATE body; without the members intent Discord lists only the bot itself.

        ``joined``: the bot was just added, so no ``unavailable`` key (discord.py then fires
        on_guild_join instead of on_guild_available)."""
        g = self.guild(guild_id)
        data = {
            "id": str(g.id),
            "name": g.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(g.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": g.locale,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "vanity_url_code": None,
            "features": list(g.features),
            "roles": [r.payload() for r in g.roles.values()],
            "emojis": [e.payload(self.users.get(e.user_id)) for e in g.emojis.values()],
            "stickers": [],
            "channels": [self.channels[c].payload() for c in g.channel_ids],
            "threads": [],
            "members": [self.member_payload(g.id, uid) for uid in g.members
                        if members or uid == self.bot_user.id],
            "member_count": len(g.members),
            "large": False,
            "unavailable": False,
            "joined_at": g.members[self.bot_user.id].joined_at,
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "premium_progress_bar_enabled": False,
        }
        if joined:
            del data["unavailable"]
        return data

    def message_payload(self, msg: Message) -> dict[str, Any]:
        author = self.users[msg.author_id]
        data: dict[str, Any] = {
            "id": str(msg.id),
            "channel_id": str(msg.channel_id),
            "type": msg.message_type,
            "content": msg.content,
            "author": author.payload(),
            "timestamp": msg.timestamp,
            "edited_timestamp": msg.edited_timestamp,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [self.files[a].payload(self.base_url) for a in msg.attachment_ids if a in self.files],
            "embeds": msg.embeds,
            "reactions": [],
            "pinned": False,
            "flags": msg.flags,
            "components": msg.components,
        }
        if msg.guild_id is not None:
            data["guild_id"] = str(msg.guild_id)
        if msg.webhook_id is not None:
            data["webhook_id"] = str(msg.webhook_id)
        if msg.application_id is not None:
            data["application_id"] = str(msg.application_id)
        if msg.interaction_metadata is not None:
            data["interaction_metadata"] = msg.interaction_metadata
        return data

    # ---- messages --------------------------------------------------------------------
    def store_file(self, channel_id: int, filename: str, content_type: str, data: bytes,
                   description: str | None = None) -> StoredFile:
        f = StoredFile(id=self.ids.next(), filename=filename, content_type=sniff_content_type(filename, data, content_type),
                       data=data,
                       channel_id=channel_id, description=description)
        self.files[f.id] = f
        return f

    def create_message(self, channel_id: int, author_id: int, payload: dict[str, Any],
                       attachment_ids: list[int], **extra: Any) -> Message:
        ch = self.channel(channel_id)
        msg = Message(
            id=self.ids.next(),
            channel_id=channel_id,
            guild_id=ch.guild_id,
            author_id=author_id,
            content=payload.get("content") or "",
            embeds=list(payload.get("embeds") or []),
            components=list(payload.get("components") or []),
            attachment_ids=list(attachment_ids),
            flags=int(payload.get("flags") or 0),
            timestamp=self.now_iso(),
            **extra,
        )
        if msg.ephemeral:
            for a in msg.attachment_ids:
                self.files[a].ephemeral = True
        self.messages[msg.id] = msg
        ch.last_message_id = msg.id
        msg.revision = self.touch()
        if not msg.ephemeral:
            self._dispatch_message("MESSAGE_CREATE", msg)
        return msg

    def edit_message(self, msg: Message, payload: dict[str, Any], attachment_ids: list[int] | None,
                     *, clear_flags: int = 0) -> Message:
        if "content" in payload:
            msg.content = payload["content"] or ""
        if "embeds" in payload:
            msg.embeds = list(payload["embeds"] or [])
        if "components" in payload:
            msg.components = list(payload["components"] or [])
        if payload.get("flags") is not None:
            # Only SUPPRESS_EMBEDS / IS_COMPONENTS_V2 are editable; keep ephemeral/loading bits.
            msg.flags = (msg.flags & (FLAG_EPHEMERAL | (1 << 7))) | (int(payload["flags"]) & ((1 << 2) | (1 << 15)))
        if attachment_ids is not None:
            msg.attachment_ids = attachment_ids
        first_fill = bool(msg.flags & clear_flags & (1 << 7))  # a deferred reply getting its content
        msg.flags &= ~clear_flags
        if not first_fill:
            msg.edited_timestamp = self.now_iso()
        msg.revision = self.touch()
        if not msg.ephemeral:
            self._dispatch_message("MESSAGE_UPDATE", msg)
        return msg

    def delete_message(self, msg: Message) -> None:
        msg.deleted = True
        msg.revision = self.touch()
        if not msg.ephemeral:
            data: dict[str, Any] = {"id": str(msg.id), "channel_id": str(msg.channel_id)}
            if msg.guild_id is not None:
                data["guild_id"] = str(msg.guild_id)
            self.dispatcher.dispatch("MESSAGE_DELETE", data, guild_id=msg.guild_id,
                                     intent=INTENT_GUILD_MESSAGES if msg.guild_id else INTENT_DIRECT_MESSAGES)

    def _dispatch_message(self, event: str, msg: Message) -> None:
        data = self.message_payload(msg)
        if msg.guild_id is not None and msg.author_id in self.guilds[msg.guild_id].members:
            member = self.member_payload(msg.guild_id, msg.author_id)
            member.pop("user", None)
            data["member"] = member
        if msg.author_id != self.bot_user.id and msg.guild_id is not None:
            mentioned = f"<@{self.bot_user.id}>" in msg.content
            # Without MESSAGE_CONTENT a bot sees guild messages emptied (unless it is mentioned).
            def for_session(intents: int) -> dict[str, Any]:
                if intents & INTENT_MESSAGE_CONTENT or mentioned:
                    return data
                return {**data, "content": "", "embeds": [], "attachments": [], "components": []}

            self.dispatcher.dispatch(event, for_session, guild_id=msg.guild_id, intent=INTENT_GUILD_MESSAGES)
            return
        self.dispatcher.dispatch(event, data, guild_id=msg.guild_id,
                                 intent=INTENT_GUILD_MESSAGES if msg.guild_id else INTENT_DIRECT_MESSAGES)

    def channel_messages(self, channel_id: int, *, viewer_id: int | None = None,
                         include_deleted: bool = False) -> list[Message]:
        """Messages in order; ephemeral ones only for their viewer (None = everyone's view)."""
        out = []
        for m in self.messages.values():
            if m.channel_id != channel_id or (m.deleted and not include_deleted):
                continue
            if m.ephemeral and viewer_id is not None and m.visible_to != viewer_id:
                continue
            out.append(m)
        return sorted(out, key=lambda m: m.id)

    def add_emoji(self, guild_id: int, name: str, size: int, animated: bool) -> Emoji:
        guild = self.guild(guild_id)
        emoji = Emoji(id=self.ids.next(), name=name, user_id=self.bot_user.id, animated=animated, size=size)
        guild.emojis[emoji.id] = emoji
        self.touch()
        self.dispatcher.dispatch(
            "GUILD_EMOJIS_UPDATE",
            {"guild_id": str(guild_id), "emojis": [e.payload(self.users.get(e.user_id)) for e in guild.emojis.values()]},
            guild_id=guild_id, intent=INTENT_GUILD_EXPRESSIONS,
        )
        return emoji


_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"GIF8", "image/gif"), (b"\xff\xd8\xff", "image/jpeg"),
          (b"RIFF", "audio/wav"), (b"OggS", "audio/ogg"))


def sniff_content_type(filename: str, data: bytes, declared: str | None) -> str:
    """Discord derives the type itself: clients (discord.py) send application/octet-stream."""
    if declared and declared != "application/octet-stream":
        return declared
    for magic, ctype in _MAGIC:
        if data.startswith(magic):
            return "image/webp" if magic == b"RIFF" and data[8:12] == b"WEBP" else ctype
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def message_channel_guard(world: World, channel_id: int) -> Channel:
    ch = world.channel(channel_id)
    if ch.guild_id is not None and world.bot_user.id not in world.guilds[ch.guild_id].members:
        raise not_found(UNKNOWN_CHANNEL, "Channel")
    return ch


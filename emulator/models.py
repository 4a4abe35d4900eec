"""In-memory Discord entities and their wire payloads (API v10 shapes discord.py parses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Permission bits the emulator reasons about.
ADMINISTRATOR = 1 << 3
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
USE_APPLICATION_COMMANDS = 1 << 31
MANAGE_GUILD_EXPRESSIONS = 1 << 30  # Manage Expressions
CREATE_GUILD_EXPRESSIONS = 1 << 43
ALL_PERMISSIONS = (1 << 51) - 1
# What @everyone gets in a new guild on Discord: invite, react, view, send, embed, attach,
# history, external emoji, connect, speak, voice activity, nickname, app commands.
DEFAULT_EVERYONE = sum(1 << b for b in (0, 6, 10, 11, 14, 15, 16, 18, 20, 21, 25, 26, 31))
MANAGE_GUILD = 1 << 5
# A typical invite for this bot: chat, files, Manage Expressions (save as emoji) and
# Manage Server (Discord requires it to read AutoMod rules).
DEFAULT_BOT_PERMISSIONS = (
    VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES | (1 << 16) | USE_APPLICATION_COMMANDS
    | MANAGE_GUILD_EXPRESSIONS | MANAGE_GUILD
)

# Message flags
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_COMPONENTS_V2 = 1 << 15


@dataclass
class User:
    id: int
    username: str
    bot: bool = False
    global_name: str | None = None
    avatar: str | None = None
    locale: str = "en-US"  # the user's client language (interaction "locale")

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.username,
            "global_name": self.global_name or self.username,
            "discriminator": "0",
            "avatar": self.avatar,
            "bot": self.bot,
            "public_flags": 0,
            "flags": 0,
        }


@dataclass
class Role:
    id: int
    name: str
    permissions: int
    position: int = 0
    managed: bool = False
    color: int = 0

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": self.color,
            "colors": {"primary_color": self.color, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": self.managed,
            "mentionable": False,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }


@dataclass
class Member:
    user_id: int
    role_ids: list[int]
    joined_at: str
    nick: str | None = None

    def payload(self, user: User, permissions: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "user": user.payload(),
            "roles": [str(r) for r in self.role_ids],
            "joined_at": self.joined_at,
            "nick": self.nick,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "avatar": None,
            "premium_since": None,
            "communication_disabled_until": None,
        }
        if permissions is not None:
            data["permissions"] = str(permissions)
        return data


# Channel types
GUILD_TEXT = 0
DM = 1


@dataclass
class Channel:
    id: int
    type: int
    name: str = ""
    guild_id: int | None = None
    position: int = 0
    topic: str | None = None
    recipient_ids: list[int] = field(default_factory=list)
    last_message_id: int | None = None
    nsfw: bool = False  # age-restricted

    def payload(self, users: dict[int, User] | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "last_message_id": str(self.last_message_id) if self.last_message_id else None,
            "flags": 0,
        }
        if self.type == DM:
            data["recipients"] = [users[u].payload() for u in self.recipient_ids if users and u in users]
            return data
        data.update(
            {
                "name": self.name,
                "guild_id": str(self.guild_id),
                "position": self.position,
                "topic": self.topic,
                "nsfw": self.nsfw,
                "parent_id": None,
                "permission_overwrites": [],
                "rate_limit_per_user": 0,
            }
        )
        return data


@dataclass
class Emoji:
    id: int
    name: str
    user_id: int
    animated: bool = False
    size: int = 0

    def payload(self, user: User | None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "name": self.name,
            "roles": [],
            "require_colons": True,
            "managed": False,
            "animated": self.animated,
            "available": True,
        }
        if user is not None:
            data["user"] = user.payload()
        return data


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    channel_ids: list[int] = field(default_factory=list)
    roles: dict[int, Role] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    emojis: dict[int, Emoji] = field(default_factory=dict)
    automod_rules: list[dict[str, Any]] = field(default_factory=list)
    locale: str = "en-US"
    features: list[str] = field(default_factory=list)


@dataclass
class StoredFile:
    """An uploaded file the emulator serves back (attachments, option uploads)."""

    id: int
    filename: str
    content_type: str
    data: bytes
    channel_id: int
    description: str | None = None
    ephemeral: bool = False

    def payload(self, base_url: str) -> dict[str, Any]:
        url = f"{base_url}/attachments/{self.channel_id}/{self.id}/{self.filename}"
        data: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": len(self.data),
            "url": url,
            "proxy_url": url,
            "content_type": self.content_type,
        }
        dims = image_size(self.data)
        if dims:
            data["width"], data["height"] = dims
        if self.description:
            data["description"] = self.description
        if self.ephemeral:
            data["ephemeral"] = True
        return data


@dataclass
class Message:
    id: int
    channel_id: int
    guild_id: int | None
    author_id: int
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachment_ids: list[int] = field(default_factory=list)
    flags: int = 0
    timestamp: str = ""
    edited_timestamp: str | None = None
    # Set for interaction responses / followups.
    webhook_id: int | None = None
    application_id: int | None = None
    interaction_id: int | None = None
    # Who may see an ephemeral message.
    visible_to: int | None = None
    message_type: int = 0
    deleted: bool = False
    interaction_metadata: dict[str, Any] | None = None
    # Order in which the emulator saw it (for playground polling).
    revision: int = 0

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & FLAG_EPHEMERAL)


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width/height for PNG and GIF (enough for the emulator's attachment payloads)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    return None

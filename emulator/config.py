"""Emulator configuration: one frozen-ish dataclass the server and tests share."""

from __future__ import annotations

from dataclasses import dataclass

# Discord's privileged intents: GUILD_MEMBERS, GUILD_PRESENCES, MESSAGE_CONTENT.
PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | (1 << 15)

DEFAULT_ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024  # Discord's default since 2025


@dataclass
class RateLimitConfig:
    """Per-bucket limits announced in X-RateLimit-* headers and enforced with 429s.

    Interaction callbacks are exempt, as on Discord.
    """

    limit: int = 5
    window_s: float = 1.0


@dataclass
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0 = ephemeral (tests)
    token: str = "emulator-bot-token"
    application_id: int = 0  # 0 = generated at start
    bot_username: str = "AIGC Bot"
    application_name: str = "AIGC Bot"
    owner_username: str = "owner"
    # Transport compression is sent only when the client asks and this is on.
    allow_zlib_stream: bool = True
    # Privileged intents the "developer portal" has enabled for this app.
    allowed_privileged_intents: int = 0
    shard_count: int = 1  # what GET /gateway/bot recommends
    heartbeat_interval_ms: int = 41250
    # A real gateway's ACK comes a network round trip after the heartbeat. discord.py measures
    # latency from when its keep-alive thread sees the send finish; an ACK on loopback can beat
    # that thread, and then reads as a whole interval late ("Can't keep up ... 41.3s behind").
    heartbeat_ack_delay_ms: int = 50
    ack_deadline_s: float = 3.0  # initial response window
    token_ttl_s: float = 15 * 60.0  # interaction token lifetime
    attachment_size_limit: int = DEFAULT_ATTACHMENT_SIZE_LIMIT
    rate_limit: RateLimitConfig | None = None  # None = no rate limiting
    max_daily_command_creates: int = 200
    # Events kept per session for RESUME replay.
    resume_buffer: int = 1000
    # Recorded calls/events kept (oldest dropped), so a long-running playground stays small.
    max_records: int = 100_000

"""The gateway: HELLO/IDENTIFY/READY/GUILD_CREATE, heartbeats, RESUME, op 7/9, shards, zlib-stream.

A *session* outlives its websocket *connection*: while disconnected it keeps numbering
and buffering dispatches, so a RESUME replays what the bot missed, as on Discord.
Every frame to a connection goes through one writer task, which keeps the order and
feeds one zlib compressor per connection (Z_SYNC_FLUSH per message).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from .config import PRIVILEGED_INTENTS, EmulatorConfig
from .recorder import Recorder
from .snowflake import shard_for
from .state import INTENT_GUILD_MEMBERS, EventData, World

# Opcodes
DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE, VOICE_STATE = 0, 1, 2, 3, 4
RESUME, RECONNECT, REQUEST_MEMBERS, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 6, 7, 8, 9, 10, 11
# Close codes
UNKNOWN_OPCODE, DECODE_ERROR, NOT_AUTHENTICATED, AUTH_FAILED, ALREADY_AUTHENTICATED = 4001, 4002, 4003, 4004, 4005
INVALID_SHARD, INVALID_API_VERSION, INVALID_INTENTS, DISALLOWED_INTENTS = 4010, 4012, 4013, 4014


class NotConnected(RuntimeError):
    """No bot session can receive the event (nobody connected for that shard)."""


class Connection:
    def __init__(self, ws: web.WebSocketResponse, zlib_stream: bool) -> None:
        self.ws = ws
        self.compressor = zlib.compressobj() if zlib_stream else None
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.session: Session | None = None
        self.closed_by_server = False

    def send(self, frame: dict[str, Any]) -> None:
        self.queue.put_nowait(frame)

    async def writer(self) -> None:
        while True:
            frame = await self.queue.get()
            if frame is None or self.ws.closed:
                return
            text = json.dumps(frame, separators=(",", ":"))
            try:
                if self.compressor is not None:
                    data = self.compressor.compress(text.encode()) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
                    await self.ws.send_bytes(data)
                else:
                    await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return


@dataclass
class Session:
    id: str
    shard: tuple[int, int] | None
    intents: int
    seq: int = 0
    buffer: deque[dict[str, Any]] = field(default_factory=deque)
    conn: Connection | None = None
    invalid: bool = False

    def matches(self, guild_id: int | None) -> bool:
        if self.shard is None:
            return True
        sid, count = self.shard
        return (shard_for(guild_id, count) if guild_id is not None else 0) == sid


class GatewayHub:
    def __init__(self, world: World, recorder: Recorder, config: EmulatorConfig) -> None:
        self.world = world
        self.recorder = recorder
        self.config = config
        self.sessions: dict[str, Session] = {}
        self.connections: set[Connection] = set()
        # One entry per websocket accepted: its query string and whether frames are zlib-stream.
        self.connection_log: list[dict[str, Any]] = []
        self.ws_url = ""  # set by the server

    # ---- outbound ------------------------------------------------------------------------
    def _send_raw(self, conn: Connection, session: Session | None, frame: dict[str, Any]) -> None:
        self.recorder.gateway(time=self.world.clock.time(), direction="send",
                              session_id=session.id if session else None,
                              shard=list(session.shard) if session and session.shard else None,
                              op=frame["op"], t=frame.get("t"), s=frame.get("s"), d=frame.get("d"))
        conn.send(frame)

    def _dispatch_to(self, session: Session, event: str, data: dict[str, Any]) -> None:
        session.seq += 1
        frame = {"op": DISPATCH, "t": event, "s": session.seq, "d": data}
        session.buffer.append(frame)
        while len(session.buffer) > self.config.resume_buffer:
            session.buffer.popleft()
        if session.conn is not None:
            self._send_raw(session.conn, session, frame)
        else:
            self.recorder.gateway(time=self.world.clock.time(), direction="buffered", session_id=session.id,
                                  shard=list(session.shard) if session.shard else None,
                                  op=DISPATCH, t=event, s=session.seq, d=data)

    def dispatch(self, event: str, data: EventData, *, guild_id: int | None = None,
                 intent: int | None = None) -> None:
        for session in list(self.sessions.values()):
            if session.invalid or not session.matches(guild_id):
                continue
            if intent is not None and not session.intents & intent:
                continue
            self._dispatch_to(session, event, data(session.intents) if callable(data) else data)

    def session_for(self, guild_id: int | None) -> Session:
        live = [s for s in self.sessions.values() if not s.invalid and s.matches(guild_id)]
        if not live:
            raise NotConnected("no gateway session for that guild's shard")
        connected = [s for s in live if s.conn is not None]
        return (connected or live)[-1]

    def send_interaction(self, guild_id: int | None, payload: dict[str, Any]) -> None:
        """INTERACTION_CREATE goes to exactly one session (the shard's newest)."""
        self._dispatch_to(self.session_for(guild_id), "INTERACTION_CREATE", payload)

    # ---- control ---------------------------------------------------------------------------
    def _pick(self, session_id: str | None) -> Session:
        if session_id is not None:
            return self.sessions[session_id]
        live = [s for s in self.sessions.values() if s.conn is not None]
        if not live:
            raise NotConnected("no connected session")
        return live[-1]

    async def request_reconnect(self, session_id: str | None = None) -> str:
        session = self._pick(session_id)
        assert session.conn is not None
        self._send_raw(session.conn, session, {"op": RECONNECT, "d": None, "s": None, "t": None})
        return session.id

    async def invalidate(self, session_id: str | None = None, *, resumable: bool = False) -> str:
        session = self._pick(session_id)
        if not resumable:
            session.invalid = True
        assert session.conn is not None
        self._send_raw(session.conn, session, {"op": INVALID_SESSION, "d": resumable, "s": None, "t": None})
        return session.id

    async def drop(self, session_id: str | None = None, code: int = 4000) -> str:
        """Close the socket under the bot (a network blip); the session stays resumable."""
        session = self._pick(session_id)
        conn = session.conn
        session.conn = None
        if conn is not None:
            conn.closed_by_server = True
            conn.queue.put_nowait(None)
            await conn.ws.close(code=code)
        return session.id

    async def close_all(self) -> None:
        for conn in list(self.connections):
            conn.closed_by_server = True
            conn.queue.put_nowait(None)
            await conn.ws.close(code=1001)
        self.sessions.clear()

    # ---- inbound ---------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        zlib_stream = request.query.get("compress") == "zlib-stream" and self.config.allow_zlib_stream
        conn = Connection(ws, zlib_stream)
        self.connection_log.append({"query": dict(request.query), "zlib_stream": zlib_stream})
        self.connections.add(conn)
        writer = asyncio.create_task(conn.writer())
        try:
            if request.query.get("v", "10") not in ("9", "10"):
                await ws.close(code=INVALID_API_VERSION, message=b"Invalid API version")
                return ws
            if request.query.get("encoding", "json") != "json":
                await ws.close(code=DECODE_ERROR, message=b"Only JSON encoding is emulated")
                return ws
            self._send_raw(conn, None, {"op": HELLO, "d": {"heartbeat_interval": self.config.heartbeat_interval_ms},
                                        "s": None, "t": None})
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    if msg.type == WSMsgType.BINARY:
                        await ws.close(code=DECODE_ERROR, message=b"Decode error")
                    break
                try:
                    frame = json.loads(msg.data)
                    op = frame["op"]
                except (ValueError, KeyError, TypeError):
                    await ws.close(code=DECODE_ERROR, message=b"Decode error")
                    break
                session = conn.session
                self.recorder.gateway(time=self.world.clock.time(), direction="recv",
                                      session_id=session.id if session else None,
                                      shard=list(session.shard) if session and session.shard else None,
                                      op=op, t=None, s=None, d=_redact(frame.get("d")))
                close = await self._on_frame(conn, op, frame.get("d"))
                if close is not None:
                    await self._close(conn, *close)
                    break
        finally:
            if conn.session is not None and conn.session.conn is conn:
                conn.session.conn = None
                if ws.close_code in (1000, 1001) and not conn.closed_by_server:
                    # A client's clean close ends its session on Discord: nothing to resume.
                    conn.session.invalid = True
            conn.queue.put_nowait(None)
            self.connections.discard(conn)
            await asyncio.wait([writer], timeout=1.0)
            if not ws.closed:
                await ws.close()
        return ws

    async def _close(self, conn: Connection, code: int, reason: str) -> None:
        # Let queued frames (e.g. an op 9) reach the bot before the close frame.
        conn.closed_by_server = True
        conn.queue.put_nowait(None)
        await asyncio.sleep(0)
        await conn.ws.close(code=code, message=reason.encode())

    async def _on_frame(self, conn: Connection, op: int, d: Any) -> tuple[int, str] | None:
        if op == HEARTBEAT:
            ack = {"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None}
            asyncio.get_running_loop().call_later(self.config.heartbeat_ack_delay_ms / 1000.0,
                                                  self._send_raw, conn, conn.session, ack)
            return None
        if op == IDENTIFY:
            if conn.session is not None:
                return ALREADY_AUTHENTICATED, "Already authenticated"
            return self._identify(conn, d or {})
        if op == RESUME:
            if conn.session is not None:
                return ALREADY_AUTHENTICATED, "Already authenticated"
            return self._resume(conn, d or {})
        if conn.session is None:
            return NOT_AUTHENTICATED, "Not authenticated"
        if op == REQUEST_MEMBERS:
            self._members_chunk(conn.session, d or {})
            return None
        if op in (PRESENCE, VOICE_STATE):
            return None
        return UNKNOWN_OPCODE, "Unknown opcode"

    def _identify(self, conn: Connection, d: dict[str, Any]) -> tuple[int, str] | None:
        cfg, world = self.config, self.world
        if d.get("token") != cfg.token:
            return AUTH_FAILED, "Authentication failed"
        intents = d.get("intents")
        if not isinstance(intents, int) or intents < 0 or intents >= 1 << 26:
            return INVALID_INTENTS, "Invalid intent(s)"
        if intents & PRIVILEGED_INTENTS & ~cfg.allowed_privileged_intents:
            return DISALLOWED_INTENTS, "Disallowed intent(s)"
        shard = d.get("shard")
        if shard is not None:
            if (not isinstance(shard, list) or len(shard) != 2 or not all(isinstance(x, int) for x in shard)
                    or shard[1] < 1 or not 0 <= shard[0] < shard[1]):
                return INVALID_SHARD, "Invalid shard"
        session = Session(id=secrets.token_hex(16), shard=tuple(shard) if shard else None, intents=intents)
        self.sessions[session.id] = session
        session.conn = conn
        conn.session = session
        guild_ids = [g for g in world.guilds if session.matches(g) and world.bot_user.id in world.guilds[g].members]
        user = world.bot_user.payload()
        user.update({"verified": True, "mfa_enabled": False, "email": None})
        ready: dict[str, Any] = {
            "v": 10,
            "user": user,
            "guilds": [{"id": str(g), "unavailable": True} for g in guild_ids],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.ws_url,
            "application": {"id": str(world.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "user_settings": {},
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
        }
        if shard is not None:
            ready["shard"] = list(shard)
        self._dispatch_to(session, "READY", ready)
        for gid in guild_ids:
            payload = world.guild_create_payload(gid, members=bool(intents & INTENT_GUILD_MEMBERS))
            self._dispatch_to(session, "GUILD_CREATE", payload)
        return None

    def _resume(self, conn: Connection, d: dict[str, Any]) -> tuple[int, str] | None:
        if d.get("token") != self.config.token:
            return AUTH_FAILED, "Authentication failed"
        session = self.sessions.get(d.get("session_id") or "")
        seq = d.get("seq") or 0
        oldest = session.buffer[0]["s"] if session and session.buffer else (session.seq + 1 if session else 0)
        if session is None or session.invalid or seq < oldest - 1 or seq > session.seq:
            self._send_raw(conn, None, {"op": INVALID_SESSION, "d": False, "s": None, "t": None})
            return None
        if session.conn is not None and session.conn is not conn:
            stale = session.conn
            stale.queue.put_nowait(None)
            asyncio.ensure_future(stale.ws.close(code=4000))
        session.conn = conn
        conn.session = session
        for frame in list(session.buffer):
            if frame["s"] > seq:
                self._send_raw(conn, session, frame)
        self._dispatch_to(session, "RESUMED", {})
        return None

    def _members_chunk(self, session: Session, d: dict[str, Any]) -> None:
        world = self.world
        gid = int(d.get("guild_id") or 0)
        if gid not in world.guilds:
            return
        guild = world.guilds[gid]
        wanted = {int(u) for u in d.get("user_ids") or []}
        query = d.get("query")
        members = [
            world.member_payload(gid, uid) for uid in guild.members
            if (not wanted or uid in wanted)
            and (not query or world.users[uid].username.lower().startswith(str(query).lower()))
        ]
        limit = d.get("limit") or 0
        if limit:
            members = members[:limit]
        chunk: dict[str, Any] = {"guild_id": str(gid), "members": members, "chunk_index": 0, "chunk_count": 1}
        if d.get("nonce"):
            chunk["nonce"] = d["nonce"]
        self._dispatch_to(session, "GUILD_MEMBERS_CHUNK", chunk)


def _redact(d: Any) -> Any:
    if isinstance(d, dict) and "token" in d:
        return {**d, "token": "<redacted>"}
    return d

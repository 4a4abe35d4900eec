"""The emulator process: one aiohttp app serving REST v10, the gateway, attachments, the
control API and the playground, plus the in-process Python API tests use directly.

    async with Emulator(EmulatorConfig(ack_deadline_s=1.0)) as emu:
        guild = emu.create_guild("Test")
        ...
"""

from __future__ import annotations

import asyncio
import mimetypes
import statistics
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .clock import Clock
from .config import EmulatorConfig
from .gateway import GatewayHub
from .interactions import InteractionRecord, Interactions
from .models import Channel, Guild, Member, Message, Role, StoredFile, User
from .ratelimit import RateLimiter
from .recorder import GatewayEvent, Recorder, RestCall
from .rest import RestApi
from .state import World
from .uploads import Upload

API_VERSION = 10
RecordRef = InteractionRecord | int | str


def file(filename: str, data: bytes, content_type: str | None = None) -> Upload:
    """A file a user attaches to a command option (``options={"image": file(...)}``)."""
    ctype = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return Upload(field="option", filename=filename, content_type=ctype, data=data)


class Emulator:
    def __init__(self, config: EmulatorConfig | None = None, *, clock: Clock | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.clock = clock or Clock()
        self.recorder = Recorder(self.config.max_records)
        self.world = World(self.config, self.clock)
        self.interactions = Interactions(self.world)
        self.hub = GatewayHub(self.world, self.recorder, self.config)
        self.world.dispatcher = self.hub
        self.limiter = RateLimiter(self.clock, self.config.rate_limit)
        self.rest = RestApi(self.world, self.interactions, self.hub, self.recorder, self.limiter)
        self.app = self._build_app()
        self._runner: web.AppRunner | None = None
        self.port = self.config.port
        # Set when the server starts shutting down: long polls (/_control/wait) answer at once,
        # so stopping never waits for a browser tab's open request to time out.
        self.closing = False
        self.open_long_polls = 0  # /_control/wait requests in flight

    def _build_app(self) -> web.Application:
        from .control import ControlApi
        from .playground import playground_routes

        app = web.Application(middlewares=[self.rest.middleware], client_max_size=256 * 1024 * 1024)
        routes = self.rest.routes(f"/api/v{API_VERSION}")
        app.add_routes(routes)
        app.add_routes([
            web.get("/gateway", self.hub.handle),
            web.get("/", self.hub_or_index),
            web.get("/attachments/{channel_id}/{file_id}/{filename}", self.serve_attachment),
        ])
        app.add_routes(ControlApi(self).routes())
        app.add_routes(playground_routes())
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_shutdown(self, app: web.Application) -> None:
        # aiohttp runs this after it stops listening and before it waits for in-flight
        # handlers: wake every long poll so it answers now.
        self.closing = True
        self.world.touch()

    async def hub_or_index(self, request: web.Request) -> web.StreamResponse:
        # discord.py connects to the gateway URL's root; browsers land on the playground.
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.hub.handle(request)
        raise web.HTTPFound("/playground")

    async def serve_attachment(self, request: web.Request) -> web.Response:
        try:
            stored = self.world.files[int(request.match_info["file_id"])]
        except (KeyError, ValueError):
            raise web.HTTPNotFound() from None
        if request.match_info["filename"] != stored.filename:
            raise web.HTTPNotFound()
        return web.Response(body=stored.data, headers={"Content-Type": stored.content_type})

    # ---- lifecycle --------------------------------------------------------------------------
    async def start(self) -> Emulator:
        self.closing = False
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        self.port = self._runner.addresses[0][1]  # the real port when 0 (ephemeral) was asked
        self.world.base_url = self.base_url
        self.hub.ws_url = self.gateway_url
        return self

    async def stop(self) -> None:
        await self.hub.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Emulator:
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    @property
    def public_host(self) -> str:
        """The host in the URLs it hands out: loopback when it binds every address."""
        host = self.config.host
        if host in ("", "0.0.0.0"):
            return "127.0.0.1"
        if host == "::":
            return "[::1]"
        return f"[{host}]" if ":" in host else host

    @property
    def base_url(self) -> str:
        return f"http://{self.public_host}:{self.port}"

    @property
    def api_base(self) -> str:
        """What discord.py's ``Route.BASE`` should be."""
        return f"{self.base_url}/api/v{API_VERSION}"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.public_host}:{self.port}/"

    @property
    def playground_url(self) -> str:
        return f"{self.base_url}/playground"

    @property
    def token(self) -> str:
        return self.config.token

    @property
    def application_id(self) -> int:
        return self.world.application_id

    @property
    def bot_user(self) -> User:
        return self.world.bot_user

    def reset(self) -> None:
        """Forget everything (guilds, users, messages, commands, calls); sessions stay."""
        self.world.reset()
        self.interactions.clear()
        self.recorder.clear()
        self.limiter.reset()

    # ---- building the world -----------------------------------------------------------------
    def create_guild(self, name: str, **kw: Any) -> Guild:
        return self.world.create_guild(name, **kw)

    def create_channel(self, guild_id: int, name: str, **kw: Any) -> Channel:
        return self.world.create_channel(guild_id, name, **kw)

    def create_user(self, username: str, **kw: Any) -> User:
        return self.world.create_user(username, **kw)

    def create_role(self, guild_id: int, name: str, permissions: int) -> Role:
        return self.world.create_role(guild_id, name, permissions)

    def add_member(self, guild_id: int, user_id: int, *, roles: list[int] | None = None,
                   permissions: int | None = None, nick: str | None = None) -> Member:
        """Add a user to a guild; ``permissions`` creates a role carrying exactly those bits."""
        role_ids = list(roles or [])
        if permissions is not None:
            role_ids.append(self.world.create_role(guild_id, f"perms-{user_id}", permissions).id)
        return self.world.add_member(guild_id, user_id, role_ids, nick)

    def set_bot_permissions(self, guild_id: int, permissions: int) -> None:
        self.world.set_bot_permissions(guild_id, permissions)

    def set_automod_rules(self, guild_id: int, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.world.set_automod_rules(guild_id, rules)

    def post_as_user(self, channel_id: int, user_id: int, content: str) -> dict[str, Any]:
        """A user types a plain message in a channel (the bot gets MESSAGE_CREATE)."""
        ch = self.world.channel(channel_id)
        if ch.guild_id is not None and user_id not in self.world.guilds[ch.guild_id].members:
            raise ValueError("user is not a member of that guild")
        from .limits import validate_message
        validate_message({"content": content})
        msg = self.world.create_message(channel_id, user_id, {"content": content}, [])
        return self.world.message_payload(msg)

    def upload(self, channel_id: int, filename: str, data: bytes, content_type: str | None = None) -> StoredFile:
        up = file(filename, data, content_type)
        return self.world.store_file(channel_id, up.filename, up.content_type, up.data)

    # ---- interactions -------------------------------------------------------------------------
    def _send(self, rec: InteractionRecord) -> InteractionRecord:
        self.hub.send_interaction(rec.guild_id, rec.payload)
        self.world.touch()
        return rec

    def record(self, ref: RecordRef) -> InteractionRecord:
        if isinstance(ref, InteractionRecord):
            return ref
        return self.interactions.by_id[int(ref)]

    async def slash(self, guild_id: int | None, channel_id: int, user_id: int, command: str,
                    options: dict[str, Any] | None = None) -> InteractionRecord:
        """A user runs ``/command`` (a path like "aigc reload" for subcommands)."""
        return self._send(self.interactions.slash(guild_id, channel_id, user_id, command, options))

    async def autocomplete(self, guild_id: int | None, channel_id: int, user_id: int, command: str,
                           options: dict[str, Any], focused: str) -> InteractionRecord:
        return self._send(self.interactions.slash(guild_id, channel_id, user_id, command, options, focused=focused))

    async def message_command(self, guild_id: int | None, channel_id: int, user_id: int, name: str,
                              message_id: int) -> InteractionRecord:
        return self._send(self.interactions.context_menu(guild_id, channel_id, user_id, name, message_id=message_id))

    async def user_command(self, guild_id: int | None, channel_id: int, user_id: int, name: str,
                           target_user_id: int) -> InteractionRecord:
        return self._send(self.interactions.context_menu(guild_id, channel_id, user_id, name,
                                                         target_user_id=target_user_id))

    async def click(self, message_id: int, custom_id: str, user_id: int,
                    values: list[str] | None = None) -> InteractionRecord:
        """A user clicks a button (or picks select ``values``) on a message."""
        return self._send(self.interactions.component(message_id, custom_id, user_id, values))

    async def submit_modal(self, opener: RecordRef, values: dict[str, Any], *,
                           user_id: int | None = None) -> InteractionRecord:
        """Submit the modal that interaction ``opener`` answered with (callback type 9)."""
        return self._send(self.interactions.modal_submit(self.record(opener), values, user_id=user_id))

    async def wait_ack(self, ref: RecordRef, timeout: float = 5.0) -> InteractionRecord:
        rec = self.record(ref)
        await asyncio.wait_for(rec.ack_event.wait(), timeout)
        return rec

    async def wait_messages(self, ref: RecordRef, count: int = 1, timeout: float = 5.0, *,
                            settled: bool = True) -> list[dict[str, Any]]:
        """Messages the interaction produced (original + followups), once ``count`` exist and,
        with ``settled``, none is still "thinking"."""
        rec = self.record(ref)

        def ready() -> list[dict[str, Any]] | None:
            msgs = [self.world.messages[m] for m in rec.message_ids() if m in self.world.messages]
            msgs = [m for m in msgs if not m.deleted]
            if len(msgs) < count or (settled and any(m.flags & (1 << 7) for m in msgs)):
                return None
            return [self.world.message_payload(m) for m in msgs]

        return await self.world.wait_until(ready, timeout)

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Wait until ``predicate()`` is truthy, re-checked after every change in the world."""
        return await self.world.wait_until(predicate, timeout)

    async def wait_for_message(self, channel_id: int, predicate: Callable[[dict[str, Any]], bool] | None = None,
                               timeout: float = 5.0) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            for m in reversed(self.world.channel_messages(channel_id)):
                payload = self.world.message_payload(m)
                if predicate is None or predicate(payload):
                    return payload
            return None

        return await self.world.wait_until(find, timeout)

    def messages(self, channel_id: int, *, viewer_id: int | None = None) -> list[dict[str, Any]]:
        """A channel's messages, oldest first (ephemeral ones only for ``viewer_id``, or all when None)."""
        return [self.world.message_payload(m) for m in self.world.channel_messages(channel_id, viewer_id=viewer_id)]

    def message(self, message_id: int) -> Message:
        return self.world.messages[int(message_id)]

    def commands(self, guild_id: int | None = None) -> list[dict[str, Any]]:
        """Commands a user in ``guild_id`` sees (guild commands shadow global ones)."""
        return self.world.commands.visible(guild_id)

    def command_creates_today(self, guild_id: int | None = None) -> int:
        return self.world.commands.creates_today(guild_id, self.clock.time())

    def calls(self, method: str | None = None, path: str | None = None, *, status: int | None = None) -> list[RestCall]:
        return self.recorder.calls(method, path, status=status)

    def events(self, t: str | None = None, *, direction: str | None = None) -> list[GatewayEvent]:
        return self.recorder.events(t, direction=direction)

    def ack_latencies_ms(self) -> list[float]:
        return [r.ack_ms for r in self.interactions.by_id.values() if r.ack_ms is not None]

    def ack_stats(self) -> dict[str, Any]:
        values = sorted(self.ack_latencies_ms())
        missed = sum(1 for r in self.interactions.by_id.values()
                     if r.type != 1 and (r.ack_ms is None or r.ack_ms > self.config.ack_deadline_s * 1000))
        if not values:
            return {"n": 0, "p50_ms": None, "p99_ms": None, "missed_deadlines": missed}
        p99 = values[min(len(values) - 1, max(0, int(round(0.99 * len(values))) - 1))]
        return {"n": len(values), "p50_ms": statistics.median(values), "p99_ms": p99, "missed_deadlines": missed}

    # ---- gateway control ----------------------------------------------------------------------
    async def gateway_reconnect(self, session_id: str | None = None) -> str:
        """Send op 7 RECONNECT; the bot reconnects and RESUMEs."""
        return await self.hub.request_reconnect(session_id)

    async def gateway_invalidate(self, session_id: str | None = None, *, resumable: bool = False) -> str:
        """Send op 9 INVALID_SESSION."""
        return await self.hub.invalidate(session_id, resumable=resumable)

    async def gateway_drop(self, session_id: str | None = None, code: int = 4000) -> str:
        """Close the bot's socket (the session stays resumable)."""
        return await self.hub.drop(session_id, code)

    def seed_demo(self) -> dict[str, Any]:
        """A ready-to-use guild for the playground: #general, #generations, #review, two users."""
        guild = self.create_guild("AIGC Playground", channels=("general", "generations", "review"))
        alice = self.create_user("alice")
        bob = self.create_user("bob")
        self.add_member(guild.id, alice.id, permissions=1 << 3)  # administrator (a moderator)
        self.add_member(guild.id, bob.id)
        return {"guild_id": guild.id, "channel_ids": list(guild.channel_ids), "user_ids": [alice.id, bob.id]}


async def serve(config: EmulatorConfig | None = None, *, demo: bool = True,
                ready: Callable[[Emulator], Any] | None = None) -> None:
    """Run the emulator until cancelled, printing its URLs."""
    emu = Emulator(config)
    await emu.start()
    if demo:
        emu.seed_demo()
    if ready is not None:
        ready(emu)
    else:
        print(f"Discord emulator API base : {emu.api_base}")
        print(f"Gateway                   : {emu.gateway_url}")
        print(f"Playground                : {emu.playground_url}")
        print(f"Bot token                 : {emu.token}")
        print(f"Application id            : {emu.application_id}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await emu.stop()

"""HTTP control API under /_control: build the world, inject interactions, read what the
bot did. The playground and out-of-process tests (``EmulatorControl``) use it; every
route maps onto one ``Emulator`` method."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .errors import ApiError
from .gateway import NotConnected
from .http_util import json_response
from .interactions import InjectError, InteractionRecord
from .uploads import Upload

if TYPE_CHECKING:
    from .server import Emulator

P = "/_control"
# Discord's client locales (https://discord.com/developers/docs/reference#locales).
LOCALES = frozenset({
    "id", "da", "de", "en-GB", "en-US", "es-ES", "es-419", "fr", "hr", "it", "lt", "hu", "nl", "no", "pl",
    "pt-BR", "ro", "fi", "sv-SE", "vi", "tr", "cs", "el", "bg", "ru", "uk", "hi", "th", "zh-CN", "ja",
    "zh-TW", "ko",
})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InjectError(f"{name} must be an id") from None


def _opt_int(value: Any) -> int | None:
    return None if value in (None, "", "null") else int(value)


async def _json(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise InjectError("body must be JSON") from None
    if not isinstance(data, dict):
        raise InjectError("body must be a JSON object")
    return data


def _errors(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except (InjectError, ValueError) as exc:
            return json_response({"error": str(exc)}, 400)
        except NotConnected as exc:
            return json_response({"error": str(exc)}, 409)
        except KeyError as exc:
            return json_response({"error": f"unknown {exc}"}, 404)
        except ApiError as exc:
            return json_response({"error": exc.message, **exc.body()}, exc.status)
        except TimeoutError:
            return json_response({"error": "timed out"}, 408)

    return wrapped


class ControlApi:
    def __init__(self, emu: Emulator) -> None:
        self.emu = emu

    def routes(self) -> list[web.RouteDef]:
        e = _errors
        return [
            web.get(P + "/state", e(self.state)),
            web.post(P + "/reset", e(self.reset)),
            web.post(P + "/guilds", e(self.create_guild)),
            web.post(P + "/guilds/{g}/channels", e(self.create_channel)),
            web.post(P + "/guilds/{g}/roles", e(self.create_role)),
            web.post(P + "/guilds/{g}/members", e(self.add_member)),
            web.put(P + "/guilds/{g}/automod", e(self.set_automod)),
            web.put(P + "/guilds/{g}/bot_permissions", e(self.set_bot_permissions)),
            web.post(P + "/users", e(self.create_user)),
            web.patch(P + "/users/{u}", e(self.update_user)),
            web.post(P + "/uploads", e(self.upload)),
            web.get(P + "/commands", e(self.commands)),
            web.post(P + "/interactions", e(self.inject)),
            web.get(P + "/interactions/{iid}", e(self.get_interaction)),
            web.post(P + "/messages/{mid}/click", e(self.click)),
            web.get(P + "/channels/{c}/messages", e(self.channel_messages)),
            web.post(P + "/channels/{c}/messages", e(self.post_message)),
            web.get(P + "/calls", e(self.calls)),
            web.get(P + "/events", e(self.events)),
            web.get(P + "/wait", e(self.wait_change)),
            web.get(P + "/latency", e(self.latency)),
            web.post(P + "/clock/advance", e(self.advance_clock)),
            web.post(P + "/ratelimit/force", e(self.force_429)),
            web.post(P + "/gateway/{action}", e(self.gateway)),
        ]

    # ---- world -------------------------------------------------------------------------------
    async def state(self, request: web.Request) -> web.Response:
        w = self.emu.world
        guilds = []
        for g in w.guilds.values():
            guilds.append({
                "id": str(g.id), "name": g.name,
                "channels": [w.channels[c].payload() for c in g.channel_ids],
                "roles": [r.payload() for r in g.roles.values()],
                "members": [{"user": w.users[u].payload(), "locale": w.users[u].locale,
                             "roles": [str(r) for r in m.role_ids],
                             "permissions": str(w.permissions(g.id, u))} for u, m in g.members.items()],
                "automod_rules": g.automod_rules,
            })
        return json_response({
            "revision": w.revision,
            "application_id": str(w.application_id),
            "bot_user": w.bot_user.payload(),
            "api_base": self.emu.api_base,
            "gateway_url": self.emu.gateway_url,
            "connected_sessions": sum(1 for s in self.emu.hub.sessions.values() if s.conn is not None),
            "users": [u.payload() for u in w.users.values()],
            "guilds": guilds,
        })

    async def reset(self, request: web.Request) -> web.Response:
        self.emu.reset()
        return json_response({"ok": True})

    async def create_guild(self, request: web.Request) -> web.Response:
        body = await _json(request)
        kw: dict[str, Any] = {}
        if body.get("id"):
            kw["guild_id"] = int(body["id"])
        if body.get("bot_permissions") is not None:
            kw["bot_permissions"] = int(body["bot_permissions"])
        if body.get("channels"):
            kw["channels"] = tuple(body["channels"])
        if body.get("locale"):
            kw["locale"] = body["locale"]
        g = self.emu.create_guild(body.get("name", "Guild"), **kw)
        return json_response({"id": str(g.id), "channel_ids": [str(c) for c in g.channel_ids]}, 201)

    async def create_channel(self, request: web.Request) -> web.Response:
        body = await _json(request)
        ch = self.emu.create_channel(_int(request.match_info["g"], "guild"), body.get("name", "channel"),
                                     topic=body.get("topic"))
        return json_response(ch.payload(), 201)

    async def create_role(self, request: web.Request) -> web.Response:
        body = await _json(request)
        role = self.emu.create_role(_int(request.match_info["g"], "guild"), body.get("name", "role"),
                                    int(body.get("permissions", 0)))
        return json_response(role.payload(), 201)

    async def add_member(self, request: web.Request) -> web.Response:
        body = await _json(request)
        gid = _int(request.match_info["g"], "guild")
        member = self.emu.add_member(
            gid, _int(body.get("user_id"), "user_id"), roles=[int(r) for r in body.get("roles", [])],
            permissions=_opt_int(body.get("permissions")), nick=body.get("nick"))
        return json_response(self.emu.world.member_payload(gid, member.user_id, with_permissions=True), 201)

    async def set_automod(self, request: web.Request) -> web.Response:
        body = await _json(request)
        rules = self.emu.set_automod_rules(_int(request.match_info["g"], "guild"), body.get("rules", []))
        return json_response(rules)

    async def set_bot_permissions(self, request: web.Request) -> web.Response:
        body = await _json(request)
        self.emu.set_bot_permissions(_int(request.match_info["g"], "guild"), int(body["permissions"]))
        return json_response({"ok": True})

    async def create_user(self, request: web.Request) -> web.Response:
        body = await _json(request)
        user = self.emu.create_user(body.get("username", "user"), locale=body.get("locale", "en-US"))
        return json_response(user.payload(), 201)

    async def update_user(self, request: web.Request) -> web.Response:
        """Change a user's client settings; ``locale`` is what their interactions carry."""
        body = await _json(request)
        user = self.emu.world.user(_int(request.match_info["u"], "user"))
        if "locale" in body:
            locale = body["locale"]
            if locale not in LOCALES:
                raise InjectError(f"locale must be one of {', '.join(sorted(LOCALES))}")
            user.locale = locale
            self.emu.world.touch()
        return json_response({**user.payload(), "locale": user.locale})

    async def upload(self, request: web.Request) -> web.Response:
        """A file for an attachment option: multipart ``file`` (+ ``channel_id``) or JSON base64."""
        if request.content_type.startswith("multipart/"):
            fields: dict[str, Any] = {}
            up: Upload | None = None
            async for part in await request.multipart():
                data = await part.read()  # type: ignore[union-attr]
                if part.filename:  # type: ignore[union-attr]
                    up = Upload("file", part.filename, part.headers.get("Content-Type", "application/octet-stream"),  # type: ignore[union-attr]
                                bytes(data))
                else:
                    fields[part.name or ""] = data.decode()  # type: ignore[union-attr]
            if up is None:
                raise InjectError("no file part")
            channel_id, filename, ctype, raw = int(fields.get("channel_id", 0)), up.filename, up.content_type, up.data
        else:
            body = await _json(request)
            channel_id, filename = int(body.get("channel_id", 0)), body["filename"]
            ctype, raw = body.get("content_type"), base64.b64decode(body["data_base64"])
        stored = self.emu.upload(channel_id, filename, raw, ctype)
        return json_response(stored.payload(self.emu.base_url), 201)

    async def commands(self, request: web.Request) -> web.Response:
        gid = _opt_int(request.query.get("guild_id"))
        return json_response(self.emu.commands(gid))

    # ---- interactions --------------------------------------------------------------------------
    async def inject(self, request: web.Request) -> web.Response:
        """Body: {kind, guild_id, channel_id, user_id, command?, options?, focused?, message_id?,
        target_user_id?, custom_id?, values?, opener_id?, wait?: "none"|"ack"|"messages", timeout?}."""
        b = await _json(request)
        emu, kind = self.emu, b.get("kind", "slash")
        gid, cid = _opt_int(b.get("guild_id")), _opt_int(b.get("channel_id"))
        uid = _opt_int(b.get("user_id"))
        if kind == "slash":
            rec = await emu.slash(gid, _int(cid, "channel_id"), _int(uid, "user_id"), b["command"], b.get("options"))
        elif kind == "autocomplete":
            rec = await emu.autocomplete(gid, _int(cid, "channel_id"), _int(uid, "user_id"), b["command"],
                                         b.get("options") or {}, b["focused"])
        elif kind == "message_command":
            rec = await emu.message_command(gid, _int(cid, "channel_id"), _int(uid, "user_id"), b["command"],
                                            _int(b.get("message_id"), "message_id"))
        elif kind == "user_command":
            rec = await emu.user_command(gid, _int(cid, "channel_id"), _int(uid, "user_id"), b["command"],
                                         _int(b.get("target_user_id"), "target_user_id"))
        elif kind == "component":
            rec = await emu.click(_int(b.get("message_id"), "message_id"), b["custom_id"], _int(uid, "user_id"),
                                  b.get("values"))
        elif kind == "modal_submit":
            rec = await emu.submit_modal(_int(b.get("opener_id"), "opener_id"), b.get("values") or {}, user_id=uid)
        else:
            raise InjectError(f"unknown kind {kind!r}")
        return await self._answer(rec, b.get("wait", "none"), float(b.get("timeout", 5)), int(b.get("count", 1)))

    async def _answer(self, rec: InteractionRecord, wait: str, timeout: float, count: int) -> web.Response:
        out = rec.summary()
        if wait in ("ack", "messages"):
            await self.emu.wait_ack(rec, timeout)
            out = rec.summary()
        if wait == "messages" and rec.response_type in (4, 5, 6, 7):
            out["messages"] = await self.emu.wait_messages(rec, count, timeout)
        return json_response(out)

    async def get_interaction(self, request: web.Request) -> web.Response:
        rec = self.emu.record(_int(request.match_info["iid"], "interaction"))
        q = request.query
        return await self._answer(rec, q.get("wait", "none"), float(q.get("timeout", 5)), int(q.get("count", 1)))

    async def click(self, request: web.Request) -> web.Response:
        b = await _json(request)
        rec = await self.emu.click(_int(request.match_info["mid"], "message"), b["custom_id"],
                                   _int(b.get("user_id"), "user_id"), b.get("values"))
        return await self._answer(rec, b.get("wait", "none"), float(b.get("timeout", 5)), int(b.get("count", 1)))

    # ---- reading -------------------------------------------------------------------------------
    async def channel_messages(self, request: web.Request) -> web.Response:
        cid = _int(request.match_info["c"], "channel")
        viewer = _opt_int(request.query.get("viewer_id"))
        w = self.emu.world
        out = []
        for m in w.channel_messages(cid, viewer_id=viewer):
            payload = w.message_payload(m)
            payload["_visible_to"] = str(m.visible_to) if m.visible_to else None
            payload["_interaction_id"] = str(m.interaction_id) if m.interaction_id else None
            out.append(payload)
        return json_response(out)

    async def post_message(self, request: web.Request) -> web.Response:
        b = await _json(request)
        msg = self.emu.post_as_user(_int(request.match_info["c"], "channel"), _int(b.get("user_id"), "user_id"),
                                    str(b.get("content", "")))
        return json_response(msg, 201)

    async def calls(self, request: web.Request) -> web.Response:
        q = request.query
        since = int(q.get("since", 0))
        calls = [c.to_dict() for c in self.emu.calls(q.get("method"), q.get("path")) if c.seq > since]
        return json_response(calls)

    async def events(self, request: web.Request) -> web.Response:
        q = request.query
        since = int(q.get("since", 0))
        return json_response([e.to_dict() for e in self.emu.events(q.get("t"), direction=q.get("direction"))
                              if e.seq > since])

    async def wait_change(self, request: web.Request) -> web.Response:
        """Long poll: answers when the world's revision passes ``since`` (or after ``timeout``)."""
        since = int(request.query.get("since", 0))
        timeout = min(30.0, float(request.query.get("timeout", 20)))
        w, emu = self.emu.world, self.emu
        emu.open_long_polls += 1
        try:
            await w.wait_until(lambda: w.revision > since or emu.closing, timeout)
        except TimeoutError:
            pass
        finally:
            emu.open_long_polls -= 1
        if emu.closing:
            return json_response({"error": "the emulator is shutting down", "revision": w.revision}, 503,
                                 headers={"Connection": "close"})
        return json_response({"revision": w.revision})

    async def latency(self, request: web.Request) -> web.Response:
        stats = self.emu.ack_stats()
        stats["values_ms"] = self.emu.ack_latencies_ms()
        return json_response(stats)

    # ---- knobs ---------------------------------------------------------------------------------
    async def advance_clock(self, request: web.Request) -> web.Response:
        body = await _json(request)
        self.emu.clock.advance(float(body.get("seconds", 0)))
        return json_response({"offset": self.emu.clock.offset})

    async def force_429(self, request: web.Request) -> web.Response:
        b = await _json(request)
        self.emu.limiter.force(int(b.get("count", 1)), retry_after=float(b.get("retry_after", 0.1)),
                               is_global=bool(b.get("global", False)), path=b.get("path"), method=b.get("method"))
        return json_response({"ok": True})

    async def gateway(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        b = await _json(request)
        sid = b.get("session_id")
        if action == "reconnect":
            sid = await self.emu.gateway_reconnect(sid)
        elif action == "invalidate":
            sid = await self.emu.gateway_invalidate(sid, resumable=bool(b.get("resumable", False)))
        elif action == "drop":
            sid = await self.emu.gateway_drop(sid, int(b.get("code", 4000)))
        else:
            raise InjectError(f"unknown gateway action {action!r}")
        return json_response({"session_id": sid})


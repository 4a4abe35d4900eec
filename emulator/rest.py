"""Discord REST API v10 routes (over 400 lines: one thin handler per route Discord has and
the bot uses, listed together like the API reference). Handlers stay thin: parse ids, call World/Interactions,
shape the answer. The middleware records every call, applies rate limits and auth, and
turns ``ApiError`` into Discord's JSON error bodies."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .errors import (
    INVALID_FORM_BODY,
    UNKNOWN_APPLICATION_COMMAND,
    ApiError,
    FormErrors,
    form_error,
    not_found,
    unauthorized,
)
from .gateway import GatewayHub
from .http_util import JSON_KEY, json_response, no_content
from .interactions import InteractionRecord, Interactions
from .limits import validate_message
from .models import (
    ATTACH_FILES,
    CREATE_GUILD_EXPRESSIONS,
    MANAGE_GUILD_EXPRESSIONS,
    SEND_MESSAGES,
    VIEW_CHANNEL,
)
from .ratelimit import RateLimiter
from .recorder import Recorder
from .state import World, message_channel_guard
from .uploads import Upload, read_body, resolve_attachments

API_PREFIX = re.compile(r"^/api(?:/v\d+)?")
EMOJI_MAX_BYTES = 256 * 1024
EMOJI_NAME = re.compile(r"^[A-Za-z0-9_]{2,32}$")
DATA_URI = re.compile(r"^data:(image/(?:png|jpeg|gif|webp|avif));base64,(.+)$", re.S)

PAYLOAD_KEY: web.RequestKey[Any] = web.RequestKey("emulator_payload", object)  # type: ignore[arg-type]
UPLOADS_KEY: web.RequestKey[list[Upload]] = web.RequestKey("emulator_uploads", list)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _id(request: web.Request, key: str) -> int:
    raw = request.match_info[key]
    try:
        return int(raw)
    except ValueError:
        raise form_error((key,), "NUMBER_TYPE_COERCE", f"Value \"{raw}\" is not snowflake.") from None


def _payload(request: web.Request) -> Any:
    return request.get(PAYLOAD_KEY)


def _uploads(request: web.Request) -> list[Upload]:
    return request.get(UPLOADS_KEY, [])


def _body_dict(request: web.Request) -> dict[str, Any]:
    payload = _payload(request)
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise ApiError(400, INVALID_FORM_BODY, "Invalid Form Body",
                       {"_errors": [{"code": "DICT_TYPE_CONVERT", "message": "Only dictionaries may be used in a DictType"}]})
    return payload


class RestApi:
    def __init__(self, world: World, interactions: Interactions, hub: GatewayHub, recorder: Recorder,
                 limiter: RateLimiter) -> None:
        self.world = world
        self.interactions = interactions
        self.hub = hub
        self.recorder = recorder
        self.limiter = limiter
        # Interaction-token routes take no bot token, as on Discord.
        self._public = {self.get_gateway, self.callback, self.followup, self.get_webhook_message,
                        self.edit_webhook_message, self.delete_webhook_message}

    # ---- wiring --------------------------------------------------------------------------
    def routes(self, prefix: str) -> list[web.RouteDef]:
        r = web
        p = prefix
        return [
            r.get(p + "/users/@me", self.get_me),
            r.get(p + "/users/{user_id}", self.get_user),
            r.post(p + "/users/@me/channels", self.create_dm),
            r.get(p + "/oauth2/applications/@me", self.get_application),
            r.get(p + "/applications/@me", self.get_application),
            r.get(p + "/gateway", self.get_gateway),
            r.get(p + "/gateway/bot", self.get_gateway_bot),
            r.get(p + "/applications/{app}/commands", self.list_commands),
            r.put(p + "/applications/{app}/commands", self.put_commands),
            r.post(p + "/applications/{app}/commands", self.post_command),
            r.get(p + "/applications/{app}/commands/{cmd}", self.get_command),
            r.patch(p + "/applications/{app}/commands/{cmd}", self.patch_command),
            r.delete(p + "/applications/{app}/commands/{cmd}", self.delete_command),
            r.get(p + "/applications/{app}/guilds/{guild_id}/commands", self.list_commands),
            r.put(p + "/applications/{app}/guilds/{guild_id}/commands", self.put_commands),
            r.post(p + "/applications/{app}/guilds/{guild_id}/commands", self.post_command),
            r.get(p + "/applications/{app}/guilds/{guild_id}/commands/{cmd}", self.get_command),
            r.patch(p + "/applications/{app}/guilds/{guild_id}/commands/{cmd}", self.patch_command),
            r.delete(p + "/applications/{app}/guilds/{guild_id}/commands/{cmd}", self.delete_command),
            r.post(p + "/interactions/{iid}/{token}/callback", self.callback),
            r.post(p + "/webhooks/{app}/{token}", self.followup),
            r.get(p + "/webhooks/{app}/{token}/messages/{mid}", self.get_webhook_message),
            r.patch(p + "/webhooks/{app}/{token}/messages/{mid}", self.edit_webhook_message),
            r.delete(p + "/webhooks/{app}/{token}/messages/{mid}", self.delete_webhook_message),
            r.get(p + "/channels/{channel_id}", self.get_channel),
            r.get(p + "/channels/{channel_id}/messages", self.list_messages),
            r.post(p + "/channels/{channel_id}/messages", self.create_message),
            r.get(p + "/channels/{channel_id}/messages/{mid}", self.get_message),
            r.patch(p + "/channels/{channel_id}/messages/{mid}", self.edit_message),
            r.delete(p + "/channels/{channel_id}/messages/{mid}", self.delete_message),
            r.post(p + "/channels/{channel_id}/typing", self.typing),
            r.get(p + "/guilds/{guild_id}", self.get_guild),
            r.get(p + "/guilds/{guild_id}/channels", self.get_guild_channels),
            r.get(p + "/guilds/{guild_id}/roles", self.get_roles),
            r.get(p + "/guilds/{guild_id}/members/{user_id}", self.get_member),
            r.get(p + "/guilds/{guild_id}/emojis", self.list_emojis),
            r.post(p + "/guilds/{guild_id}/emojis", self.create_emoji),
            r.get(p + "/guilds/{guild_id}/auto-moderation/rules", self.automod_rules),
        ]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        match = API_PREFIX.match(request.path)
        if match is None:
            return await handler(request)
        path = request.path[match.end():] or "/"
        call = self.recorder.rest(time=self.world.clock.time(), method=request.method, path=path,
                                  query=dict(request.query), json=None)
        headers: dict[str, str] = {}
        try:
            if request.method in ("POST", "PUT", "PATCH"):
                payload, uploads = await read_body(request)
                request[PAYLOAD_KEY], request[UPLOADS_KEY] = payload, uploads
                call.json = payload
                call.files = [{"field": u.field, "filename": u.filename, "size": len(u.data),
                               "content_type": u.content_type} for u in uploads]
            route = request.match_info.route
            template = route.resource.canonical if route.resource is not None else path
            if request.match_info.http_exception is None:
                handler_fn = request.match_info.handler
                if handler_fn not in self._public:
                    self._check_auth(request)
                major = "+".join(request.match_info.get(k, "") for k in ("channel_id", "guild_id", "app", "token")
                                 if k in request.match_info)
                headers = self.limiter.check(request.method, template, major, path,
                                             exempt=handler_fn == self.callback)
            response = await handler(request)
        except ApiError as exc:
            response = json_response(exc.body(), exc.status, headers=exc.headers)
        except web.HTTPException as exc:
            status = exc.status
            response = json_response({"code": 0, "message": f"{status}: {exc.reason}"}, status)
        for k, v in headers.items():
            response.headers[k] = v
        call.status = response.status
        call.response = response.get(JSON_KEY)
        return response

    def _check_auth(self, request: web.Request) -> None:
        if request.headers.get("Authorization") != f"Bot {self.world.config.token}":
            raise unauthorized()

    def _check_app(self, request: web.Request) -> None:
        if _id(request, "app") != self.world.application_id:
            raise ApiError(403, 20012, "You are not authorized to perform this action on this application")

    # ---- identity & gateway ------------------------------------------------------------------
    async def get_me(self, request: web.Request) -> web.Response:
        user = self.world.bot_user.payload()
        user.update({"verified": True, "mfa_enabled": False, "email": None, "locale": "en-US"})
        return json_response(user)

    async def get_user(self, request: web.Request) -> web.Response:
        return json_response(self.world.user(_id(request, "user_id")).payload())

    async def create_dm(self, request: web.Request) -> web.Response:
        body = _body_dict(request)
        try:
            user_id = int(body.get("recipient_id"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise form_error(("recipient_id",), "BASE_TYPE_REQUIRED", "This field is required") from None
        ch = self.world.dm_channel(user_id)
        return json_response(ch.payload(self.world.users))

    async def get_application(self, request: web.Request) -> web.Response:
        w = self.world
        return json_response({
            "id": str(w.application_id),
            "name": w.config.application_name,
            "icon": None,
            "description": "Local Discord emulator application",
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": w.owner.payload(),
            "verify_key": "0" * 64,
            "flags": 0,
            "team": None,
            "bot": w.bot_user.payload(),
            "summary": "",
            "tags": [],
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "approximate_guild_count": len(w.guilds),
        })

    async def get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.hub.ws_url})

    async def get_gateway_bot(self, request: web.Request) -> web.Response:
        return json_response({
            "url": self.hub.ws_url,
            "shards": self.world.config.shard_count,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14400000, "max_concurrency": 1},
        })

    # ---- commands ----------------------------------------------------------------------------
    def _scope(self, request: web.Request) -> int | None:
        self._check_app(request)
        if "guild_id" not in request.match_info:
            return None
        gid = _id(request, "guild_id")
        self.world.guild(gid)
        return gid

    async def list_commands(self, request: web.Request) -> web.Response:
        return json_response(self.world.commands.list(self._scope(request)))

    async def put_commands(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        result = self.world.commands.bulk_overwrite(scope, _payload(request), self.world.clock.time())
        self.world.touch()
        return json_response(result)

    async def post_command(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        stored, created = self.world.commands.upsert(scope, _body_dict(request), self.world.clock.time())
        self.world.touch()
        return json_response(stored, 201 if created else 200)

    def _find_command(self, request: web.Request, scope: int | None) -> dict[str, Any]:
        cmd_id = request.match_info["cmd"]
        for c in self.world.commands.list(scope):
            if c["id"] == cmd_id:
                return c
        raise not_found(UNKNOWN_APPLICATION_COMMAND, "application command")

    async def get_command(self, request: web.Request) -> web.Response:
        return json_response(self._find_command(request, self._scope(request)))

    async def patch_command(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        current = self._find_command(request, scope)
        merged = {**current, **_body_dict(request)}
        self.world.commands.delete(scope, current["id"])
        stored, _ = self.world.commands.upsert(scope, merged, self.world.clock.time())
        self.world.touch()
        return json_response(stored)

    async def delete_command(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        self._find_command(request, scope)
        self.world.commands.delete(scope, request.match_info["cmd"])
        self.world.touch()
        return no_content()

    # ---- interactions & webhooks -------------------------------------------------------------
    async def callback(self, request: web.Request) -> web.Response:
        rec = self.interactions.lookup(_id(request, "iid"), request.match_info["token"])
        try:
            result = self.interactions.callback(rec, _payload(request), _uploads(request))
        except ApiError as exc:
            rec.rejected.append({"status": exc.status, "code": exc.code, "message": exc.message})
            self.world.touch()
            raise
        if request.query.get("with_response", "").lower() in ("1", "true"):
            return json_response(result)
        return no_content()  # Discord answers 204 unless with_response is asked

    def _webhook(self, request: web.Request) -> InteractionRecord:
        return self.interactions.webhook(_id(request, "app"), request.match_info["token"])

    async def followup(self, request: web.Request) -> web.Response:
        rec = self._webhook(request)
        msg = self.interactions.followup(rec, _body_dict(request), _uploads(request))
        if request.query.get("wait") in ("1", "true", "True"):
            return json_response(self.world.message_payload(msg))
        return no_content()

    async def get_webhook_message(self, request: web.Request) -> web.Response:
        rec = self._webhook(request)
        msg = self.interactions.webhook_message(rec, request.match_info["mid"])
        return json_response(self.world.message_payload(msg))

    async def edit_webhook_message(self, request: web.Request) -> web.Response:
        rec = self._webhook(request)
        msg = self.interactions.webhook_message(rec, request.match_info["mid"])
        msg = self.interactions.edit(rec, msg, _body_dict(request), _uploads(request))
        return json_response(self.world.message_payload(msg))

    async def delete_webhook_message(self, request: web.Request) -> web.Response:
        rec = self._webhook(request)
        msg = self.interactions.webhook_message(rec, request.match_info["mid"])
        self.world.delete_message(msg)
        return no_content()

    # ---- channels & messages ----------------------------------------------------------------
    async def get_channel(self, request: web.Request) -> web.Response:
        ch = message_channel_guard(self.world, _id(request, "channel_id"))
        return json_response(ch.payload(self.world.users))

    async def list_messages(self, request: web.Request) -> web.Response:
        ch = message_channel_guard(self.world, _id(request, "channel_id"))
        msgs = [m for m in self.world.channel_messages(ch.id) if not m.ephemeral]
        q = request.query
        if "before" in q:
            msgs = [m for m in msgs if m.id < int(q["before"])]
        if "after" in q:
            msgs = [m for m in msgs if m.id > int(q["after"])]
        limit = max(1, min(100, int(q.get("limit", 50))))
        if "after" in q:
            msgs = msgs[:limit]
        else:
            msgs = msgs[-limit:]
        return json_response([self.world.message_payload(m) for m in reversed(msgs)])

    async def create_message(self, request: web.Request) -> web.Response:
        w = self.world
        ch = message_channel_guard(w, _id(request, "channel_id"))
        body, uploads = _body_dict(request), _uploads(request)
        w.require(ch.guild_id, VIEW_CHANNEL)
        w.require(ch.guild_id, SEND_MESSAGES)
        if uploads:
            w.require(ch.guild_id, ATTACH_FILES)
        validate_message(body, n_files=len(uploads))
        atts = resolve_attachments(w, ch.id, body, uploads, None, w.config.attachment_size_limit) or []
        msg = w.create_message(ch.id, w.bot_user.id, {**body, "flags": int(body.get("flags") or 0) & (1 << 15 | 1 << 2)},
                               atts)
        return json_response(w.message_payload(msg))

    async def get_message(self, request: web.Request) -> web.Response:
        ch = message_channel_guard(self.world, _id(request, "channel_id"))
        msg = self.world.message(ch.id, _id(request, "mid"))
        if msg.ephemeral:
            raise not_found(10008, "Message")
        return json_response(self.world.message_payload(msg))

    async def edit_message(self, request: web.Request) -> web.Response:
        w = self.world
        ch = message_channel_guard(w, _id(request, "channel_id"))
        msg = w.message(ch.id, _id(request, "mid"))
        if msg.author_id != w.bot_user.id or msg.ephemeral:
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        body, uploads = _body_dict(request), _uploads(request)
        validate_message(body, n_files=len(uploads), creating=False)
        atts = resolve_attachments(w, ch.id, body, uploads, msg.attachment_ids, w.config.attachment_size_limit)
        w.edit_message(msg, body, atts, clear_flags=1 << 7)
        return json_response(w.message_payload(msg))

    async def delete_message(self, request: web.Request) -> web.Response:
        w = self.world
        ch = message_channel_guard(w, _id(request, "channel_id"))
        msg = w.message(ch.id, _id(request, "mid"))
        if msg.author_id != w.bot_user.id:
            w.require(ch.guild_id, 1 << 13)  # MANAGE_MESSAGES
        w.delete_message(msg)
        return no_content()

    async def typing(self, request: web.Request) -> web.Response:
        message_channel_guard(self.world, _id(request, "channel_id"))
        return no_content()

    # ---- guilds ------------------------------------------------------------------------------
    def _member_guild(self, request: web.Request) -> int:
        gid = _id(request, "guild_id")
        guild = self.world.guild(gid)
        if self.world.bot_user.id not in guild.members:
            raise not_found(10004, "Guild")
        return gid

    async def get_guild(self, request: web.Request) -> web.Response:
        data = self.world.guild_create_payload(self._member_guild(request))
        for key in ("channels", "members", "threads", "voice_states", "presences", "joined_at", "large",
                    "member_count", "unavailable"):
            data.pop(key, None)
        return json_response(data)

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        g = self.world.guild(self._member_guild(request))
        return json_response([self.world.channels[c].payload() for c in g.channel_ids])

    async def get_roles(self, request: web.Request) -> web.Response:
        g = self.world.guild(self._member_guild(request))
        return json_response([r.payload() for r in g.roles.values()])

    async def get_member(self, request: web.Request) -> web.Response:
        gid = self._member_guild(request)
        uid = _id(request, "user_id")
        if uid not in self.world.guilds[gid].members:
            raise not_found(10007, "Member")
        return json_response(self.world.member_payload(gid, uid))

    async def list_emojis(self, request: web.Request) -> web.Response:
        g = self.world.guild(self._member_guild(request))
        return json_response([e.payload(self.world.users.get(e.user_id)) for e in g.emojis.values()])

    async def create_emoji(self, request: web.Request) -> web.Response:
        w = self.world
        gid = self._member_guild(request)
        w.require(gid, MANAGE_GUILD_EXPRESSIONS | CREATE_GUILD_EXPRESSIONS)
        body = _body_dict(request)
        name, image = body.get("name"), body.get("image")
        errs = FormErrors()
        if not isinstance(name, str) or not EMOJI_NAME.match(name):
            errs.add(("name",), "BASE_TYPE_BAD_LENGTH", "Must be between 2 and 32 in length.")
        data = _decode_image(errs, image)
        errs.raise_if_any()
        assert data is not None
        emoji = w.add_emoji(gid, name, len(data[1]), animated=data[0] == "image/gif")  # type: ignore[arg-type]
        return json_response(emoji.payload(w.bot_user), 201)

    async def automod_rules(self, request: web.Request) -> web.Response:
        gid = self._member_guild(request)
        self.world.require(gid, 1 << 5)  # MANAGE_GUILD, as on Discord
        return json_response(self.world.guilds[gid].automod_rules)


def _decode_image(errs: FormErrors, image: Any) -> tuple[str, bytes] | None:
    match = DATA_URI.match(image) if isinstance(image, str) else None
    if match is None:
        errs.add(("image",), "IMAGE_INVALID", "Invalid image data")
        return None
    try:
        data = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        errs.add(("image",), "IMAGE_INVALID", "Invalid image data")
        return None
    if len(data) > EMOJI_MAX_BYTES:
        errs.add(("image",), "BINARY_TYPE_MAX_SIZE", "File cannot be larger than 256.0 kb.")
    return match.group(1), data

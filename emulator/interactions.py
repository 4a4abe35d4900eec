"""Interactions: building INTERACTION_CREATE payloads and applying the bot's responses.

Over 400 lines: the interaction life cycle (ack deadline, the five response types, followups,
modals, autocomplete) is one state machine, kept in one place so its rules can be read together.

An ``InteractionRecord`` is the emulator's memory of one interaction: what was sent,
when, how (and how fast) the bot acknowledged it, and which messages it produced.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import (
    ALREADY_ACKNOWLEDGED,
    EMPTY_MESSAGE,
    INVALID_WEBHOOK_TOKEN,
    UNKNOWN_INTERACTION,
    UNKNOWN_MESSAGE,
    UNKNOWN_WEBHOOK,
    ApiError,
    form_error,
)
from .limits import validate_autocomplete, validate_message, validate_modal
from .models import ADMINISTRATOR, FLAG_EPHEMERAL, FLAG_LOADING, Message, StoredFile
from .state import World
from .uploads import Upload, resolve_attachments

# Interaction types
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
# Callback types each interaction type may answer with.
ALLOWED_CALLBACKS = {
    PING: {1},
    APPLICATION_COMMAND: {4, 5, 9, 12},
    MESSAGE_COMPONENT: {4, 5, 6, 7, 9, 12},
    AUTOCOMPLETE: {8},
    MODAL_SUBMIT: {4, 5, 6, 7},
}
# Option types
SUB_COMMAND, SUB_COMMAND_GROUP, STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = range(1, 12)


class InjectError(ValueError):
    """The control side asked for an interaction a Discord client could not send."""


@dataclass
class InteractionRecord:
    id: int
    token: str
    type: int
    guild_id: int | None
    channel_id: int
    user_id: int
    payload: dict[str, Any]
    created_mono: float  # emulator clock (deadlines)
    created_perf: float = field(default_factory=time.perf_counter)  # real time (latency)
    name: str = ""  # command name or custom_id
    source_message_id: int | None = None  # component / context-menu target message
    acked_perf: float | None = None
    response_type: int | None = None
    response_data: dict[str, Any] | None = None
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)  # callbacks the emulator refused
    ack_event: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def acked(self) -> bool:
        return self.response_type is not None

    @property
    def ack_ms(self) -> float | None:
        return None if self.acked_perf is None else (self.acked_perf - self.created_perf) * 1000.0

    @property
    def choices(self) -> list[dict[str, Any]] | None:
        if self.response_type == 8 and self.response_data is not None:
            return self.response_data.get("choices")
        return None

    @property
    def modal(self) -> dict[str, Any] | None:
        return self.response_data if self.response_type == 9 else None

    def message_ids(self) -> list[int]:
        ids = [self.original_message_id] if self.original_message_id else []
        return ids + list(self.followup_ids)

    def summary(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "token": self.token,
            "type": self.type,
            "name": self.name,
            "guild_id": str(self.guild_id) if self.guild_id else None,
            "channel_id": str(self.channel_id),
            "user_id": str(self.user_id),
            "acked": self.acked,
            "ack_ms": self.ack_ms,
            "response_type": self.response_type,
            "response_data": self.response_data,
            "original_message_id": str(self.original_message_id) if self.original_message_id else None,
            "followup_ids": [str(i) for i in self.followup_ids],
            "message_ids": [str(i) for i in self.message_ids()],
            "rejected": self.rejected,
        }


class Interactions:
    """All interactions the emulator has created, plus the rules for answering them."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.by_id: dict[int, InteractionRecord] = {}
        self.by_token: dict[str, InteractionRecord] = {}

    def clear(self) -> None:
        self.by_id.clear()
        self.by_token.clear()

    # ---- building ----------------------------------------------------------------------
    def new(self, itype: int, guild_id: int | None, channel_id: int, user_id: int, data: dict[str, Any],
            *, name: str = "", message: Message | None = None) -> InteractionRecord:
        w = self.world
        channel = w.channel(channel_id)
        if channel.guild_id != guild_id:
            raise InjectError("channel is not in that guild")
        iid = w.ids.next()
        token = "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48)
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(w.application_id),
            "type": itype,
            "token": token,
            "version": 1,
            "data": data,
            "channel_id": str(channel_id),
            "channel": channel.payload(w.users),
            "locale": w.user(user_id).locale,
            "entitlements": [],
            "attachment_size_limit": w.config.attachment_size_limit,
        }
        if guild_id is not None:
            guild = w.guild(guild_id)
            if user_id not in guild.members:
                raise InjectError("user is not a member of the guild")
            payload["guild_id"] = str(guild_id)
            payload["guild"] = {"id": str(guild_id), "locale": guild.locale, "features": list(guild.features)}
            payload["guild_locale"] = guild.locale
            payload["member"] = w.member_payload(guild_id, user_id, with_permissions=True)
            payload["app_permissions"] = str(w.permissions(guild_id, w.bot_user.id))
            payload["channel"]["permissions"] = str(w.permissions(guild_id, user_id))
            payload["authorizing_integration_owners"] = {"0": str(guild_id)}
            payload["context"] = 0
        else:
            if user_id not in channel.recipient_ids:
                raise InjectError("user is not in that DM")
            payload["user"] = w.user(user_id).payload()
            payload["app_permissions"] = str(1 << 11 | 1 << 14 | 1 << 15)
            payload["authorizing_integration_owners"] = {"0": "0"}  # guild install, used in the bot's DM
            payload["context"] = 1
        if message is not None:
            payload["message"] = w.message_payload(message)
        rec = InteractionRecord(
            id=iid, token=token, type=itype, guild_id=guild_id, channel_id=channel_id, user_id=user_id,
            payload=payload, created_mono=w.clock.monotonic(), name=name,
            source_message_id=message.id if message is not None else None,
        )
        self.by_id[iid] = rec
        self.by_token[token] = rec
        return rec

    def slash(self, guild_id: int | None, channel_id: int, user_id: int, command: str,
              options: dict[str, Any] | None = None, *, focused: str | None = None) -> InteractionRecord:
        """A slash command (or its autocomplete when ``focused`` names an option).

        ``command`` may be a path: "aigc reload" for a subcommand, "a b c" for a group.
        """
        parts = command.split()
        cmd = self.world.commands.find(guild_id, parts[0], 1)
        if cmd is None:
            raise InjectError(f"no synced slash command {parts[0]!r}")
        self._check_visible(cmd, guild_id, user_id)
        node: dict[str, Any] = cmd
        chain: list[dict[str, Any]] = []
        for sub in parts[1:]:
            nxt = next((o for o in node.get("options") or [] if o["name"] == sub and o["type"] in (1, 2)), None)
            if nxt is None:
                raise InjectError(f"no subcommand {sub!r} in {command!r}")
            chain.append(nxt)
            node = nxt
        if any(o["type"] in (1, 2) for o in node.get("options") or []):
            raise InjectError(f"{command!r} needs a subcommand")
        resolved: dict[str, dict[str, Any]] = {}
        leaf = self._typed_options(guild_id, channel_id, node.get("options") or [], options or {}, resolved,
                                   focused=focused)
        # Nest the leaf options under the subcommand chain (innermost first).
        for sub in reversed(chain):
            leaf = [{"name": sub["name"], "type": sub["type"], "options": leaf}]
        data: dict[str, Any] = {"id": cmd["id"], "name": cmd["name"], "type": 1, "options": leaf}
        if resolved:
            data["resolved"] = resolved
        if cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        itype = AUTOCOMPLETE if focused else APPLICATION_COMMAND
        return self.new(itype, guild_id, channel_id, user_id, data, name=command)

    def _check_visible(self, cmd: dict[str, Any], guild_id: int | None, user_id: int) -> None:
        """Discord's client hides commands whose default_member_permissions the user lacks."""
        required = cmd.get("default_member_permissions")
        if guild_id is None or required is None:
            return
        need = int(required)
        have = self.world.permissions(guild_id, user_id)
        if have & ADMINISTRATOR:
            return
        if need == 0 or have & need != need:  # "0" = administrators only
            raise InjectError(f"user {user_id} cannot see /{cmd['name']} (default_member_permissions={need})")

    def _typed_options(self, guild_id: int | None, channel_id: int, schema: list[dict[str, Any]],
                       given: dict[str, Any], resolved: dict[str, dict[str, Any]],
                       *, focused: str | None) -> list[dict[str, Any]]:
        by_name = {o["name"]: o for o in schema}
        for name in given:
            if name not in by_name:
                raise InjectError(f"unknown option {name!r}")
        if focused is not None and focused not in by_name:
            raise InjectError(f"unknown focused option {focused!r}")
        out: list[dict[str, Any]] = []
        for opt in schema:
            name = opt["name"]
            if name == focused:
                # Discord sends what the user has typed so far, as a string.
                out.append({"name": name, "type": opt["type"], "value": str(given.get(name, "")), "focused": True})
                continue
            if name not in given:
                if opt.get("required") and focused is None:
                    raise InjectError(f"missing required option {name!r}")
                continue
            value = self._convert(guild_id, channel_id, opt, given[name], resolved)
            out.append({"name": name, "type": opt["type"], "value": value})
        return out

    def _convert(self, guild_id: int | None, channel_id: int, opt: dict[str, Any], value: Any,
                 resolved: dict[str, dict[str, Any]]) -> Any:
        w, otype = self.world, opt["type"]
        if otype == STRING:
            value = str(value)
        elif otype == INTEGER:
            value = int(value)
        elif otype == NUMBER:
            value = float(value)
        elif otype == BOOLEAN:
            value = bool(value)
        elif otype in (USER, MENTIONABLE) and int(value) in w.users:
            uid = int(value)
            resolved.setdefault("users", {})[str(uid)] = w.users[uid].payload()
            if guild_id is not None and uid in w.guilds[guild_id].members:
                member = w.member_payload(guild_id, uid, with_permissions=True)
                member.pop("user")
                resolved.setdefault("members", {})[str(uid)] = member
            return str(uid)
        elif otype in (ROLE, MENTIONABLE) and guild_id is not None and int(value) in w.guilds[guild_id].roles:
            resolved.setdefault("roles", {})[str(value)] = w.guilds[guild_id].roles[int(value)].payload()
            return str(value)
        elif otype == CHANNEL:
            ch = w.channel(int(value))
            data = ch.payload(w.users)
            if guild_id is not None:
                data["permissions"] = str(w.permissions(guild_id, w.bot_user.id))
            resolved.setdefault("channels", {})[str(ch.id)] = data
            return str(ch.id)
        elif otype == ATTACHMENT:
            if isinstance(value, Upload):
                stored = w.store_file(channel_id, value.filename, value.content_type, value.data)
            elif isinstance(value, StoredFile):
                stored = value
            else:
                stored = w.files[int(value)]
            resolved.setdefault("attachments", {})[str(stored.id)] = stored.payload(w.base_url)
            return str(stored.id)
        else:
            raise InjectError(f"option {opt['name']!r} of type {otype} got {value!r}")
        choices = opt.get("choices")
        if choices and value not in [c["value"] for c in choices]:
            raise InjectError(f"{value!r} is not a choice of {opt['name']!r}")
        lo, hi = opt.get("min_value"), opt.get("max_value")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise InjectError(f"{value!r} is out of range for {opt['name']!r}")
        return value

    def context_menu(self, guild_id: int | None, channel_id: int, user_id: int, name: str, *,
                     message_id: int | None = None, target_user_id: int | None = None) -> InteractionRecord:
        w = self.world
        ctype = 3 if message_id is not None else 2
        cmd = w.commands.find(guild_id, name, ctype)
        if cmd is None:
            raise InjectError(f"no synced {'message' if ctype == 3 else 'user'} command {name!r}")
        self._check_visible(cmd, guild_id, user_id)
        resolved: dict[str, Any] = {}
        if ctype == 3:
            msg = w.message(None, int(message_id))  # type: ignore[arg-type]
            resolved["messages"] = {str(msg.id): w.message_payload(msg)}
            target = msg.id
        else:
            target = int(target_user_id)  # type: ignore[arg-type]
            resolved["users"] = {str(target): w.user(target).payload()}
            if guild_id is not None and target in w.guilds[guild_id].members:
                member = w.member_payload(guild_id, target, with_permissions=True)
                member.pop("user")
                resolved["members"] = {str(target): member}
        data: dict[str, Any] = {"id": cmd["id"], "name": name, "type": ctype, "target_id": str(target),
                                "resolved": resolved}
        if cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        rec = self.new(APPLICATION_COMMAND, guild_id, channel_id, user_id, data, name=name)
        if ctype == 3:
            rec.source_message_id = target
        return rec

    def component(self, message_id: int, custom_id: str, user_id: int,
                  values: list[str] | None = None) -> InteractionRecord:
        w = self.world
        msg = w.message(None, message_id)
        comp = find_component(msg.components, custom_id)
        if comp is None:
            raise InjectError(f"message {message_id} has no component {custom_id!r}")
        if comp.get("disabled"):
            raise InjectError(f"component {custom_id!r} is disabled")
        if msg.ephemeral and msg.visible_to != user_id:
            raise InjectError("only the interaction's user sees that ephemeral message")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": comp["type"]}
        if comp["type"] != 2:
            data["values"] = [str(v) for v in (values or [])]
        elif values:
            raise InjectError("buttons take no values")
        return self.new(MESSAGE_COMPONENT, msg.guild_id, msg.channel_id, user_id, data, name=custom_id, message=msg)

    def modal_submit(self, opener: InteractionRecord, values: dict[str, str], *,
                     user_id: int | None = None) -> InteractionRecord:
        modal = opener.modal
        if modal is None:
            raise InjectError("that interaction did not open a modal")
        comps: list[dict[str, Any]] = []
        for top in modal.get("components", []):
            if top.get("type") == 1:
                comps.append({"type": 1, "components": [_submitted(c, values) for c in top.get("components", [])]})
            elif top.get("type") == 18:  # label wrapping one input
                entry = {"type": 18, "component": _submitted(top["component"], values)}
                if "id" in top:
                    entry["id"] = top["id"]
                comps.append(entry)
        data = {"custom_id": modal["custom_id"], "components": comps}
        msg = None
        if opener.type == MESSAGE_COMPONENT and opener.source_message_id:
            msg = self.world.messages.get(opener.source_message_id)
        return self.new(MODAL_SUBMIT, opener.guild_id, opener.channel_id, user_id or opener.user_id, data,
                        name=modal["custom_id"], message=msg)

    # ---- responding ---------------------------------------------------------------------
    def lookup(self, interaction_id: int, token: str) -> InteractionRecord:
        rec = self.by_id.get(interaction_id)
        if rec is None or not secrets.compare_digest(rec.token, token):
            raise ApiError(404, UNKNOWN_INTERACTION, "Unknown interaction")
        return rec

    def callback(self, rec: InteractionRecord, body: Any, uploads: list[Upload]) -> dict[str, Any]:
        """POST /interactions/{id}/{token}/callback: Discord's checks, in Discord's order."""
        w = self.world
        if rec.acked:
            raise ApiError(400, ALREADY_ACKNOWLEDGED, "Interaction has already been acknowledged.")
        if w.clock.monotonic() - rec.created_mono > w.config.ack_deadline_s:
            raise ApiError(404, UNKNOWN_INTERACTION, "Unknown interaction")
        if not isinstance(body, dict):
            raise form_error(("type",), "BASE_TYPE_REQUIRED", "This field is required")
        ctype = body.get("type")
        if ctype not in ALLOWED_CALLBACKS.get(rec.type, set()):
            raise form_error(("type",), "INTERACTION_RESPONSE_TYPE_INVALID",
                             f"Interaction response type {ctype} is not valid for interaction type {rec.type}")
        data = body.get("data") or {}
        limit = w.config.attachment_size_limit
        source = w.messages.get(rec.source_message_id) if rec.source_message_id else None
        if rec.type == APPLICATION_COMMAND:
            source = None  # a context menu target is not "the" message of the interaction
        if ctype in (6, 7) and source is None:
            raise form_error(("type",), "INTERACTION_RESPONSE_TYPE_INVALID", "No message to update")
        message: Message | None = None
        if ctype == 4:
            validate_message(data, n_files=len(uploads))
            atts = resolve_attachments(w, rec.channel_id, data, uploads, None, limit) or []
            message = self._create(rec, data, atts, flags=int(data.get("flags") or 0) & FLAG_EPHEMERAL | _v2(data))
            rec.original_message_id = message.id
        elif ctype == 5:
            message = self._create(rec, {}, [], flags=FLAG_LOADING | (int(data.get("flags") or 0) & FLAG_EPHEMERAL))
            rec.original_message_id = message.id
        elif ctype == 6:
            message = source
            rec.original_message_id = source.id if source else None
        elif ctype == 7:
            assert source is not None
            validate_message(data, n_files=len(uploads), creating=False)
            atts = resolve_attachments(w, rec.channel_id, data, uploads, source.attachment_ids, limit)
            message = w.edit_message(source, data, atts)
            rec.original_message_id = source.id
        elif ctype == 8:
            validate_autocomplete({"choices": data.get("choices")})
        elif ctype == 9:
            validate_modal(data)
        rec.response_type = ctype
        rec.response_data = data
        rec.acked_perf = time.perf_counter()
        rec.ack_event.set()
        w.touch()
        interaction: dict[str, Any] = {"id": str(rec.id), "type": rec.type}
        resource: dict[str, Any] = {"type": ctype}
        if message is not None:
            interaction["response_message_id"] = str(message.id)
            interaction["response_message_loading"] = bool(message.flags & FLAG_LOADING)
            interaction["response_message_ephemeral"] = message.ephemeral
            resource["message"] = w.message_payload(message)
        return {"interaction": interaction, "resource": resource}

    def _create(self, rec: InteractionRecord, data: dict[str, Any], atts: list[int], *, flags: int) -> Message:
        w = self.world
        body = dict(data)
        body["flags"] = flags
        msg_type = 0
        if rec.type == APPLICATION_COMMAND:
            msg_type = 20 if rec.payload["data"].get("type", 1) == 1 else 23
        meta: dict[str, Any] = {
            "id": str(rec.id), "type": rec.type, "user": w.user(rec.user_id).payload(),
            "authorizing_integration_owners": rec.payload.get("authorizing_integration_owners", {}),
        }
        if rec.type == APPLICATION_COMMAND:
            meta["name"] = rec.name
            meta["command_type"] = rec.payload["data"].get("type", 1)
        if rec.source_message_id and rec.type == MESSAGE_COMPONENT:
            meta["interacted_message_id"] = str(rec.source_message_id)
        msg = w.create_message(
            rec.channel_id, w.bot_user.id, body, atts,
            webhook_id=w.application_id, application_id=w.application_id, interaction_id=rec.id,
            visible_to=rec.user_id, message_type=msg_type, interaction_metadata=meta,
        )
        return msg

    # ---- webhook (followups, @original) ----------------------------------------------------
    def webhook(self, application_id: int, token: str) -> InteractionRecord:
        w = self.world
        rec = self.by_token.get(token)
        if application_id != w.application_id:
            raise ApiError(404, UNKNOWN_WEBHOOK, "Unknown Webhook")
        if rec is None or w.clock.monotonic() - rec.created_mono > w.config.token_ttl_s:
            raise ApiError(401, INVALID_WEBHOOK_TOKEN, "Invalid Webhook Token")
        return rec

    def webhook_message(self, rec: InteractionRecord, message_ref: str) -> Message:
        if message_ref == "@original":
            mid = rec.original_message_id
        else:
            try:
                mid = int(message_ref)
            except ValueError:
                mid = None
            if mid not in rec.message_ids():
                mid = None
        if mid is None:
            raise ApiError(404, UNKNOWN_MESSAGE, "Unknown Message")
        return self.world.message(None, mid)

    def followup(self, rec: InteractionRecord, body: dict[str, Any], uploads: list[Upload]) -> Message:
        w = self.world
        if not rec.acked or rec.response_type in (8, 9):
            # Discord has no webhook for an interaction until it is answered with a message ack.
            raise ApiError(404, UNKNOWN_WEBHOOK, "Unknown Webhook")
        validate_message(body, n_files=len(uploads))
        original = w.messages.get(rec.original_message_id) if rec.original_message_id else None
        if original is not None and original.flags & FLAG_LOADING and not original.deleted:
            # As on Discord: the first followup after a "thinking" defer replaces the loading
            # message (keeping the defer's ephemeral state) instead of posting a new one.
            atts = resolve_attachments(w, rec.channel_id, body, uploads, None, w.config.attachment_size_limit) or []
            fields = {k: body.get(k) for k in ("content", "embeds", "components")}
            return w.edit_message(original, fields, atts, clear_flags=FLAG_LOADING)
        atts = resolve_attachments(w, rec.channel_id, body, uploads, None, w.config.attachment_size_limit) or []
        msg = self._create(rec, body, atts, flags=int(body.get("flags") or 0) & FLAG_EPHEMERAL | _v2(body))
        rec.followup_ids.append(msg.id)
        return msg

    def edit(self, rec: InteractionRecord, msg: Message, body: dict[str, Any], uploads: list[Upload]) -> Message:
        w = self.world
        validate_message(body, n_files=len(uploads), creating=False)
        atts = resolve_attachments(w, msg.channel_id, body, uploads, msg.attachment_ids,
                                   w.config.attachment_size_limit)
        if msg.flags & FLAG_LOADING:
            # The first edit of a deferred response must give it something to show.
            has = body.get("content") or body.get("embeds") or body.get("components") or atts
            if not has:
                raise ApiError(400, EMPTY_MESSAGE, "Cannot send an empty message")
        return w.edit_message(msg, body, atts, clear_flags=FLAG_LOADING)


def _v2(data: dict[str, Any]) -> int:
    return int(data.get("flags") or 0) & (1 << 15)


def _submitted(comp: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    cid = comp.get("custom_id")
    out: dict[str, Any] = {"type": comp.get("type"), "custom_id": cid}
    if "id" in comp:
        out["id"] = comp["id"]
    given = values.get(cid, comp.get("value", ""))
    if comp.get("type") == 4:
        out["value"] = str(given)
    else:
        out["values"] = [str(v) for v in (given if isinstance(given, list) else [given])]
    return out


def find_component(components: list[dict[str, Any]], custom_id: str) -> dict[str, Any] | None:
    for comp in components:
        if comp.get("custom_id") == custom_id:
            return comp
        for key in ("components",):
            found = find_component(comp.get(key) or [], custom_id)
            if found:
                return found
        acc = comp.get("accessory")
        if isinstance(acc, dict) and acc.get("custom_id") == custom_id:
            return acc
    return None

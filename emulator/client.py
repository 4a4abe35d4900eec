"""``EmulatorControl``: a thin async client for the HTTP control API, for tests and tools
that run the emulator in another process (``python -m emulator``, ``aigc up``)."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp


class ControlError(RuntimeError):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


class EmulatorControl:
    def __init__(self, base_url: str, session: aiohttp.ClientSession | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._own_session = session is None

    async def __aenter__(self) -> EmulatorControl:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(self, method: str, path: str, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        q = {k: str(v) for k, v in (params or {}).items() if v is not None}
        async with self._session.request(method, f"{self.base_url}/_control{path}", json=json, params=q) as r:
            body = await r.json()
            if r.status >= 400:
                raise ControlError(r.status, body)
            return body

    # world
    async def state(self) -> dict[str, Any]:
        return await self._call("GET", "/state")

    async def reset(self) -> None:
        await self._call("POST", "/reset")

    async def create_guild(self, name: str, **kw: Any) -> dict[str, Any]:
        return await self._call("POST", "/guilds", {"name": name, **kw})

    async def create_channel(self, guild_id: int | str, name: str) -> dict[str, Any]:
        return await self._call("POST", f"/guilds/{guild_id}/channels", {"name": name})

    async def create_role(self, guild_id: int | str, name: str, permissions: int) -> dict[str, Any]:
        return await self._call("POST", f"/guilds/{guild_id}/roles", {"name": name, "permissions": permissions})

    async def create_user(self, username: str, *, locale: str = "en-US") -> dict[str, Any]:
        return await self._call("POST", "/users", {"username": username, "locale": locale})

    async def set_locale(self, user_id: int | str, locale: str) -> dict[str, Any]:
        """The user's client language, sent as ``locale`` in their interactions."""
        return await self._call("PATCH", f"/users/{user_id}", {"locale": locale})

    async def add_member(self, guild_id: int | str, user_id: int | str, *, roles: list[int | str] = (),  # type: ignore[assignment]
                         permissions: int | None = None) -> dict[str, Any]:
        return await self._call("POST", f"/guilds/{guild_id}/members",
                                {"user_id": str(user_id), "roles": [str(r) for r in roles], "permissions": permissions})

    async def set_automod_rules(self, guild_id: int | str, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return await self._call("PUT", f"/guilds/{guild_id}/automod", {"rules": rules})

    async def set_bot_permissions(self, guild_id: int | str, permissions: int) -> None:
        await self._call("PUT", f"/guilds/{guild_id}/bot_permissions", {"permissions": permissions})

    async def upload(self, channel_id: int | str, filename: str, data: bytes,
                     content_type: str | None = None) -> dict[str, Any]:
        return await self._call("POST", "/uploads", {"channel_id": str(channel_id), "filename": filename,
                                                    "content_type": content_type,
                                                    "data_base64": base64.b64encode(data).decode()})

    async def commands(self, guild_id: int | str | None = None) -> list[dict[str, Any]]:
        return await self._call("GET", "/commands", params={"guild_id": guild_id})

    # interactions
    async def interact(self, kind: str, *, wait: str = "ack", timeout: float = 5.0, **body: Any) -> dict[str, Any]:
        """Inject an interaction; ``wait``: "none", "ack" or "messages"."""
        clean = {k: (str(v) if k.endswith("_id") and v is not None else v) for k, v in body.items()}
        return await self._call("POST", "/interactions", {"kind": kind, "wait": wait, "timeout": timeout, **clean})

    async def slash(self, guild_id: Any, channel_id: Any, user_id: Any, command: str,
                    options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        return await self.interact("slash", guild_id=guild_id, channel_id=channel_id, user_id=user_id,
                                   command=command, options=options or {}, **kw)

    async def autocomplete(self, guild_id: Any, channel_id: Any, user_id: Any, command: str,
                           options: dict[str, Any], focused: str, **kw: Any) -> dict[str, Any]:
        return await self.interact("autocomplete", guild_id=guild_id, channel_id=channel_id, user_id=user_id,
                                   command=command, options=options, focused=focused, **kw)

    async def click(self, message_id: Any, custom_id: str, user_id: Any, values: list[str] | None = None,
                    **kw: Any) -> dict[str, Any]:
        return await self._call("POST", f"/messages/{message_id}/click",
                                {"custom_id": custom_id, "user_id": str(user_id), "values": values,
                                 "wait": kw.get("wait", "ack"), "timeout": kw.get("timeout", 5.0)})

    async def submit_modal(self, opener_id: Any, values: dict[str, Any], **kw: Any) -> dict[str, Any]:
        return await self.interact("modal_submit", opener_id=opener_id, values=values, **kw)

    async def interaction(self, interaction_id: Any, *, wait: str = "none", count: int = 1,
                          timeout: float = 5.0) -> dict[str, Any]:
        return await self._call("GET", f"/interactions/{interaction_id}",
                                params={"wait": wait, "count": count, "timeout": timeout})

    # reading
    async def messages(self, channel_id: Any, viewer_id: Any = None) -> list[dict[str, Any]]:
        return await self._call("GET", f"/channels/{channel_id}/messages", params={"viewer_id": viewer_id})

    async def post_message(self, channel_id: Any, user_id: Any, content: str) -> dict[str, Any]:
        return await self._call("POST", f"/channels/{channel_id}/messages",
                                {"user_id": str(user_id), "content": content})

    async def calls(self, *, method: str | None = None, path: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        return await self._call("GET", "/calls", params={"method": method, "path": path, "since": since})

    async def events(self, t: str | None = None, *, since: int = 0) -> list[dict[str, Any]]:
        return await self._call("GET", "/events", params={"t": t, "since": since})

    async def latency(self) -> dict[str, Any]:
        return await self._call("GET", "/latency")

    # knobs
    async def advance_clock(self, seconds: float) -> None:
        await self._call("POST", "/clock/advance", {"seconds": seconds})

    async def force_429(self, count: int = 1, *, retry_after: float = 0.1, is_global: bool = False,
                        path: str | None = None, method: str | None = None) -> None:
        await self._call("POST", "/ratelimit/force", {"count": count, "retry_after": retry_after,
                                                      "global": is_global, "path": path, "method": method})

    async def gateway(self, action: str, **body: Any) -> dict[str, Any]:
        return await self._call("POST", f"/gateway/{action}", body)

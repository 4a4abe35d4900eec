"""Point discord.py at another Discord (the emulator): REST base and gateway URL.

discord.py has no public option for either, so this sets the two class attributes it
reads (``Route.BASE`` and ``DiscordWebSocket.DEFAULT_GATEWAY``) and returns a function
that restores them. Call it before ``login``: each ``Route`` builds its URL when created.
discord.py is imported lazily so the emulator itself never needs it.
"""

from __future__ import annotations

from collections.abc import Callable


def point_discordpy_at(api_base: str, gateway_url: str) -> Callable[[], None]:
    """``api_base`` like ``http://127.0.0.1:8765/api/v10``; ``gateway_url`` like ``ws://127.0.0.1:8765/``.

    Returns ``restore()``. An AutoShardedClient without a shard count asks
    ``GET /gateway/bot`` for its URL, which the emulator also answers.
    """
    import discord.gateway
    import discord.http
    import yarl

    route_cls = discord.http.Route
    ws_cls = discord.gateway.DiscordWebSocket
    old_base, old_gateway = route_cls.BASE, ws_cls.DEFAULT_GATEWAY
    route_cls.BASE = api_base.rstrip("/")
    ws_cls.DEFAULT_GATEWAY = yarl.URL(gateway_url)

    def restore() -> None:
        route_cls.BASE = old_base
        ws_cls.DEFAULT_GATEWAY = old_gateway

    return restore

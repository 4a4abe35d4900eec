"""A local Discord: REST API v10 + gateway for the real discord.py client, with a control
API and a web playground. Plain aiohttp; no discord.py, engine or torch imports.

    from emulator import Emulator, EmulatorConfig
    async with Emulator(EmulatorConfig()) as emu:
        restore = point_discordpy_at(emu.api_base, emu.gateway_url)
"""

from .clock import Clock
from .config import EmulatorConfig, RateLimitConfig
from .discordpy import point_discordpy_at
from .interactions import InjectError, InteractionRecord
from .server import Emulator, file, serve

__all__ = [
    "Clock", "Emulator", "EmulatorConfig", "InjectError", "InteractionRecord", "RateLimitConfig", "file",
    "point_discordpy_at", "serve",
]

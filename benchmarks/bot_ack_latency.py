"""Time to acknowledge: 50 concurrent slash commands, real bot vs. a bare discord.py client.

Runs the engine and the Discord emulator (each a subprocess) and the real bot on loopback, injects
`--n` concurrent /emoji interactions and reads each one's time-to-acknowledge from the
emulator. The baseline, measured in the same run against the same emulator, is a bare
discord.py client whose only work is `defer()`: the floor of the wire path itself.
Each client first answers a warm-up burst of 10 (not counted). Prints one JSON line: n, p50_ms,
p99_ms, missed_deadlines (+ the baseline's figures).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import secrets
import sys
import tempfile
from pathlib import Path

import discord
from discord import app_commands

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._harness import ROOT, free_port, percentile, start_engine, wait_ready  # noqa: E402
from emulator.client import EmulatorControl  # noqa: E402


class BareClient(discord.Client):
    """Only defers: what acknowledging costs with discord.py and nothing else."""

    def __init__(self) -> None:
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0.05)
        self.tree = app_commands.CommandTree(self)

        @self.tree.command(name="emoji", description="bare")
        async def emoji(it: discord.Interaction, prompt: str) -> None:
            await it.response.defer(thinking=True)

    async def setup_hook(self) -> None:
        await self.tree.sync()


async def burst(ctl, guild: str, channel: str, users: list[str], n: int, desc: str) -> list[float]:
    """n concurrent /emoji interactions; each one's time-to-acknowledge, as the emulator saw it."""
    bar = tqdm(total=n, desc=f"ack {desc}", file=sys.stderr, leave=False)

    async def one(i: int) -> float:
        rec = await ctl.slash(guild, channel, users[i % len(users)], "emoji",
                              {"prompt": f"thing {i}", **({"seed": i} if desc == "bot" else {})},
                              wait="ack", timeout=30)
        bar.update()
        return rec["ack_ms"]

    acks = await asyncio.gather(*(one(i) for i in range(n)))
    bar.close()
    return list(acks)


@contextlib.asynccontextmanager
async def emulator_process():
    """The emulator in a process of its own, as Discord is: the bot's loop does only its work."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "emulator", "--port", str(port), "--no-demo"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        async with EmulatorControl(base) as ctl:
            for _ in range(200):
                try:
                    await ctl.state()
                    break
                except Exception:
                    await asyncio.sleep(0.1)
            yield ctl, base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def stats(acks: list[float], deadline_ms: float) -> dict:
    return {"p50_ms": round(percentile(acks, 0.5), 2), "p99_ms": round(percentile(acks, 0.99), 2),
            "missed_deadlines": sum(a is None or a > deadline_ms for a in acks)}


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    from bot.config import load_bot_settings
    from bot.runner import start_bot
    from emulator import EmulatorConfig, point_discordpy_at

    port, token = free_port(), secrets.token_urlsafe(16)
    bot_acks: list[float] = []
    bare_acks: list[float] = []
    deadline = EmulatorConfig().ack_deadline_s * 1000
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_engine(port, token, f"{tmp}/engine")
        try:
            await wait_ready(f"http://127.0.0.1:{port}")
            # Rounds interleave the two clients, so a noisy machine hits both alike; each
            # client gets a fresh emulator.
            for r in range(args.rounds):
                for kind in ("bare", "bot"):
                    async with emulator_process() as (ctl, base):
                        guild = await ctl.create_guild("Bench", channels=["general"])
                        gid, channel = guild["id"], guild["channel_ids"][0]
                        users = []
                        for i in range(25):
                            u = await ctl.create_user(f"u{i}")
                            await ctl.add_member(gid, u["id"])
                            users.append(u["id"])
                        api, gateway = f"{base}/api/v10", base.replace("http", "ws") + "/"
                        if kind == "bare":
                            restore = point_discordpy_at(api, gateway)
                            bare = BareClient()
                            await bare.login(EmulatorConfig().token)
                            task = asyncio.create_task(bare.connect())
                            await bare.wait_until_ready()
                            await burst(ctl, gid, channel, users, 10, "bare")  # warm-up
                            bare_acks += await burst(ctl, gid, channel, users, args.n, "bare")
                            await bare.close()
                            await asyncio.gather(task, return_exceptions=True)
                            restore()
                        else:
                            settings = load_bot_settings(
                                discord_token=EmulatorConfig().token, engine_url=[f"http://127.0.0.1:{port}"],
                                engine_token=token, data_dir=Path(tmp) / f"bot{r}", discord_api_base=api,
                                discord_gateway=gateway, catalog_poll_s=0, engine_health_s=0)
                            running = await start_bot(settings, guild_ready_timeout=0.05)
                            for name, value in (("cooldown_s", 0), ("max_concurrent_per_guild", 1000),
                                                ("max_concurrent_per_user", 100), ("daily_quota", None)):
                                await running.bot.scoped.set(name, value, guild_id=str(gid))
                            await burst(ctl, gid, channel, users, 10, "bot")  # warm-up
                            await asyncio.sleep(1)
                            bot_acks += await burst(ctl, gid, channel, users, args.n, "bot")
                            await asyncio.sleep(2)  # let the burst's generations finish
                            await running.stop()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    ours, base = stats(bot_acks, deadline), stats(bare_acks, deadline)
    print(json.dumps({"n": args.n, **ours, "rounds": args.rounds,
                      "baseline_p50_ms": base["p50_ms"], "baseline_p99_ms": base["p99_ms"],
                      "baseline_missed_deadlines": base["missed_deadlines"],
                      "baseline": "bare discord.py client that only defers"}))


if __name__ == "__main__":
    asyncio.run(main())

"""Bot shards (AIGC_SHARDS): two bots each run half of the gateway's shards and share one
PostgreSQL store; each guild is served by its shard's bot, and a button works whichever bot
receives it (here: the bot that posted the result is gone, another one owns its shard now)."""
from __future__ import annotations

import contextlib

import pytest

from emulator.snowflake import shard_for
from tests.conftest import TOKEN
from tests.e2e.conftest import EngineProcess, World
from tests.scaleout.cluster import drop_database, make_database

pytestmark = pytest.mark.slow


def job_of(msg: dict) -> str:
    return [c["custom_id"] for row in msg["components"] for c in row["components"]][0].split(":")[2]


def shard_of(emu, rec) -> list[int] | None:
    iid = int(emu.record(rec).id)
    return next(e.shard for e in emu.events("INTERACTION_CREATE", direction="send") if int(e.d["id"]) == iid)


async def test_shard_ranges_share_one_store_and_buttons_work_on_any_bot(tmp_path):
    from bot.config import load_bot_settings
    from emulator import Emulator, EmulatorConfig

    pg = await make_database()
    store_url = pg.replace("postgresql://", "postgresql+asyncpg://", 1)
    engine = EngineProcess(tmp_path / "engine")
    await engine.start()
    emu = Emulator(EmulatorConfig(shard_count=2))
    await emu.start()
    guilds = {}
    while len(guilds) < 2:  # one guild on each shard
        g = emu.create_guild(f"G{len(guilds)}", channels=("general",))
        guilds.setdefault(shard_for(g.id, 2), g)
    alice = emu.create_user("alice")
    for g in guilds.values():
        emu.add_member(g.id, alice.id)
        emu.set_bot_permissions(g.id, (1 << 30) | (1 << 11) | (1 << 15) | (1 << 13))

    def settings(shards: str):
        return load_bot_settings(
            discord_token=emu.token, engine_url=[engine.url], engine_token=TOKEN, data_dir=tmp_path / "bot",
            store_url=store_url, discord_api_base=emu.api_base, discord_gateway=emu.gateway_url,
            catalog_poll_s=0, engine_health_s=0, http_port=0, shards=shards)

    bots = [World(emu, engine, guilds[n].id, guilds[n].channel_ids[0], alice.id, alice.id, settings(f"{n}-{n}/2"))
            for n in (0, 1)]
    try:
        for w in bots:
            await w.start_bot()
        assert sorted(bots[0].bot.shards) == [0] and sorted(bots[1].bot.shards) == [1]
        results = []
        for n, w in enumerate(bots):  # each guild's command reaches its own shard's bot
            rec = await w.slash("emoji", {"prompt": "cat face", "seed": 7})
            results.append(await w.result(rec))
            assert shard_of(emu, rec) == [n, 2]
        # Both bots wrote to the one store: either sees the other's job.
        assert await bots[1].bot.store.jobs.get(job_of(results[0])) is not None
        assert await bots[0].bot.store.jobs.get(job_of(results[1])) is not None

        # The bot of shard 0 goes; a bot running both shards takes over, and the old
        # message's button works there.
        await bots[0].stop_bot()
        heir = World(emu, engine, guilds[0].id, guilds[0].channel_ids[0], alice.id, alice.id, settings("0-1/2"))
        await heir.start_bot()
        bots.append(heir)
        parent = job_of(results[0])
        rec = await emu.click(int(results[0]["id"]), f"aigc:reroll:{parent}", alice.id)
        rerolled = await heir.result(rec)
        assert shard_of(emu, rec)[0] == 0
        child = await heir.bot.store.jobs.get(job_of(rerolled))
        assert child.parent_job_id == parent
    finally:
        for w in bots:
            with contextlib.suppress(Exception):
                await w.stop_bot()
        await emu.stop()
        await engine.stop()
        await drop_database(pg)

"""Login, READY, GUILD_CREATE, shards, intents, compression and resume with real discord.py."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import discord
import pytest
from discord.ext import commands

from emulator import Emulator, EmulatorConfig, point_discordpy_at
from emulator.config import PRIVILEGED_INTENTS

from .harness import BotClient, FastIdentify, running


async def test_login_ready_and_guilds(emu: Emulator, world) -> None:
    second = emu.create_guild("Second", channels=("a", "b"))
    client = BotClient()
    async with running(client, emu):
        assert client.user is not None and client.user.id == emu.application_id
        assert client.application_id == emu.application_id
        assert {g.id for g in client.guilds} == {world["guild"].id, second.id}
        guild = client.get_guild(world["guild"].id)
        assert guild is not None and guild.name == "Test Guild"
        assert [c.name for c in guild.text_channels] == ["general"]
        assert guild.member_count == 4 and guild.get_member(world["alice"].id) is None  # no members intent
        assert guild.me.guild_permissions.manage_expressions
        assert [c.name for c in client.get_guild(second.id).text_channels] == ["a", "b"]
    # the handshake, in order
    paths = [c.path for c in emu.calls()]
    assert paths[:2] == ["/users/@me", "/oauth2/applications/@me"]
    sent = [e.t or e.op for e in emu.events(direction="send")]
    assert sent[0] == 10  # HELLO
    assert sent.count("READY") == 1 and sent.count("GUILD_CREATE") == 2
    identify = emu.recorder.events(direction="recv", op=2)[0]
    assert identify.d["token"] == "<redacted>" and identify.d["intents"] == discord.Intents.default().value
    assert emu.recorder.events(direction="recv", op=1), "client heartbeats at once"
    assert emu.recorder.events(direction="send", op=11), "emulator acks heartbeats"
    seqs = [e.s for e in emu.events(direction="send") if e.op == 0]
    assert seqs == list(range(1, len(seqs) + 1))


async def test_guild_created_after_ready_is_dispatched(emu: Emulator, world) -> None:
    client = BotClient()
    joined: asyncio.Future[discord.Guild] = asyncio.get_running_loop().create_future()

    async def on_guild_join(guild: discord.Guild) -> None:
        joined.set_result(guild)

    client.on_guild_join = on_guild_join  # type: ignore[attr-defined]
    async with running(client, emu):
        new = emu.create_guild("Later")
        guild = await asyncio.wait_for(joined, 5)
        assert guild.id == new.id
        ch = emu.create_channel(new.id, "fresh")
        await emu.wait_for(lambda: client.get_channel(ch.id) is not None)
        assert client.get_channel(ch.id).name == "fresh"  # type: ignore[union-attr]


async def test_clean_close_ends_the_session(emu: Emulator, world) -> None:
    from emulator.gateway import NotConnected

    identify = {"op": 2, "d": {"token": emu.token, "intents": 1, "properties": {}}}
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(emu.gateway_url + "?v=10&encoding=json") as ws:
            await ws.receive_json()
            await ws.send_json(identify)
            assert (await ws.receive_json())["t"] == "READY"
            [session] = emu.hub.sessions.values()
            await ws.close(code=1000)
    await emu.wait_for(lambda: session.conn is None)
    assert session.invalid  # a 1000 close is not resumable
    emu.world.commands.bulk_overwrite(None, [{"name": "x", "description": "x"}], emu.clock.time())
    with pytest.raises(NotConnected):
        await emu.slash(world["guild"].id, world["channel"], world["alice"].id, "x")


async def test_discordpy_close_leaves_a_resumable_session(emu: Emulator, world) -> None:
    # discord.py's Client.close() wakes its pending receive, which closes with 4000 first:
    # on Discord that session stays resumable, and so it does here.
    async with running(BotClient(), emu):
        [session] = emu.hub.sessions.values()
    await emu.wait_for(lambda: session.conn is None)
    assert not session.invalid


async def test_bad_token_is_rejected(emu: Emulator) -> None:
    client = BotClient()
    with pytest.raises(discord.LoginFailure):
        await client.login("wrong-token")
    await client.close()


async def test_bad_token_on_gateway_closes_4004(emu: Emulator) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(emu.gateway_url + "?v=10&encoding=json") as ws:
            hello = await ws.receive_json()
            assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] > 0
            await ws.send_json({"op": 2, "d": {"token": "nope", "intents": 1, "properties": {}}})
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4004


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        ([{"op": 8, "d": {"guild_id": "1"}}], 4003),  # not identified yet
        ([{"op": 2, "d": {"token": "emulator-bot-token", "intents": 1, "properties": {}}},
          {"op": 2, "d": {"token": "emulator-bot-token", "intents": 1, "properties": {}}}], 4005),
        ([{"op": 2, "d": {"token": "emulator-bot-token", "intents": 1, "properties": {}, "shard": [2, 2]}}], 4010),
        ([{"op": 2, "d": {"token": "emulator-bot-token", "properties": {}}}], 4013),  # v10 needs intents
        ([{"op": 2, "d": {"token": "emulator-bot-token", "intents": 1, "properties": {}}}, {"op": 99}], 4001),
        (["not json"], 4002),
    ],
)
async def test_gateway_close_codes(emu: Emulator, frames, code) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(emu.gateway_url + "?v=10&encoding=json") as ws:
            await ws.receive_json()  # HELLO
            for frame in frames:
                if isinstance(frame, str):
                    await ws.send_str(frame)
                else:
                    await ws.send_json(frame)
            while True:
                msg = await asyncio.wait_for(ws.receive(), 5)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
            assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == code


async def test_resume_of_unknown_session_is_invalid(emu: Emulator) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(emu.gateway_url + "?v=10&encoding=json") as ws:
            await ws.receive_json()
            await ws.send_json({"op": 6, "d": {"token": emu.token, "session_id": "nope", "seq": 3}})
            assert await asyncio.wait_for(ws.receive_json(), 5) == {"op": 9, "d": False, "s": None, "t": None}


def test_point_discordpy_at_restores() -> None:
    before = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    restore = point_discordpy_at("http://127.0.0.1:1/api/v10/", "ws://127.0.0.1:1/")
    assert discord.http.Route.BASE == "http://127.0.0.1:1/api/v10"
    assert discord.http.Route("GET", "/users/@me").url == "http://127.0.0.1:1/api/v10/users/@me"
    assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == "ws://127.0.0.1:1/"
    restore()
    assert (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == before


async def test_privileged_intents_need_configuration(emu: Emulator) -> None:
    client = BotClient(intents=discord.Intents.all())
    with pytest.raises(discord.PrivilegedIntentsRequired):
        await asyncio.wait_for(client.start(emu.token), 10)
    await client.close()
    assert emu.recorder.events(direction="recv", op=2)


async def test_heartbeat_latency_is_a_round_trip_not_an_interval(world, caplog) -> None:
    # discord.py sets its send time after the keep-alive thread sees the send finish; an ACK that
    # beats it reads as one whole interval late ("Can't keep up", at every heartbeat of `aigc up`
    # before the emulator waited a round trip). Latency must read as that round trip.
    cfg = EmulatorConfig(heartbeat_interval_ms=400)
    async with Emulator(cfg) as emu2:
        restore = point_discordpy_at(emu2.api_base, emu2.gateway_url)
        try:
            client = BotClient()
            async with running(client, emu2):
                await asyncio.sleep(1.5)  # three heartbeats from the keep-alive thread
                assert len(emu2.recorder.events(direction="send", op=11)) >= 3
                assert 0.04 <= client.latency < 0.3, client.latency
        finally:
            restore()
    assert "Can't keep up" not in caplog.text


async def test_privileged_intents_allowed_when_configured(world) -> None:
    cfg = EmulatorConfig(allowed_privileged_intents=PRIVILEGED_INTENTS)
    async with Emulator(cfg) as emu2:
        restore = point_discordpy_at(emu2.api_base, emu2.gateway_url)
        try:
            emu2.create_guild("G")
            client = BotClient(intents=discord.Intents.all())
            async with running(client, emu2):
                assert len(client.guilds) == 1
                assert client.guilds[0].chunked  # member_count matches members: no chunk wait
                dave = emu2.create_user("dave")
                emu2.add_member(client.guilds[0].id, dave.id)
                await emu2.wait_for(lambda: client.guilds[0].get_member(dave.id) is not None)  # GUILD_MEMBER_ADD
                found = await client.guilds[0].query_members(query="da")  # op 8 → GUILD_MEMBERS_CHUNK
                assert [m.id for m in found] == [dave.id]
                assert emu2.recorder.events(direction="recv", op=8)
        finally:
            restore()


async def test_discordpy_reads_zlib_stream(emu: Emulator, world) -> None:
    async with running(BotClient(), emu) as client:
        assert len(client.guilds) == 1
    log = emu.hub.connection_log
    assert log[0]["query"] == {"v": "10", "encoding": "json", "compress": "zlib-stream"}
    assert log[0]["zlib_stream"] is True


async def test_zlib_stream_wire_format(emu: Emulator) -> None:
    """One compressor per connection; every message ends with Z_SYNC_FLUSH's 00 00 ff ff."""
    import zlib

    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(emu.gateway_url + "?v=10&encoding=json&compress=zlib-stream") as ws:
            d = zlib.decompressobj()
            first = await ws.receive()
            assert first.type == aiohttp.WSMsgType.BINARY and first.data.endswith(b"\x00\x00\xff\xff")
            assert json.loads(d.decompress(first.data))["op"] == 10
            await ws.send_json({"op": 1, "d": None})
            second = await ws.receive()
            assert second.data.endswith(b"\x00\x00\xff\xff")
            # decodable only with the same (shared) decompressor: proves one stream
            assert json.loads(d.decompress(second.data))["op"] == 11
        async with session.ws_connect(emu.gateway_url + "?v=10&encoding=json") as ws:
            plain = await ws.receive()
            assert plain.type == aiohttp.WSMsgType.TEXT and json.loads(plain.data)["op"] == 10


async def test_plain_text_frames_when_compression_disabled(world) -> None:
    async with Emulator(EmulatorConfig(allow_zlib_stream=False)) as emu2:
        restore = point_discordpy_at(emu2.api_base, emu2.gateway_url)
        try:
            emu2.create_guild("G")
            async with running(BotClient(), emu2) as client:
                assert len(client.guilds) == 1
        finally:
            restore()


async def test_resume_after_dropped_connection_replays_missed_events(emu: Emulator, world) -> None:
    client = BotClient()
    resumed = asyncio.Event()

    async def on_resumed() -> None:
        resumed.set()

    client.on_resumed = on_resumed  # type: ignore[attr-defined]
    async with running(client, emu):
        first_session = emu.events("READY")[0].session_id
        await emu.gateway_drop()
        # While the bot is away, a channel appears: it must arrive after RESUME.
        ch = emu.create_channel(world["guild"].id, "while-away")
        await asyncio.wait_for(resumed.wait(), 10)
        assert client.get_channel(ch.id) is not None
        resume = emu.recorder.events(direction="recv", op=6)
        assert resume and resume[0].d["session_id"] == first_session
        assert len(emu.events("READY")) == 1  # no re-identify
        replayed = [e for e in emu.events("CHANNEL_CREATE", direction="send")]
        assert replayed and replayed[0].session_id == first_session


async def test_op7_reconnect_resumes(emu: Emulator, world) -> None:
    client = BotClient()
    resumed = asyncio.Event()

    async def on_resumed() -> None:
        resumed.set()

    client.on_resumed = on_resumed  # type: ignore[attr-defined]
    async with running(client, emu):
        await emu.gateway_reconnect()
        await asyncio.wait_for(resumed.wait(), 10)
        assert emu.events("RESUMED")


async def test_op9_invalid_session_reidentifies(emu: Emulator, world) -> None:
    client = BotClient()
    async with running(client, emu):
        await emu.gateway_invalidate(resumable=False)
        await emu.wait_for(lambda: len(emu.events("READY")) == 2, timeout=10)
        sessions = {e.session_id for e in emu.events("READY")}
        assert len(sessions) == 2


class ShardedBot(FastIdentify, commands.AutoShardedBot):
    async def setup_hook(self) -> None:
        @self.tree.command(name="where", description="Which shard am I on?")
        async def where(interaction: discord.Interaction) -> None:
            await interaction.response.send_message(f"shard {interaction.guild.shard_id}")  # type: ignore[union-attr]

        await self.tree.sync()


async def test_auto_sharded_bot_gets_shards_from_gateway_bot(world) -> None:
    async with Emulator(EmulatorConfig(shard_count=2)) as emu2:
        restore = point_discordpy_at(emu2.api_base, emu2.gateway_url)
        try:
            base = emu2.world.ids.next() >> 22
            # explicit ids so that both shards own guilds: shard = (id >> 22) % 2
            ids = [emu2.create_guild(f"g{i}", guild_id=((base + i) << 22) | 7).id for i in range(6)]
            assert {(g >> 22) % 2 for g in ids} == {0, 1}
            bot = ShardedBot(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05)
            async with running(bot, emu2):
                await emu2.wait_for(lambda: len(bot.guilds) == 6, timeout=10)
                assert bot.shard_count == 2
                for gid in ids:
                    assert bot.get_guild(gid).shard_id == (gid >> 22) % 2  # type: ignore[union-attr]
                # each interaction reaches the shard that owns its guild, and is answered there
                user = emu2.create_user("u")
                for gid in ids[:4]:
                    emu2.add_member(gid, user.id)
                    rec = await emu2.slash(gid, emu2.world.guilds[gid].channel_ids[0], user.id, "where")
                    [msg] = await emu2.wait_messages(rec)
                    assert msg["content"] == f"shard {(gid >> 22) % 2}"
                    [ev] = [e for e in emu2.events("INTERACTION_CREATE") if e.d["id"] == str(rec.id)]
                    assert ev.shard == [(gid >> 22) % 2, 2]
            assert any(c.path == "/gateway/bot" for c in emu2.calls())
            for ev in emu2.events("READY"):
                sid, count = ev.shard  # type: ignore[misc]
                expected = {str(g) for g in ids if (g >> 22) % count == sid}
                assert {g["id"] for g in ev.d["guilds"]} == expected
        finally:
            restore()


async def test_rest_responses_are_exactly_application_json(emu: Emulator) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(emu.api_base + "/users/@me", headers={"Authorization": f"Bot {emu.token}"}) as r:
            assert r.status == 200 and r.headers["Content-Type"] == "application/json"
        async with session.get(emu.api_base + "/users/@me") as r:
            assert r.status == 401 and r.headers["Content-Type"] == "application/json"
            assert (await r.json()) == {"code": 0, "message": "401: Unauthorized"}
        async with session.get(emu.api_base + "/nope", headers={"Authorization": f"Bot {emu.token}"}) as r:
            assert r.status == 404 and r.headers["Content-Type"] == "application/json"
        async with session.get(emu.api_base + "/gateway") as r:
            assert (await r.json())["url"] == emu.gateway_url

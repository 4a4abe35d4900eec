"""Channel messages, Discord's payload limits, rate limits, emoji upload and AutoMod rules,
driven through discord.py's own HTTP client."""

from __future__ import annotations

import io
import time
from typing import Any

import aiohttp
import discord
import pytest
from discord.http import Route

from emulator import Emulator, EmulatorConfig, RateLimitConfig, point_discordpy_at
from emulator.models import MANAGE_GUILD_EXPRESSIONS, SEND_MESSAGES, VIEW_CHANNEL

from .harness import BotClient, running
from .test_interactions import png


@pytest.fixture
async def client(emu: Emulator, world) -> Any:
    async with running(BotClient(), emu) as c:
        yield c


async def _post(client: discord.Client, channel_id: int, payload: dict[str, Any]) -> Any:
    return await client.http.request(Route("POST", "/channels/{channel_id}/messages", channel_id=channel_id),
                                     json=payload)


async def _form_error(client: discord.Client, channel_id: int, payload: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(discord.HTTPException) as info:
        await _post(client, channel_id, payload)
    assert info.value.status == 400 and info.value.code == 50035
    return info.value  # type: ignore[return-value]


def _errors(emu: Emulator) -> dict[str, Any]:
    return emu.calls("POST", r"/channels/\d+/messages")[-1].response["errors"]


async def test_channel_message_lifecycle(emu: Emulator, world, client: discord.Client) -> None:
    channel = client.get_channel(world["channel"])
    assert isinstance(channel, discord.TextChannel)
    embed = discord.Embed(title="Result", description="AI-generated").set_image(url="attachment://grid.png")
    msg = await channel.send("hello", embed=embed, file=discord.File(io.BytesIO(png()), "grid.png"))
    assert msg.content == "hello" and msg.attachments[0].filename == "grid.png"
    assert await msg.attachments[0].read() == png()
    fetched = await channel.fetch_message(msg.id)
    assert fetched.embeds[0].title == "Result"
    edited = await msg.edit(content="edited", attachments=[])
    assert edited.content == "edited" and edited.attachments == []
    history = [m.id async for m in channel.history(limit=10)]
    assert history == [msg.id]
    await msg.delete()
    with pytest.raises(discord.NotFound) as info:
        await channel.fetch_message(msg.id)
    assert info.value.code == 10008
    fetched_channel = await client.fetch_channel(world["channel"])
    assert fetched_channel.name == "general"  # type: ignore[union-attr]
    assert [e.t for e in emu.events(direction="send") if e.t and e.t.startswith("MESSAGE")] == [
        "MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE"]


async def test_edit_keeps_attachments_unless_listed(emu: Emulator, world, client: discord.Client) -> None:
    channel = client.get_channel(world["channel"])
    msg = await channel.send(file=discord.File(io.BytesIO(png()), "a.png"))  # type: ignore[union-attr]
    kept = await msg.edit(content="text only")
    assert [a.filename for a in kept.attachments] == ["a.png"]
    both = await msg.edit(attachments=[kept.attachments[0], discord.File(io.BytesIO(b"GIF89a\x01\x00\x01\x00"), "b.gif")])
    assert [a.filename for a in both.attachments] == ["a.png", "b.gif"]
    assert both.attachments[1].content_type == "image/gif"


async def test_content_and_empty_message(emu: Emulator, world, client: discord.Client) -> None:
    c = world["channel"]
    await _post(client, c, {"content": "x" * 2000})
    await _form_error(client, c, {"content": "x" * 2001})
    assert _errors(emu)["content"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
    with pytest.raises(discord.HTTPException) as info:
        await _post(client, c, {"content": ""})
    assert info.value.code == 50006


@pytest.mark.parametrize(
    ("embeds", "path"),
    [
        ([{"title": "t" * 257}], ["embeds", "0", "title"]),
        ([{"description": "d" * 4097}], ["embeds", "0", "description"]),
        ([{"footer": {"text": "f" * 2049}}], ["embeds", "0", "footer", "text"]),
        ([{"fields": [{"name": "n", "value": "v"}] * 26}], ["embeds", "0", "fields"]),
        ([{"fields": [{"name": "n" * 257, "value": "v"}]}], ["embeds", "0", "fields", "0", "name"]),
        ([{"fields": [{"name": "n", "value": "v" * 1025}]}], ["embeds", "0", "fields", "0", "value"]),
        ([{"title": "t"}] * 11, ["embeds"]),
        ([{"description": "d" * 4000}, {"description": "d" * 2001}], ["embeds"]),  # 6001 in total
    ],
)
async def test_embed_limits(emu: Emulator, world, client: discord.Client, embeds, path) -> None:
    await _form_error(client, world["channel"], {"embeds": embeds})
    node = _errors(emu)
    for key in path:
        node = node[key]
    assert node["_errors"]


def _row(*buttons: dict[str, Any]) -> dict[str, Any]:
    return {"type": 1, "components": list(buttons)}


def _button(cid: str, label: str = "b") -> dict[str, Any]:
    return {"type": 2, "style": 1, "label": label, "custom_id": cid}


@pytest.mark.parametrize(
    ("components", "path"),
    [
        ([_row(_button(f"b{i}")) for i in range(6)], ["components"]),
        ([_row(*[_button(f"b{i}") for i in range(6)])], ["components", "0", "components"]),
        ([_row(_button("x" * 101))], ["components", "0", "components", "0", "custom_id"]),
        ([_row(_button(""))], ["components", "0", "components", "0", "custom_id"]),
        ([_row(_button("a", "l" * 81))], ["components", "0", "components", "0", "label"]),
        ([_row(_button("a"), _button("a"))], ["components", "0", "components", "1", "custom_id"]),
        ([_button("bare")], ["components", "0", "type"]),
        ([_row({"type": 2, "style": 5, "label": "link"})], ["components", "0", "components", "0", "url"]),
    ],
)
async def test_component_limits(emu: Emulator, world, client: discord.Client, components, path) -> None:
    await _form_error(client, world["channel"], {"content": "c", "components": components})
    node = _errors(emu)
    for key in path:
        node = node[key]
    assert node["_errors"]


async def test_five_by_five_is_fine(emu: Emulator, world, client: discord.Client) -> None:
    rows = [_row(*[_button(f"b{r}{i}", "l" * 80) for i in range(5)]) for r in range(5)]
    msg = await _post(client, world["channel"], {"content": "grid", "components": rows})
    assert len(msg["components"]) == 5


async def test_send_needs_permission(emu: Emulator, world, client: discord.Client) -> None:
    gid = world["guild"].id
    emu.world.guilds[gid].roles[gid].permissions = VIEW_CHANNEL  # @everyone can only look
    emu.set_bot_permissions(gid, VIEW_CHANNEL)
    with pytest.raises(discord.Forbidden) as info:
        await client.get_channel(world["channel"]).send("hi")  # type: ignore[union-attr]
    assert info.value.code == 50013
    emu.set_bot_permissions(world["guild"].id, VIEW_CHANNEL | SEND_MESSAGES)
    await client.get_channel(world["channel"]).send("hi")  # type: ignore[union-attr]


async def test_forced_429_is_honoured(emu: Emulator, world, client: discord.Client) -> None:
    emu.limiter.force(2, retry_after=0.05, path=r"/channels/\d+/messages")
    t0 = time.monotonic()
    msg = await client.get_channel(world["channel"]).send("after 429s")  # type: ignore[union-attr]
    assert msg.content == "after 429s" and time.monotonic() - t0 >= 0.1
    statuses = [c.status for c in emu.calls("POST", r"/channels/\d+/messages")]
    assert statuses == [429, 429, 200]
    limited = emu.calls(status=429)[0]
    assert limited.response == {"code": 0, "message": "You are being rate limited.", "retry_after": 0.05,
                                "global": False}


async def test_global_429_and_webhook_429(emu: Emulator, world, client: discord.Client) -> None:
    emu.limiter.force(1, retry_after=0.05, is_global=True)
    await client.get_channel(world["channel"]).send("global")  # type: ignore[union-attr]
    assert emu.calls(status=429)[0].response["global"] is True
    # followups go through discord.py's webhook adapter, which has its own 429 handling
    got: list[str] = []

    @client.tree.command(name="ping", description="p")  # type: ignore[attr-defined]
    async def ping(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        emu.limiter.force(1, retry_after=0.05, path=r"/webhooks/.*")
        m = await interaction.followup.send("pong", wait=True)
        got.append(m.content)

    await client.tree.sync()  # type: ignore[attr-defined]
    await emu.slash(world["guild"].id, world["channel"], world["alice"].id, "ping")
    await emu.wait_for(lambda: got)
    assert got == ["pong"] and [c.status for c in emu.calls("POST", r"/webhooks/.+")] == [429, 200]


async def test_bucket_headers_make_discordpy_wait(world) -> None:
    async with Emulator(EmulatorConfig(rate_limit=RateLimitConfig(limit=2, window_s=0.3))) as emu2:
        restore = point_discordpy_at(emu2.api_base, emu2.gateway_url)
        try:
            guild = emu2.create_guild("G")
            async with running(BotClient(), emu2) as c:
                channel = c.get_channel(guild.channel_ids[0])
                t0 = time.monotonic()
                for i in range(5):
                    await channel.send(f"m{i}")  # type: ignore[union-attr]
                elapsed = time.monotonic() - t0
            sends = emu2.calls("POST", r"/channels/\d+/messages")
            assert [c.status for c in sends if c.status == 200] == [200] * 5
            assert elapsed >= 0.5  # 5 sends at 2 per 0.3 s: discord.py slept on the headers
            assert len(emu2.messages(guild.channel_ids[0])) == 5
        finally:
            restore()


async def test_rate_limit_headers(world) -> None:
    async with Emulator(EmulatorConfig(rate_limit=RateLimitConfig(limit=1, window_s=5))) as emu2:
        url = emu2.api_base + "/users/@me"
        headers = {"Authorization": f"Bot {emu2.token}"}
        async with aiohttp.ClientSession() as s:
            async with s.get(url, headers=headers) as r:
                assert r.headers["X-RateLimit-Limit"] == "1" and r.headers["X-RateLimit-Remaining"] == "0"
                assert float(r.headers["X-RateLimit-Reset-After"]) > 0 and r.headers["X-RateLimit-Bucket"]
            async with s.get(url, headers=headers) as r:
                body = await r.json()
                assert r.status == 429 and r.headers["Via"] and body["retry_after"] > 0
                assert body["global"] is False and r.headers["Content-Type"] == "application/json"


async def test_emoji_upload(emu: Emulator, world, client: discord.Client) -> None:
    guild = client.get_guild(world["guild"].id)
    assert guild is not None
    emoji = await guild.create_custom_emoji(name="ai_cat", image=png())
    assert emoji.name == "ai_cat" and emoji.id in emu.world.guilds[guild.id].emojis
    body = emu.calls("POST", r"/guilds/\d+/emojis")[0].json
    assert body["image"].startswith("data:image/png;base64,")
    await emu.wait_for(lambda: any(e.id == emoji.id for e in guild.emojis))  # GUILD_EMOJIS_UPDATE arrived


async def test_emoji_too_large(emu: Emulator, world, client: discord.Client) -> None:
    guild = client.get_guild(world["guild"].id)
    big = png(pad=256 * 1024)
    with pytest.raises(discord.HTTPException) as info:
        await guild.create_custom_emoji(name="huge", image=big)  # type: ignore[union-attr]
    assert info.value.status == 400 and info.value.code == 50035
    errors = emu.calls("POST", r"/guilds/\d+/emojis")[0].response["errors"]
    assert errors["image"]["_errors"][0]["code"] == "BINARY_TYPE_MAX_SIZE"
    just_fits = png(pad=256 * 1024 - len(png()) - 12)
    assert len(just_fits) == 256 * 1024
    await guild.create_custom_emoji(name="fits", image=just_fits)  # type: ignore[union-attr]


async def test_emoji_needs_manage_expressions(emu: Emulator, world, client: discord.Client) -> None:
    emu.set_bot_permissions(world["guild"].id, VIEW_CHANNEL | SEND_MESSAGES)
    guild = client.get_guild(world["guild"].id)
    with pytest.raises(discord.Forbidden) as info:
        await guild.create_custom_emoji(name="nope", image=png())  # type: ignore[union-attr]
    assert info.value.status == 403 and info.value.code == 50013
    emu.set_bot_permissions(world["guild"].id, VIEW_CHANNEL | MANAGE_GUILD_EXPRESSIONS)
    await guild.create_custom_emoji(name="yes", image=png())  # type: ignore[union-attr]


async def test_automod_rules(emu: Emulator, world, client: discord.Client) -> None:
    emu.set_automod_rules(world["guild"].id, [
        {"name": "No spoilers", "keywords": ["*spoiler*", "ending"], "allow_list": ["ending credits"]},
    ])
    guild = client.get_guild(world["guild"].id)
    rules = await guild.fetch_automod_rules()  # type: ignore[union-attr]
    assert [r.name for r in rules] == ["No spoilers"]
    assert rules[0].trigger.keyword_filter == ["*spoiler*", "ending"]
    assert rules[0].trigger.allow_list == ["ending credits"]
    emu.set_bot_permissions(world["guild"].id, VIEW_CHANNEL)
    with pytest.raises(discord.Forbidden):
        await guild.fetch_automod_rules()  # type: ignore[union-attr]


async def test_dm_channel(emu: Emulator, world, client: discord.Client) -> None:
    user = await client.fetch_user(world["alice"].id)
    dm = await user.create_dm()
    msg = await dm.send("hello in private")
    assert msg.channel.id == dm.id
    assert emu.messages(dm.id)[0]["content"] == "hello in private"


async def test_user_messages_respect_message_content_intent(emu: Emulator, world, client: discord.Client) -> None:
    got: list[str] = []

    async def on_message(message: discord.Message) -> None:
        got.append(message.content)

    client.on_message = on_message  # type: ignore[attr-defined]
    emu.post_as_user(world["channel"], world["alice"].id, "secret prompt")
    emu.post_as_user(world["channel"], world["alice"].id, f"<@{emu.application_id}> hello")
    await emu.wait_for(lambda: len(got) == 2)
    assert got == ["", f"<@{emu.application_id}> hello"]  # no MESSAGE_CONTENT intent
    assert emu.messages(world["channel"])[0]["content"] == "secret prompt"

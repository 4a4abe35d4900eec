"""Command sync through discord.py's CommandTree and the emulator's validation rules."""

from __future__ import annotations

from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands

from emulator import Emulator, EmulatorConfig

from .harness import BotClient, running


def _tree_client(guild_id: int | None = None) -> BotClient:
    client = BotClient()
    client.sync_guild = guild_id

    @app_commands.command(name="imagine", description="Make a picture")
    @app_commands.describe(prompt="What to draw")
    @app_commands.choices(style=[app_commands.Choice(name="Photo", value="photo"),
                                 app_commands.Choice(name="Anime", value="anime")])
    async def imagine(interaction: discord.Interaction, prompt: str, style: str = "photo",
                      count: app_commands.Range[int, 1, 4] = 1) -> None:
        await interaction.response.send_message(prompt)

    group = app_commands.Group(name="aigc", description="Admin tools")
    admin = app_commands.Group(name="admin", description="Admin only", parent=group)

    @admin.command(name="reload", description="Reload the catalog")
    async def reload(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("reloaded")

    @app_commands.context_menu(name="Make variations")
    async def variations(interaction: discord.Interaction, message: discord.Message) -> None:
        await interaction.response.send_message("ok")

    guild = discord.Object(guild_id) if guild_id else None
    client.tree.add_command(imagine, guild=guild)
    client.tree.add_command(group, guild=guild)
    client.tree.add_command(variations, guild=guild)
    return client


async def test_global_sync_roundtrip(emu: Emulator, world) -> None:
    async with running(_tree_client(), emu) as client:
        fetched = await client.tree.fetch_commands()
    names = {(c.name, c.type.value) for c in fetched}
    assert names == {("imagine", 1), ("aigc", 1), ("Make variations", 3)}
    put = emu.calls("PUT", rf"/applications/{emu.application_id}/commands")
    assert len(put) == 1 and put[0].status == 200
    for cmd in put[0].response:
        assert cmd["application_id"] == str(emu.application_id) and cmd["id"] and cmd["version"]
        assert "guild_id" not in cmd
    imagine = next(c for c in emu.commands() if c["name"] == "imagine")
    style = next(o for o in imagine["options"] if o["name"] == "style")
    assert [c["value"] for c in style["choices"]] == ["photo", "anime"]
    assert emu.command_creates_today() == 3


async def test_resync_keeps_ids_and_versions(emu: Emulator, world) -> None:
    async with running(_tree_client(), emu):
        pass
    first = {c["name"]: (c["id"], c["version"]) for c in emu.commands()}
    async with running(_tree_client(), emu):
        pass
    assert {c["name"]: (c["id"], c["version"]) for c in emu.commands()} == first
    assert emu.command_creates_today() == 3  # unchanged commands are not creates


async def test_guild_sync_answers_guild_id(emu: Emulator, world) -> None:
    gid = world["guild"].id
    async with running(_tree_client(gid), emu):
        pass
    put = emu.calls("PUT", rf"/applications/\d+/guilds/{gid}/commands")
    assert put and all(c["guild_id"] == str(gid) for c in put[0].response)
    assert emu.command_creates_today(gid) == 3 and emu.command_creates_today() == 0
    assert {c["name"] for c in emu.commands(gid)} == {"imagine", "aigc", "Make variations"}


def _cmd(name: str = "ok", **kw: Any) -> dict[str, Any]:
    return {"name": name, "description": "A command", "type": 1, **kw}


async def _sync_error(client: discord.Client, payload: list[dict[str, Any]]) -> discord.HTTPException:
    with pytest.raises(discord.HTTPException) as info:
        await client.http.bulk_upsert_global_commands(client.application_id, payload=payload)
    assert info.value.status == 400 and info.value.code == 50035
    return info.value


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([_cmd("Imagine")], "0.name"),  # uppercase
        ([_cmd("has space")], "0.name"),
        ([_cmd("x" * 33)], "0.name"),
        ([_cmd(description="")], "0.description"),
        ([_cmd(description="d" * 101)], "0.description"),
        ([_cmd(options=[{"type": 3, "name": f"o{i}", "description": "d"} for i in range(26)])], "0.options"),
        ([_cmd(options=[{"type": 3, "name": "o", "description": "d",
                         "choices": [{"name": f"c{i}", "value": f"v{i}"} for i in range(26)]}])], "0.options.0.choices"),
        ([_cmd(options=[{"type": 3, "name": "o", "description": "d",
                         "choices": [{"name": "c", "value": "v" * 101}]}])], "0.options.0.choices.0.value"),
        ([_cmd(name_localizations={"xx-XX": "nom"})], "0.name_localizations.xx-XX"),
        ([_cmd(name_localizations={"zh-CN": "画 图"})], "0.name_localizations.zh-CN"),
        ([_cmd(description_localizations={"en-US": "d" * 101})], "0.description_localizations.en-US"),
        ([_cmd(options=[{"type": 3, "name": "a", "description": "d"},
                        {"type": 3, "name": "b", "description": "d", "required": True}])], "0.options.1.required"),
        ([_cmd("dup"), _cmd("dup")], "1.name"),
        ([{"name": "Ctx", "type": 3, "description": "nope"}], "0.description"),
    ],
)
async def test_invalid_commands_are_rejected(emu: Emulator, world, payload, field) -> None:
    async with running(BotClient(), emu) as client:
        err = await _sync_error(client, payload)
    assert err.code == 50035
    node: Any = emu.calls("PUT")[-1].response["errors"]
    for key in field.split("."):
        node = node[key]
    assert node["_errors"][0]["code"]
    assert emu.commands() == []  # nothing stored


async def test_localized_unicode_names_are_valid(emu: Emulator, world) -> None:
    async with running(BotClient(), emu) as client:
        data = await client.http.bulk_upsert_global_commands(client.application_id, payload=[
            _cmd("画图", name_localizations={"zh-CN": "画图", "en-US": "draw"},
                 description_localizations={"zh-CN": "画一张图"}),
            _cmd("नमस्ते"), _cmd("สวัสดี"), _cmd("it's-ok_1"),
        ])
    assert [c["name"] for c in data] == ["画图", "नमस्ते", "สวัสดี", "it's-ok_1"]


async def test_size_limits(emu: Emulator, world) -> None:
    async with running(BotClient(), emu) as client:
        await _sync_error(client, [_cmd(f"c{i}") for i in range(101)])
        big = [{"type": 3, "name": f"o{i}", "description": "d" * 100,
                "choices": [{"name": "n" * 100, "value": "v" * 100} for _ in range(25)]} for i in range(3)]
        err = await _sync_error(client, [_cmd(options=big)])
        assert "APPLICATION_COMMAND_TOO_LARGE" in str(emu.calls("PUT")[-1].response)
        ok = await client.http.bulk_upsert_global_commands(client.application_id,
                                                            payload=[_cmd(f"c{i}") for i in range(100)])
        assert len(ok) == 100
        assert err.code == 50035


async def test_daily_create_cap(world) -> None:
    async with Emulator(EmulatorConfig(max_daily_command_creates=3)) as emu2:
        headers = {"Authorization": f"Bot {emu2.token}"}
        url = f"{emu2.api_base}/applications/{emu2.application_id}/commands"
        async with aiohttp.ClientSession() as s:
            async with s.put(url, json=[_cmd("a"), _cmd("b"), _cmd("c")], headers=headers) as r:
                assert r.status == 200
            async with s.put(url, json=[_cmd("a"), _cmd("b"), _cmd("c"), _cmd("d")], headers=headers) as r:
                body = await r.json()
                assert r.status == 429 and body["code"] == 30034 and body["retry_after"] > 0
                assert r.headers["Via"] and r.headers["Content-Type"] == "application/json"
            emu2.clock.advance(24 * 3600)  # a new day
            async with s.put(url, json=[_cmd("a"), _cmd("b"), _cmd("c"), _cmd("d")], headers=headers) as r:
                assert r.status == 200
        assert emu2.command_creates_today() == 1


async def test_single_command_upsert_and_delete(emu: Emulator, world) -> None:
    async with running(BotClient(), emu) as client:
        created = await client.http.upsert_global_command(client.application_id, _cmd("solo"))
        again = await client.http.upsert_global_command(client.application_id, _cmd("solo", description="new"))
        assert again["id"] == created["id"] and again["version"] != created["version"]
        await client.http.delete_global_command(client.application_id, created["id"])
        assert await client.http.get_global_commands(client.application_id) == []
        with pytest.raises(discord.NotFound):
            await client.http.delete_global_command(client.application_id, created["id"])

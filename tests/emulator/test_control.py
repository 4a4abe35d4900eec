"""The HTTP control API (via EmulatorControl), the playground page and ``python -m emulator``."""

from __future__ import annotations

import asyncio
import base64
import sys

import aiohttp
import discord
import pytest
from discord import app_commands

from emulator import Emulator
from emulator.client import ControlError, EmulatorControl

from .harness import BotClient, running
from .test_interactions import png


class Bot(BotClient):
    def __init__(self) -> None:
        super().__init__()
        tree = self.tree

        @tree.command(name="draw", description="Draw")
        async def draw(interaction: discord.Interaction, prompt: str, image: discord.Attachment | None = None) -> None:
            await interaction.response.defer()
            size = len(await image.read()) if image else 0
            await interaction.followup.send(f"{prompt}:{size}", view=Again())

        @draw.autocomplete("prompt")
        async def ac(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            return [app_commands.Choice(name=current.upper(), value=current.upper())]

        @tree.command(name="ask", description="Modal")
        async def ask(interaction: discord.Interaction) -> None:
            modal = discord.ui.Modal(title="Ask", custom_id="ask")
            field = discord.ui.TextInput(label="Question", custom_id="q")
            modal.add_item(field)

            async def on_submit(inter: discord.Interaction) -> None:
                await inter.response.send_message(f"Q: {field.value}")

            modal.on_submit = on_submit  # type: ignore[method-assign]
            await interaction.response.send_modal(modal)


class Again(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Again", custom_id="again")
    async def again(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.send_message("again!")


async def test_control_api_end_to_end(emu: Emulator) -> None:
    async with EmulatorControl(emu.base_url) as ctl:
        guild = await ctl.create_guild("Ctl", channels=["chat"])
        gid, cid = guild["id"], guild["channel_ids"][0]
        user = await ctl.create_user("carol")
        member = await ctl.add_member(gid, user["id"], permissions=1 << 11)
        assert int(member["permissions"]) & (1 << 11)
        async with running(Bot(), emu):
            assert {c["name"] for c in await ctl.commands(gid)} == {"draw", "ask"}
            up = await ctl.upload(cid, "in.png", png())
            res = await ctl.slash(gid, cid, user["id"], "draw", {"prompt": "sun", "image": up["id"]}, wait="messages")
            assert res["acked"] and res["response_type"] == 5 and res["ack_ms"] >= 0
            [followup] = res["messages"]
            assert followup["content"] == f"sun:{len(png())}"
            ac = await ctl.autocomplete(gid, cid, user["id"], "draw", {"prompt": "ab"}, "prompt")
            assert ac["response_data"]["choices"] == [{"name": "AB", "value": "AB"}]
            clicked = await ctl.click(followup["id"], "again", user["id"], wait="messages")
            assert clicked["messages"][0]["content"] == "again!"
            opener = await ctl.slash(gid, cid, user["id"], "ask")
            assert opener["response_type"] == 9
            sub = await ctl.submit_modal(opener["id"], {"q": "why?"}, wait="messages")
            assert sub["messages"][0]["content"] == "Q: why?"
            msgs = await ctl.messages(cid, viewer_id=user["id"])
            assert [m["content"] for m in msgs][-2:] == ["again!", "Q: why?"]
            calls = await ctl.calls(method="POST", path=r"/interactions/.+/callback")
            assert len(calls) == 5 and all(c["status"] == 200 for c in calls)
            events = await ctl.events("INTERACTION_CREATE")
            assert len(events) == 5
            lat = await ctl.latency()
            assert lat["n"] == 5 and lat["missed_deadlines"] == 0
            with pytest.raises(ControlError) as info:
                await ctl.slash(gid, cid, user["id"], "draw", {})
            assert info.value.status == 400 and "prompt" in info.value.body["error"]
            rules = await ctl.set_automod_rules(gid, [{"name": "r", "keywords": ["bad"]}])
            assert rules[0]["trigger_metadata"]["keyword_filter"] == ["bad"]
            state = await ctl.state()
            assert state["connected_sessions"] == 1 and any(g["id"] == gid for g in state["guilds"])
            await ctl.force_429(1, retry_after=0.01, path=r"/channels/.*")
            await ctl.advance_clock(1)
            assert emu.clock.offset == 1
            assert (await ctl.gateway("reconnect"))["session_id"]
        await ctl.reset()
        assert (await ctl.state())["guilds"] == []


async def test_inject_without_bot_is_409(emu: Emulator, world) -> None:
    async with EmulatorControl(emu.base_url) as ctl:
        emu.world.commands.bulk_overwrite(None, [{"name": "x", "description": "x"}], emu.clock.time())
        with pytest.raises(ControlError) as info:
            await ctl.slash(world["guild"].id, world["channel"], world["alice"].id, "x")
        assert info.value.status == 409


async def test_playground_is_served(emu: Emulator, world) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(emu.playground_url) as r:
            html = await r.text()
            assert r.status == 200 and "playground.js" in html
        for asset in ("playground.js", "playground.css"):
            async with s.get(f"{emu.base_url}/playground/static/{asset}") as r:
                assert r.status == 200 and len(await r.read()) > 1000
        async with s.get(emu.base_url + "/", allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"] == "/playground"
        async with s.get(emu.base_url + "/_control/wait?since=0&timeout=1") as r:
            assert (await r.json())["revision"] == emu.world.revision


async def test_python_m_bot_emulator_prints_urls() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "emulator", "--port", "0", stdout=asyncio.subprocess.PIPE)
    try:
        lines: dict[str, str] = {}
        assert proc.stdout is not None
        while len(lines) < 5:
            line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
            assert line, "emulator exited early"
            key, _, value = line.partition(":")
            lines[key.strip()] = value.strip()
        async with aiohttp.ClientSession() as s:
            async with s.get(lines["Playground"]) as r:
                assert r.status == 200
            async with s.get(lines["Discord emulator API base"] + "/gateway") as r:
                assert (await r.json())["url"] == lines["Gateway"]
            async with s.get(lines["Playground"].replace("/playground", "/_control/state")) as r:
                state = await r.json()
                assert state["guilds"][0]["name"] == "AIGC Playground"
    finally:
        proc.terminate()
        await proc.wait()


def test_png_helper_is_valid() -> None:
    data = png(4, 3)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and base64.b64encode(data)


async def test_favicon_is_served(emu: Emulator) -> None:
    async with aiohttp.ClientSession() as s:
        for path in ("/favicon.ico", "/playground/static/favicon.svg"):
            async with s.get(emu.base_url + path) as r:
                assert r.status == 200, path
                assert r.headers["Content-Type"].startswith("image/svg+xml")
                assert b"<svg" in await r.read()
        async with s.get(emu.playground_url) as r:
            assert 'rel="icon"' in await r.text()


async def test_locale_of_a_user_is_sent_in_their_interactions(emu: Emulator, world) -> None:
    alice = world["alice"]
    async with EmulatorControl(emu.base_url) as ctl:
        assert (await ctl.set_locale(alice.id, "zh-CN"))["locale"] == "zh-CN"
        state = await ctl.state()
        (member,) = [m for m in state["guilds"][0]["members"] if m["user"]["id"] == str(alice.id)]
        assert member["locale"] == "zh-CN"
        with pytest.raises(ControlError) as info:
            await ctl.set_locale(alice.id, "klingon")
        assert info.value.status == 400
    emu.world.commands.bulk_overwrite(None, [{"name": "x", "description": "x"}], emu.clock.time())
    rec = emu.interactions.slash(world["guild"].id, world["channel"], alice.id, "x", {})
    assert rec.payload["locale"] == "zh-CN"


async def test_stopping_answers_open_long_polls_at_once(emu: Emulator) -> None:
    """A playground tab holds /_control/wait open; stopping the emulator (Ctrl-C of `aigc up`)
    must close that request instead of waiting for it to time out."""
    since = emu.world.revision
    async with aiohttp.ClientSession() as s:
        async def long_poll() -> tuple[int, dict]:
            async with s.get(f"{emu.base_url}/_control/wait?since={since}&timeout=30") as r:
                return r.status, await r.json()

        poll = asyncio.create_task(long_poll())
        await emu.wait_for(lambda: emu.open_long_polls == 1, 5)  # the poll is open and waiting
        stop = asyncio.create_task(emu.stop())
        # Before the fix the poll stayed open until its own 30 s timeout and stop() waited for it.
        done, _ = await asyncio.wait({poll}, timeout=10)
        assert poll in done, "the long poll was still open after stop()"
        status, body = poll.result()
        assert status == 503 and "shutting down" in body["error"]
        assert emu.open_long_polls == 0
        await asyncio.wait_for(stop, 10)
        assert emu._runner is None

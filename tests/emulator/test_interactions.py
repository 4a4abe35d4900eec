"""Interactions end to end: the emulator injects, the real discord.py bot answers."""

from __future__ import annotations

import asyncio
import io
import zlib
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands

from emulator import Emulator, file

from .harness import BotClient, running


def png(width: int = 2, height: int = 2, pad: int = 0) -> bytes:
    """A valid PNG (optionally padded with an ancillary chunk to reach a size)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x02\x00\x00\x00"
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
    if pad:
        body += chunk(b"zzZz", b"\x00" * pad)
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b"")


class Bot(BotClient):
    """The commands the interaction tests drive."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.seen: dict[str, Any] = {}
        self.errors: list[BaseException] = []
        tree = self.tree

        @tree.command(name="imagine", description="Make a picture")
        async def imagine(interaction: discord.Interaction, prompt: str,
                          count: app_commands.Range[int, 1, 4] = 1) -> None:
            await interaction.response.defer(thinking=True)
            self.seen["imagine"] = (prompt, count, interaction.filesize_limit)
            await interaction.followup.send(f"{prompt} ×{count}", file=discord.File(io.BytesIO(png()), "out.png"),
                                            wait=True)
            await interaction.edit_original_response(content=f"done: {prompt}")

        group = app_commands.Group(name="aigc", description="Admin tools")
        admin = app_commands.Group(name="admin", description="Admin", parent=group)

        @admin.command(name="reload", description="Reload the catalog")
        async def reload(interaction: discord.Interaction, force: bool = False) -> None:
            self.seen["reload"] = (interaction.command.qualified_name, force)  # type: ignore[union-attr]
            await interaction.response.send_message("reloaded", ephemeral=True)

        tree.add_command(group)

        @tree.command(name="buttons", description="Post buttons")
        async def buttons(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("pick", view=Picker(self))

        @tree.command(name="suggest", description="Autocomplete")
        async def suggest(interaction: discord.Interaction, word: str) -> None:
            await interaction.response.send_message(word)

        @suggest.autocomplete("word")
        async def word_ac(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            n = 30 if current == "many" else 3
            return [app_commands.Choice(name=f"{current}-{i}", value=f"{current}-{i}") for i in range(n)]

        @tree.context_menu(name="Make variations")
        async def variations(interaction: discord.Interaction, message: discord.Message) -> None:
            self.seen["variations"] = (message.id, message.content, [a.filename for a in message.attachments])
            await interaction.response.send_message(f"variations of {message.id}")

        @tree.context_menu(name="Profile")
        async def profile(interaction: discord.Interaction, member: discord.Member) -> None:
            await interaction.response.send_message(f"profile {member.name}", ephemeral=True)

        @tree.command(name="feedback", description="Open a modal")
        async def feedback(interaction: discord.Interaction) -> None:
            await interaction.response.send_modal(Feedback(self))

        @tree.command(name="verify", description="Check a file")
        async def verify(interaction: discord.Interaction, image: discord.Attachment) -> None:
            data = await image.read()
            self.seen["verify"] = (image.filename, image.size, image.content_type, data, image.width)
            await interaction.response.send_message(f"{image.filename}: {len(data)} bytes")

        @tree.command(name="slow", description="Misses the deadline")
        async def slow(interaction: discord.Interaction) -> None:
            self.seen["clock"].advance(3.5)  # the emulator's clock: 3.5 s pass "instantly"
            try:
                await interaction.response.defer()
            except discord.HTTPException as exc:
                self.errors.append(exc)

        @tree.command(name="sleepy", description="Really waits before acking")
        async def sleepy(interaction: discord.Interaction) -> None:
            await asyncio.sleep(0.2)
            try:
                await interaction.response.send_message("late")
            except discord.HTTPException as exc:
                self.errors.append(exc)

        @tree.command(name="twice", description="Acks twice")
        async def twice(interaction: discord.Interaction) -> None:
            await interaction.response.defer()
            interaction.response._response_type = None  # defeat discord.py's own guard
            try:
                await interaction.response.send_message("again")
            except discord.HTTPException as exc:
                self.errors.append(exc)

        @tree.command(name="late", description="Follows up after the token expired")
        async def late(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("working…")
            original = await interaction.original_response()
            self.seen["clock"].advance(15 * 60 + 1)
            # the bot token still works for the channel message (how long jobs deliver)
            edited = await interaction.channel.get_partial_message(original.id).edit(content="delivered")  # type: ignore[union-attr]
            self.seen["late"] = edited.content
            try:
                await interaction.followup.send("too late")
            except discord.HTTPException as exc:
                self.errors.append(exc)
            try:
                await interaction.edit_original_response(content="too late")
            except discord.HTTPException as exc:
                self.errors.append(exc)

        @tree.command(name="purge", description="Moderators only")
        @app_commands.default_permissions(manage_messages=True)
        async def purge(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("purged")

        @tree.command(name="twofollowups", description="Two followups after an ephemeral defer")
        async def twofollowups(interaction: discord.Interaction) -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            await interaction.followup.send("one", ephemeral=False)
            await interaction.followup.send("two", ephemeral=False)

        @tree.command(name="webhooks", description="Exercise the webhook routes")
        async def webhooks(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("first", file=discord.File(io.BytesIO(png()), "r.png"),
                                                    ephemeral=True)
            original = await interaction.original_response()
            fu = await interaction.followup.send("second", wait=True)
            fu = await fu.edit(content="second, edited")
            fetched = await interaction.followup.fetch_message(fu.id)
            self.seen["webhooks"] = (original.content, [a.filename for a in original.attachments],
                                     original.flags.ephemeral, fetched.content)
            await interaction.delete_original_response()

        @tree.command(name="say", description="Send raw content")
        async def say(interaction: discord.Interaction, n: int) -> None:
            try:
                await interaction.response.send_message("x" * n)
            except discord.HTTPException as exc:
                self.errors.append(exc)

        @tree.command(name="big", description="Send a big file")
        async def big(interaction: discord.Interaction, size: int) -> None:
            await interaction.response.defer()
            try:
                await interaction.followup.send(file=discord.File(io.BytesIO(b"x" * size), "big.bin"))
            except discord.HTTPException as exc:
                self.errors.append(exc)
                await interaction.followup.send("too big")


class Picker(discord.ui.View):
    def __init__(self, bot: Bot) -> None:
        super().__init__(timeout=None)
        self.bot = bot

    @discord.ui.button(label="Reroll", custom_id="reroll:1", style=discord.ButtonStyle.primary)
    async def reroll(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.bot.seen["clicked_message"] = interaction.message.id  # type: ignore[union-attr]
        await interaction.response.edit_message(content=f"rerolled by {interaction.user.name}")

    @discord.ui.button(label="Details", custom_id="details:1")
    async def details(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.send_message("details", ephemeral=True)

    @discord.ui.select(custom_id="size", options=[discord.SelectOption(label=s, value=s) for s in ("s", "m", "l")])
    async def size(self, interaction: discord.Interaction, select: discord.ui.Select) -> None:
        await interaction.response.defer()
        await interaction.edit_original_response(content=f"size {select.values[0]}")


class Feedback(discord.ui.Modal, title="Feedback"):
    text = discord.ui.TextInput(label="Your feedback", custom_id="fb_text")

    def __init__(self, bot: Bot) -> None:
        super().__init__(custom_id="feedback_modal")
        self.bot = bot

    async def on_submit(self, interaction: discord.Interaction) -> None:
        self.bot.seen["feedback"] = self.text.value
        await interaction.response.send_message(f"thanks: {self.text.value}", ephemeral=True)


@pytest.fixture
async def bot(emu: Emulator, world) -> Any:
    client = Bot()
    client.seen["clock"] = emu.clock
    async with running(client, emu):
        yield client


def _ids(world: dict[str, Any]) -> tuple[int, int, int]:
    return world["guild"].id, world["channel"], world["alice"].id


async def test_slash_defer_followup_with_attachment_then_edit(emu: Emulator, world, bot: Bot) -> None:
    g, c, u = _ids(world)
    rec = await emu.slash(g, c, u, "imagine", {"prompt": "a cat", "count": 2})
    await emu.wait_ack(rec)
    assert rec.response_type == 5 and rec.ack_ms is not None and rec.ack_ms < 3000
    # The first followup after a "thinking" defer replaces the loading message.
    await emu.wait_for(lambda: "done" in emu.message(rec.original_message_id).content)  # type: ignore[arg-type]
    [msg] = await emu.wait_messages(rec)
    assert msg["content"] == "done: a cat" and not msg["flags"] & (1 << 7)
    assert rec.followup_ids == []
    assert bot.seen["imagine"] == ("a cat", 2, emu.config.attachment_size_limit)
    assert msg["webhook_id"] == str(emu.application_id) and msg["type"] == 20
    assert msg["interaction_metadata"]["name"] == "imagine"
    [att] = msg["attachments"]  # kept by the edit, which did not list attachments
    assert att["filename"] == "out.png" and (att["width"], att["height"]) == (2, 2)
    async with aiohttp.ClientSession() as s, s.get(att["url"]) as r:
        assert r.status == 200 and await r.read() == png() and r.headers["Content-Type"] == "image/png"
    # what the bot sent on the wire
    [cb] = emu.calls("POST", rf"/interactions/{rec.id}/.+/callback")
    assert cb.query == {"with_response": "1"} and cb.status == 200 and cb.json["type"] == 5
    assert cb.response["interaction"]["response_message_loading"] is True
    [fu] = emu.calls("POST", rf"/webhooks/{emu.application_id}/.+")
    assert fu.files[0]["field"] == "files[0]" and fu.json["attachments"][0]["filename"] == "out.png"
    assert fu.query.get("wait") == "1" and fu.response["id"] == msg["id"]
    [edit] = emu.calls("PATCH", r"/webhooks/.+/messages/@original")
    assert edit.status == 200 and edit.json["content"] == "done: a cat" and "attachments" not in edit.json
    assert [m["id"] for m in emu.messages(c)] == [msg["id"]]
    assert emu.events("INTERACTION_CREATE")[0].d["attachment_size_limit"] == emu.config.attachment_size_limit
    assert [e.t for e in emu.events(direction="send") if e.t and e.t.startswith("MESSAGE")] == [
        "MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_UPDATE"]


async def test_second_followup_is_a_new_message(emu: Emulator, world, bot: Bot) -> None:
    g, c, u = _ids(world)
    rec = await emu.slash(g, c, u, "twofollowups")
    first, second = await emu.wait_messages(rec, count=2)
    assert (first["content"], second["content"]) == ("one", "two")
    assert first["flags"] & 64 and second["flags"] & 64 == 0  # the first took the defer's ephemerality
    assert rec.followup_ids == [int(second["id"])]


async def test_subcommand_group_and_ephemeral(emu: Emulator, world, bot: Bot) -> None:
    g, c, u = _ids(world)
    rec = await emu.slash(g, c, u, "aigc admin reload", {"force": True})
    [msg] = await emu.wait_messages(rec)
    assert bot.seen["reload"] == ("aigc admin reload", True)
    assert msg["flags"] & 64 and msg["content"] == "reloaded"
    opts = rec.payload["data"]["options"]
    assert opts[0]["type"] == 2 and opts[0]["options"][0]["type"] == 1
    assert opts[0]["options"][0]["options"] == [{"name": "force", "type": 5, "value": True}]
    # ephemeral: only the invoker sees it, no MESSAGE_CREATE for it
    assert emu.messages(c, viewer_id=world["mod"].id) == []
    assert len(emu.messages(c, viewer_id=u)) == 1
    assert not [e for e in emu.events("MESSAGE_CREATE") if e.d["id"] == msg["id"]]


async def test_buttons_and_select(emu: Emulator, world, bot: Bot) -> None:
    g, c, u = _ids(world)
    rec = await emu.slash(g, c, u, "buttons")
    [msg] = await emu.wait_messages(rec)
    assert [comp["custom_id"] for comp in msg["components"][0]["components"]] == ["reroll:1", "details:1"]
    click = await emu.click(int(msg["id"]), "reroll:1", world["mod"].id)
    await emu.wait_ack(click)
    assert click.response_type == 7 and bot.seen["clicked_message"] == int(msg["id"])
    assert emu.message(int(msg["id"])).content == "rerolled by mod"
    assert click.payload["message"]["id"] == msg["id"] and click.payload["data"]["component_type"] == 2
    details = await emu.click(int(msg["id"]), "details:1", u)
    [eph] = await emu.wait_messages(details)
    assert eph["flags"] & 64 and eph["interaction_metadata"]["interacted_message_id"] == msg["id"]
    pick = await emu.click(int(msg["id"]), "size", u, values=["l"])
    await emu.wait_ack(pick)
    assert pick.response_type == 6
    await emu.wait_for(lambda: emu.message(int(msg["id"])).content == "size l")
    with pytest.raises(ValueError):
        await emu.click(int(msg["id"]), "nope", u)


async def test_autocomplete_and_too_many_choices(emu: Emulator, world, bot: Bot) -> None:
    g, c, u = _ids(world)
    rec = await emu.autocomplete(g, c, u, "suggest", {"word": "ca"}, focused="word")
    await emu.wait_ack(rec)
    assert rec.type == 4 and rec.response_type == 8
    assert [ch["value"] for ch in rec.choices] == ["ca-0", "ca-1", "ca-2"]  # type: ignore[union-attr]
    assert rec.payload["data"]["options"] == [{"name": "word", "type": 3, "value": "ca", "focused": True}]
    bad = await emu.autocomplete(g, c, u, "suggest", {"word": "many"}, focused="word")
    await emu.wait_for(lambda: bad.rejected)
    assert not bad.acked
    assert bad.rejected[0]["status"] == 400 and bad.rejected[0]["code"] == 50035
    errors = emu.calls("POST", rf"/interactions/{bad.id}/.+/callback")[0].response["errors"]
    assert errors["data"]["choices"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"


async def test_context_menus(emu: Emulator, world, bot: Bot) -> None:
    g, c, u = _ids(world)
    first = await emu.slash(g, c, u, "imagine", {"prompt": "dog"})
    await emu.wait_ack(first)
    await emu.wait_for(lambda: emu.message(first.original_message_id).content == "done: dog")  # type: ignore[arg-type]
    [target] = await emu.wait_messages(first)
    rec = await emu.message_command(g, c, u, "Make variations", int(target["id"]))
    [msg] = await emu.wait_messages(rec)
    assert msg["content"] == f"variations of {target['id']}"
    assert bot.seen["variations"] == (int(target["id"]), "done: dog", ["out.png"])
    data = rec.payload["data"]
    assert data["type"] == 3 and data["target_id"] == target["id"] and target["id"] in data["resolved"]["messages"]
    assert msg["type"] == 23  # CONTEXT_MENU_COMMAND
    prof = await emu.user_command(g, c, u, "Profile", world["mod"].id)
    [pm] = await emu.wait_messages(prof)
    assert pm["content"] == "profile mod"


async def test_modal_submit(emu: Emulator, world, bot: Bot) -> None:
    g, c, u = _ids(world)
    opener = await emu.slash(g, c, u, "feedback")
    await emu.wait_ack(opener)
    assert opener.response_type == 9 and opener.modal["custom_id"] == "feedback_modal"  # type: ignore[index]
    submit = await emu.submit_modal(opener, {"fb_text": "great bot"})
    [msg] = await emu.wait_messages(submit)
    assert bot.seen["feedback"] == "great bot" and msg["content"] == "thanks: great bot"
    assert submit.type == 5


async def test_attachment_option(emu: Emulator, world, bot: Bot) -> None:
    g, c, u = _ids(world)
    rec = await emu.slash(g, c, u, "verify", {"image": file("photo.png", png(3, 5))})
    [msg] = await emu.wait_messages(rec)
    assert msg["content"] == f"photo.png: {len(png(3, 5))} bytes"
    assert bot.seen["verify"] == ("photo.png", len(png(3, 5)), "image/png", png(3, 5), 3)
    assert list(rec.payload["data"]["resolved"]["attachments"].values())[0]["url"].startswith(emu.base_url)


async def test_three_second_deadline(emu: Emulator, world, bot: Bot) -> None:
    g, c, u = _ids(world)
    rec = await emu.slash(g, c, u, "slow")
    await emu.wait_for(lambda: bot.errors)
    [err] = bot.errors
    assert isinstance(err, discord.NotFound) and err.code == 10062
    assert not rec.acked and rec.rejected[0]["code"] == 10062


async def test_configurable_deadline_in_real_time(emu: Emulator, world, bot: Bot) -> None:
    emu.config.ack_deadline_s = 0.1
    g, c, u = _ids(world)
    rec = await emu.slash(g, c, u, "sleepy")
    await emu.wait_for(lambda: bot.errors)
    assert bot.errors[0].code == 10062 and not rec.acked  # type: ignore[attr-defined]
    assert emu.ack_stats()["missed_deadlines"] == 1


async def test_double_ack(emu: Emulator, world, bot: Bot) -> None:
    g, c, u = _ids(world)
    rec = await emu.slash(g, c, u, "twice")
    await emu.wait_for(lambda: bot.errors)
    [err] = bot.errors
    assert err.status == 400 and err.code == 40060  # type: ignore[attr-defined]
    assert rec.response_type == 5


async def test_token_expires_after_15_minutes(emu: Emulator, world, bot: Bot) -> None:
    g, c, u = _ids(world)
    rec = await emu.slash(g, c, u, "late")
    await emu.wait_for(lambda: len(bot.errors) == 2)
    assert [(e.status, e.code) for e in bot.errors] == [(401, 50027), (401, 50027)]  # type: ignore[attr-defined]
    assert bot.seen["late"] == "delivered" and emu.message(rec.original_message_id).content == "delivered"  # type: ignore[arg-type]


async def test_webhook_routes(emu: Emulator, world, bot: Bot) -> None:
    g, c, u = _ids(world)
    rec = await emu.slash(g, c, u, "webhooks")
    await emu.wait_for(lambda: "webhooks" in bot.seen and emu.message(rec.original_message_id).deleted)  # type: ignore[arg-type]
    assert bot.seen["webhooks"] == ("first", ["r.png"], True, "second, edited")
    [cb] = emu.calls("POST", rf"/interactions/{rec.id}/.+/callback")
    assert cb.files and cb.files[0]["field"] == "files[0]" and cb.json["data"]["flags"] == 64
    paths = [(c.method, c.path.rsplit("/", 2)[-2:]) for c in emu.calls(path=r"/webhooks/.+")]
    assert [m for m, _ in paths] == ["GET", "POST", "PATCH", "GET", "DELETE"]
    assert [m["content"] for m in emu.messages(c)] == ["second, edited"]


async def test_content_limit_in_response(emu: Emulator, world, bot: Bot) -> None:
    g, c, u = _ids(world)
    ok = await emu.slash(g, c, u, "say", {"n": 2000})
    await emu.wait_ack(ok)
    bad = await emu.slash(g, c, u, "say", {"n": 2001})
    await emu.wait_for(lambda: bot.errors)
    assert bot.errors[0].code == 50035 and not bad.acked  # type: ignore[attr-defined]
    errors = emu.calls("POST", rf"/interactions/{bad.id}/.+")[0].response["errors"]
    assert errors["content"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"


async def test_attachment_size_limit(emu: Emulator, world, bot: Bot) -> None:
    emu.config.attachment_size_limit = 1000
    g, c, u = _ids(world)
    rec = await emu.slash(g, c, u, "big", {"size": 1001})
    assert rec.payload["attachment_size_limit"] == 1000
    await emu.wait_for(lambda: bot.errors)
    assert (bot.errors[0].status, bot.errors[0].code) == (413, 40005)  # type: ignore[attr-defined]
    [msg] = await emu.wait_messages(rec)
    assert msg["content"] == "too big" and msg["attachments"] == []


async def test_followup_before_ack_is_unknown_webhook(emu: Emulator, world, bot: Bot) -> None:
    g, c, u = _ids(world)
    rec = emu.interactions.slash(g, c, u, "buttons")  # built but never sent: nobody acks it
    async with aiohttp.ClientSession() as s:
        url = f"{emu.api_base}/webhooks/{emu.application_id}/{rec.token}"
        async with s.post(url, json={"content": "hi"}) as r:
            assert r.status == 404 and (await r.json())["code"] == 10015
        async with s.post(f"{emu.api_base}/interactions/{rec.id}/wrong/callback", json={"type": 5}) as r:
            assert r.status == 404 and (await r.json())["code"] == 10062
        async with s.post(f"{emu.api_base}/interactions/{rec.id}/{rec.token}/callback?with_response=1",
                          json={"type": 8, "data": {"choices": []}}) as r:
            assert r.status == 400 and (await r.json())["errors"]["type"]["_errors"][0]["code"]


async def test_inject_validates_like_a_client(emu: Emulator, world, bot: Bot) -> None:
    g, c, u = _ids(world)
    with pytest.raises(ValueError):
        await emu.slash(g, c, u, "imagine", {})  # missing required prompt
    with pytest.raises(ValueError):
        await emu.slash(g, c, u, "imagine", {"prompt": "x", "count": 9})  # out of range
    with pytest.raises(ValueError):
        await emu.slash(g, c, u, "nope")
    stranger = emu.create_user("stranger")
    with pytest.raises(ValueError):
        await emu.slash(g, c, stranger.id, "buttons")


async def test_fifty_concurrent_interactions_are_acked(emu: Emulator, world, bot: Bot) -> None:
    g, c, u = _ids(world)
    recs = await asyncio.gather(*(emu.slash(g, c, u, "aigc admin reload") for _ in range(50)))
    await asyncio.gather(*(emu.wait_ack(r, timeout=10) for r in recs))
    stats = emu.ack_stats()
    assert stats["n"] == 50 and stats["missed_deadlines"] == 0
    assert stats["p50_ms"] <= stats["p99_ms"] < 3000


async def test_default_member_permissions_hide_commands(emu: Emulator, world, bot: Bot) -> None:
    g, c, u = _ids(world)
    with pytest.raises(ValueError, match="cannot see"):
        await emu.slash(g, c, u, "purge")
    rec = await emu.slash(g, c, world["mod"].id, "purge")  # administrator
    [msg] = await emu.wait_messages(rec)
    assert msg["content"] == "purged"


async def test_user_locale_and_callback_without_with_response(emu: Emulator, world, bot: Bot) -> None:
    g, c, _ = _ids(world)
    li = emu.create_user("li", locale="zh-CN")
    emu.add_member(g, li.id)
    rec = emu.interactions.slash(g, c, li.id, "buttons")  # built, not dispatched: we answer it ourselves
    assert rec.payload["locale"] == "zh-CN" and rec.payload["guild_locale"] == "en-US"
    async with aiohttp.ClientSession() as s:
        url = f"{emu.api_base}/interactions/{rec.id}/{rec.token}/callback"
        async with s.post(url, json={"type": 4, "data": {"content": "hi"}}) as r:
            assert r.status == 204 and "Content-Type" not in r.headers
    assert rec.acked and emu.messages(c)[-1]["content"] == "hi"


async def test_slash_in_a_dm(emu: Emulator, world, bot: Bot) -> None:
    dm = emu.world.dm_channel(world["alice"].id)
    rec = await emu.slash(None, dm.id, world["alice"].id, "aigc admin reload")
    [msg] = await emu.wait_messages(rec)
    assert msg["content"] == "reloaded" and "guild_id" not in msg
    assert rec.payload["user"]["id"] == str(world["alice"].id) and "member" not in rec.payload
    assert rec.payload["context"] == 1

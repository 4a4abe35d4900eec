"""`/mod settings ...` through the real bot and the emulator: per-command enable, roles,
channels, NSFW-only commands, AI mark, retention, prompt storage; who may change them."""
from __future__ import annotations

from bot.scoped_settings import SettingsContext
from tests.e2e.test_moderation import mod, open_command_to_everyone, reply


def _ctx(world) -> SettingsContext:
    return SettingsContext(guild_id=str(world.guild))


async def test_restricting_a_command_to_a_role(world):
    artists = world.emu.create_role(world.guild, "artists", 0)
    out = await mod(world, "mod settings roles", {"action": "add", "role": artists.id, "command": "emoji"})
    assert f"`command_roles` = /emoji: <@&{artists.id}>" in out
    err = await world.error(await world.slash("emoji", {"prompt": "cat"}))
    assert "Your roles may not use /emoji here." in err
    world.emu.world.set_member_roles(world.guild, world.alice, [artists.id])
    await world.result(await world.slash("emoji", {"prompt": "cat", "seed": 1}))
    out = await mod(world, "mod settings show")
    assert f"/emoji: <@&{artists.id}>" in out
    # clear: everyone again
    world.emu.world.set_member_roles(world.guild, world.alice, [])
    out = await mod(world, "mod settings roles", {"action": "clear", "command": "emoji"})
    assert "/emoji: everyone" in out
    await world.result(await world.slash("emoji", {"prompt": "cat", "seed": 2}))
    rows = await world.bot.store.audit.query(guild_id=str(world.guild), action="mod.settings")
    assert {r.detail["setting"] for r in rows} == {"command_roles"}
    assert "Not changed: give the role" in await mod(world, "mod settings roles", {"action": "add"})
    out = await mod(world, "mod settings roles", {"action": "add", "role": artists.id, "command": "nope"})
    assert "there is no command /nope (known:" in out and "emoji" in out


async def test_restricting_a_command_to_a_channel(world):
    art = world.emu.create_channel(world.guild, "art")
    out = await mod(world, "mod settings channels", {"action": "add", "channel": art.id, "command": "emoji"})
    assert f"/emoji: <#{art.id}>" in out
    err = await world.error(await world.slash("emoji", {"prompt": "cat"}))
    assert "/emoji cannot be used in this channel." in err
    await world.result(await world.slash("emoji", {"prompt": "cat", "seed": 3}, channel=art.id))
    # the bot-wide list too
    await mod(world, "mod settings channels", {"action": "clear", "command": "emoji"})
    await mod(world, "mod settings channels", {"action": "add", "channel": art.id})
    assert "cannot be used in this channel" in await world.error(await world.slash("emoji", {"prompt": "dog"}))
    assert f"<#{art.id}>" in await mod(world, "mod settings show")


async def test_nsfw_only_command_is_refused_outside_age_restricted_channels(world):
    adults = world.emu.create_channel(world.guild, "adults", nsfw=True)
    out = await mod(world, "mod settings nsfw", {"command": "emoji", "nsfw_only": True})
    assert "`nsfw_commands` = /emoji" in out
    err = await world.error(await world.slash("emoji", {"prompt": "cat"}))
    assert "/emoji can only be used in age-restricted channels." in err
    await world.result(await world.slash("emoji", {"prompt": "cat", "seed": 4}, channel=adults.id))
    out = await mod(world, "mod settings nsfw", {"command": "emoji", "nsfw_only": False})
    assert "`nsfw_commands` = none" in out
    await world.result(await world.slash("emoji", {"prompt": "cat", "seed": 5}))


async def test_disable_a_command_and_reenable_it_in_one_channel(world):
    other = world.emu.create_channel(world.guild, "other")
    assert "/emoji off" in await mod(world, "mod settings command", {"command": "emoji", "enabled": False})
    assert "/emoji is disabled here." in await world.error(await world.slash("emoji", {"prompt": "cat"}))
    out = await mod(world, "mod settings command", {"command": "emoji", "enabled": True, "channel": other.id})
    assert f"for <#{other.id}>" in out
    await world.result(await world.slash("emoji", {"prompt": "cat", "seed": 6}, channel=other.id))
    out = await mod(world, "mod settings show")
    assert "Disabled commands: /emoji" in out and f"<#{other.id}> commands = {{'emoji': True}}" in out


async def test_ai_mark_retention_and_prompt_storage(world):
    out = await mod(world, "mod settings show")
    assert "Visible AI mark on images: on" in out and "Records kept: 90 days" in out
    assert "Prompts in the audit log: full" in out
    assert "`ai_mark_visible` = off" in await mod(world, "mod settings ai-mark", {"visible": False})
    assert "`retention_days` = forever" in await mod(world, "mod settings retention", {"days": 0})
    assert "`retention_days` = 30 days" in await mod(world, "mod settings retention", {"days": 30})
    assert "`prompt_storage` = hash" in await mod(world, "mod settings prompts", {"storage": "hash"})
    s = await world.bot.scoped.resolve(_ctx(world))
    assert (s.ai_mark_visible, s.retention_days, s.prompt_storage) == (False, 30, "hash")
    # the audit row of the next job keeps only the prompt's hash
    await world.result(await world.slash("emoji", {"prompt": "secret cat", "seed": 7}))
    await world.audit_actions("job.done")
    (done,) = await world.bot.store.audit.query(guild_id=str(world.guild), action="job.done")
    assert done.prompt is None or "secret cat" not in done.prompt
    out = await mod(world, "mod settings show")
    assert "Visible AI mark on images: off" in out and "Records kept: 30 days" in out


async def test_zh_cn_replies(world):
    world.emu.world.user(world.mod).locale = "zh-CN"
    out = await mod(world, "mod settings retention", {"days": 7})
    assert "`retention_days` = 7 天，适用于 整个服务器。" in out
    out = await mod(world, "mod settings show")
    assert "本服务器的设置" in out and "记录保留期: 7 天" in out
    cmd = world.emu.world.commands.find(world.guild, "mod", 1)
    settings = next(o for o in cmd["options"] if o["name"] == "settings")
    assert settings["description_localizations"]["zh-CN"] == "命令的使用范围、AI 标记、保留期"


async def test_a_member_cannot_change_settings_even_when_shown_the_command(world):
    open_command_to_everyone(world, "mod")
    out = await reply(world, await world.slash("mod settings command", {"command": "emoji", "enabled": False}))
    assert "Only server managers can do that." in out
    out = await reply(world, await world.slash("mod settings show"))
    assert "Only server managers can do that." in out
    assert (await world.bot.scoped.resolve(_ctx(world))).command_enabled("emoji")
    await world.result(await world.slash("emoji", {"prompt": "cat", "seed": 8}))

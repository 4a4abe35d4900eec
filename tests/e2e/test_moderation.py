"""Moderated community use through the emulator: guild prompt rules and AutoMod import
(refusals name the rule, cost no quota), who may moderate, near-miss blocks and the mod-log."""
from __future__ import annotations

import pytest

from emulator.interactions import InjectError

MANAGE_GUILD = 1 << 5


async def reply(world, rec) -> str:
    """The text of an interaction's (ephemeral) reply, embeds included."""
    (msg, *_) = await world.emu.wait_messages(rec, 1, timeout=15)
    parts = [msg["content"] or ""]
    for e in msg["embeds"]:
        parts += [e.get("title", ""), e.get("description", "")]
        parts += [f"{f['name']}: {f['value']}" for f in e.get("fields", [])]
        parts.append((e.get("footer") or {}).get("text", ""))
    return "\n".join(parts)


async def mod(world, command: str, options: dict | None = None) -> str:
    rec = await world.slash(command, options or {}, user=world.mod)
    return await reply(world, rec)


async def daily_used(world, user: int) -> int:
    usage = await world.bot.store.quota.usage(str(world.guild), str(user))
    return usage.daily_used


def open_command_to_everyone(world, name: str) -> None:
    """What a server admin can do in Discord's Integrations settings: show a command to
    members who lack its default permissions (so the bot must check at run time)."""
    scopes = world.emu.world.commands.scopes
    for c in scopes.get(world.guild, []) + scopes.get(None, []):
        if c["name"] == name:
            c["default_member_permissions"] = None


async def test_guild_rule_refuses_prompts_naming_the_rule_and_costs_no_quota(world):
    out = await mod(world, "mod rules add", {"id": "spoilers", "keywords": "ending*, plot twist",
                                             "name": "No spoilers", "category": "spoilers"})
    assert "spoilers" in out and "added" in out
    assert (await world.bot.scoped.get("prompt_rules", _ctx(world)))[0]["keywords"] == ["ending*", "plot twist"]
    before = await daily_used(world, world.alice)
    rec = await world.slash("emoji", {"prompt": "the ENDINGS of the film"})
    err = await world.error(rec)
    assert "No spoilers (spoilers)" in err and "ending" not in err.lower()
    assert await daily_used(world, world.alice) == before  # refunded
    refused = await world.bot.store.audit.query(guild_id=str(world.guild), action="job.refused")
    assert refused[0].verdict == "refused" and refused[0].reason == "spoilers:spoilers"
    # rules test and list (moderators see the keywords, spoilered)
    out = await mod(world, "mod rules test", {"text": "p.l.o.t   t w i s t"})
    assert "Refused" in out and "No spoilers" in out
    assert "Allowed" in await mod(world, "mod rules test", {"text": "a happy cat"})
    out = await mod(world, "mod rules list")
    assert "spoilers" in out and "||ending*||" in out and "global rules" in out
    # remove: allowed again
    assert "removed" in await mod(world, "mod rules remove", {"id": "spoilers"})
    await world.result(await world.slash("emoji", {"prompt": "the endings", "seed": 1}))
    assert "no rule `nope`" in await mod(world, "mod rules remove", {"id": "nope"})
    acts = await world.audit_actions("job.done")
    assert {"mod.rules.add", "mod.rules.remove", "mod.rules.list", "mod.rules.test", "job.refused",
            "job.done"} <= set(acts)
    tested = await world.bot.store.audit.query(guild_id=str(world.guild), action="mod.rules.test")
    assert [(r.verdict, r.reason) for r in tested] == [("allowed", None), ("refused", "spoilers")]


async def test_bad_rule_definitions_say_which_field(world):
    cases = [({"id": "x y", "keywords": "a"}, "id: use 1-64"),
             ({"id": "global.mine", "keywords": "a"}, "id: must not start with global."),
             ({"id": "empty"}, "keywords: give keywords"),
             ({"id": "wild", "keywords": "ca*t"}, "keywords[0]: '*' is allowed only at the start or end"),
             ({"id": "re", "regex": "(unclosed"}, "regex[0]: not a valid RE2 pattern"),
             ({"id": "re2", "regex": "a*"}, "regex[0]: pattern matches the empty string")]
    for options, expected in cases:
        out = await mod(world, "mod rules add", options)
        assert "cannot be used" in out and expected in out, (options, out)
    assert await world.bot.scoped.get("prompt_rules", _ctx(world)) == []
    await mod(world, "mod rules add", {"id": "dup", "keywords": "durian"})
    assert "exists already" in await mod(world, "mod rules add", {"id": "dup", "keywords": "kiwi"})


async def test_automod_keyword_rules_are_imported_and_honour_exemptions(world):
    world.emu.set_bot_permissions(world.guild, (1 << 30) | (1 << 11) | (1 << 15) | (1 << 13) | MANAGE_GUILD)
    vip = world.emu.create_role(world.guild, "vip", 0)
    world.emu.set_automod_rules(world.guild, [
        {"name": "Fruit filter", "keywords": ["durian"], "exempt_roles": [vip.id]},
        {"name": "Disabled", "keywords": ["kiwi"], "enabled": False}])
    rec = await world.slash("emoji", {"prompt": "a durian"})
    err = await world.error(rec)
    assert "AutoMod: Fruit filter" in err and "durian" not in err
    await world.result(await world.slash("emoji", {"prompt": "a kiwi", "seed": 2}))  # disabled rule
    # A member with an exempt role is not held to that rule (as AutoMod does).
    world.emu.world.set_member_roles(world.guild, world.alice, [vip.id])
    await world.result(await world.slash("emoji", {"prompt": "a durian", "seed": 3}))
    out = await mod(world, "mod rules list")
    assert "AutoMod: Fruit filter (1 keywords)" in out and "Disabled" not in out
    # Cached per guild; an AUTO_MODERATION_RULE_* event drops the cache.
    world.emu.set_automod_rules(world.guild, [{"name": "Veg", "keywords": ["durian"]}])
    world.emu.world.set_member_roles(world.guild, world.alice, [])
    assert "AutoMod: Fruit filter" in await world.error(await world.slash("emoji", {"prompt": "durian"}))
    world.bot.dispatch("automod_rule_update", type("Rule", (), {"guild_id": world.guild})())
    assert "AutoMod: Veg" in await world.error(await world.slash("emoji", {"prompt": "durian"}))


async def test_automod_without_manage_server_is_reported_not_fatal(world):
    world.emu.set_automod_rules(world.guild, [{"name": "Fruit filter", "keywords": ["durian"]}])
    await world.result(await world.slash("emoji", {"prompt": "a durian", "seed": 4}))
    assert "lacks Manage Server" in await mod(world, "mod rules list")


async def test_mod_commands_need_manage_server_also_at_run_time(world):
    with pytest.raises(InjectError):  # hidden from members by default_member_permissions
        await world.slash("mod rules list")
    cmd = world.emu.world.commands.find(world.guild, "mod", 1)
    assert int(cmd["default_member_permissions"]) == MANAGE_GUILD and cmd["dm_permission"] is False
    assert cmd["description_localizations"]["zh-CN"] == "审核管理"
    rules = next(o for o in cmd["options"] if o["name"] == "rules")
    assert {o["name"] for o in rules["options"]} == {"add", "remove", "list", "test"}
    names = {c["name"] for c in world.emu.commands(world.guild)}
    assert {"mod", "quota", "privacy", "forget-me", "verify"} <= names
    open_command_to_everyone(world, "mod")
    for command, options in (("mod rules add", {"id": "x", "keywords": "y"}), ("mod ban", {"user": world.mod}),
                             ("mod purge", {"user": world.mod}), ("mod review on", {}), ("mod audit", {})):
        assert "Only server managers" in await reply(world, await world.slash(command, options)), command
    assert await world.bot.scoped.get("prompt_rules", _ctx(world)) == []
    assert await world.bot.store.bans.active_ban(str(world.guild), str(world.mod)) is None


async def test_repeated_refusals_block_and_notify_the_mod_log(world):
    modlog = world.emu.create_channel(world.guild, "mod-log").id
    assert "mirrored" in await mod(world, "mod modlog", {"channel": modlog})
    for i in range(3):
        err = await world.error(await world.slash("emoji", {"prompt": f"gore {i}"}))
        assert "global.violence" in err
    posted = await world.emu.wait_for_message(modlog, lambda m: "blocked from generating" in m["content"], 10)
    assert f"<@{world.alice}>" in posted["content"] and "global.violence" in posted["content"]
    assert "gore" not in posted["content"]
    before = await daily_used(world, world.alice)
    err = await world.error(await world.slash("emoji", {"prompt": "a cat"}))
    assert "blocked from generating for about" in err
    assert await daily_used(world, world.alice) == before
    blocked = await world.bot.store.audit.query(guild_id=str(world.guild), action="policy.blocked")
    assert len(blocked) == 1 and blocked[0].subject_id == str(world.alice)  # notified once per block
    refused = await world.bot.store.audit.query(guild_id=str(world.guild), action="job.refused", limit=1)
    assert refused[0].verdict == "blocked"
    # The mirror posted the refusals too, without the prompt text.
    lines = [m["content"] for m in world.emu.messages(modlog)]
    assert any("`job.refused`" in x for x in lines) and not any("gore" in x for x in lines)
    assert any("`mod.modlog`" in x for x in lines)


async def test_zh_cn_members_get_localized_refusals(world):
    zh = world.emu.create_user("li", locale="zh-CN")
    world.emu.add_member(world.guild, zh.id)
    err = await world.error(await world.slash("emoji", {"prompt": "gore"}, user=zh.id))
    assert "该提示词被内容策略拒绝" in err and "global.violence" in err


def _ctx(world):
    from bot.scoped_settings import SettingsContext

    return SettingsContext(guild_id=str(world.guild))


async def test_every_job_is_audited_and_failures_refund(world):
    modlog = world.emu.create_channel(world.guild, "mod-log").id
    await mod(world, "mod modlog", {"channel": modlog})
    await world.result(await world.slash("emoji", {"prompt": "cat face", "count": 2, "seed": 9}))
    await world.audit_actions("job.done")
    (done,) = await world.bot.store.audit.query(guild_id=str(world.guild), action="job.done")
    assert (done.actor_id, done.command, done.prompt, done.verdict) == (str(world.alice), "emoji", "cat face", "allowed")
    assert len(done.model_hash) == 64 and len(done.output_hash) == 64 and len(done.detail["outputs"]) == 2
    before = await daily_used(world, world.alice)
    await world.engine.stop()
    err = await world.error(await world.slash("emoji", {"prompt": "dog"}), timeout=60)
    assert "unreachable" in err
    assert await daily_used(world, world.alice) == before  # refunded
    (failed,) = await world.bot.store.audit.query(guild_id=str(world.guild), action="job.failed")
    assert failed.verdict == "failed" and failed.prompt == "dog"
    posted = await world.emu.wait_for_message(modlog, lambda m: "`job.failed`" in m["content"], 10)
    assert "dog" not in posted["content"] and f"<@{world.alice}>" in posted["content"]

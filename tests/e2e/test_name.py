"""`/name` through the real bot on the emulator: a labelled, numbered list of copyable names,
reroll, and "more like #n" from a select listing every name."""
from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.engine_plugins("name")


def components(msg: dict) -> list[dict]:
    return [c for row in msg["components"] for c in row["components"]]


async def test_name_lists_25_copyable_labelled_names_and_more_like_one_of_them(world):
    rec = await world.slash("name", {"style": "person-en", "count": 25, "seed": 3})
    msg = await world.result(rec)
    (embed,) = msg["embeds"]
    names = re.findall(r"\*\*(\d+)\.\*\* `([^`]+)`", embed["description"])
    assert [int(n) for n, _ in names] == list(range(1, 26))
    assert all(len(name) >= 3 for _, name in names)
    assert msg["attachments"] == []  # the names are in the message, not 25 files
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert "AI-generated" in fields and "AI-generated" in embed["footer"]["text"]
    comps = components(msg)
    job = comps[0]["custom_id"].split(":")[2]
    (select,) = [c for c in comps if c["type"] == 3]
    assert select["custom_id"] == f"aigc:variations:{job}" and len(select["options"]) == 25
    assert select["options"][2]["label"] == f"3. {names[2][1]}"
    assert f"aigc:reroll:{job}" in [c.get("custom_id") for c in comps]

    rec = await world.emu.click(int(msg["id"]), f"aigc:variations:{job}", world.alice, values=["2"])
    more = await world.result(rec)
    more_names = re.findall(r"\*\*\d+\.\*\* `([^`]+)`", more["embeds"][0]["description"])
    assert len(more_names) >= 1 and "3" in more["embeds"][0]["description"].split("\n")[0]
    child_job = components(more)[0]["custom_id"].split(":")[2]
    child = await world.bot.store.jobs.get(child_job)
    assert (child.parent_job_id, child.parent_action, child.parent_index) == (job, "variations", 2)

    rec = await world.emu.click(int(msg["id"]), f"aigc:reroll:{job}", world.alice)
    rerolled = await world.result(rec)
    again = re.findall(r"\*\*\d+\.\*\* `([^`]+)`", rerolled["embeds"][0]["description"])
    assert len(again) == 25 and again != [n for _, n in names]


async def test_a_few_names_get_numbered_buttons(world):
    rec = await world.slash("name", {"style": "person-zh", "count": 3, "seed": 1})
    msg = await world.result(rec)
    names = re.findall(r"`([^`]+)`", msg["embeds"][0]["description"])
    assert len(names) == 3 and all(all("\u4e00" <= c <= "\u9fff" for c in n) for n in names)
    ids = [c.get("custom_id") for c in components(msg)]
    job = ids[0].split(":")[2]
    assert [f"aigc:variations:{job}:{i}" for i in range(3)] == [i for i in ids if i.startswith("aigc:variations")]


async def test_style_choices_are_offered_in_the_members_language_order(world):
    """Discord keeps one order of static choices for every locale, so /name's style is offered
    as autocomplete: a zh-CN member sees the Chinese style first, in Chinese; others the
    declared order; typing filters in either language; a value not among the choices is refused."""
    registered = {c["name"]: c for c in world.emu.world.commands.scopes.get(None, [])
                  + world.emu.world.commands.scopes.get(world.guild, [])}
    style = next(o for o in registered["name"]["options"] if o["name"] == "style")
    assert style["autocomplete"] is True and "choices" not in style

    async def offered(user, typed=""):
        rec = await world.emu.autocomplete(world.guild, world.channel, user, "name", {"style": typed},
                                           focused="style")
        await world.emu.wait_ack(rec)
        return [(c["name"], c["value"]) for c in rec.choices]

    en = await offered(world.alice)
    assert en[0] == ("English person name", "person-en") and len(en) == 5, en
    world.emu.world.user(world.alice).locale = "zh-CN"
    zh = await offered(world.alice)
    assert zh[0] == ("中文人名", "person-zh") and len(zh) == 5, zh
    assert [v for _, v in await offered(world.alice, "place")] == ["place"]
    err = await world.error(await world.slash("name", {"style": "klingon"}))
    assert "style" in err

"""Bad input gets a 422/400/413 naming the field and the rule; nothing reaches the model."""
from __future__ import annotations

import pytest

BASE = {"command": "probe", "options": {"text": "ok"}}


@pytest.mark.parametrize("body, status, field, rule", [
    ({"command": "probe", "options": {}}, 422, "options.text", "is required"),
    ({"command": "probe", "options": {"text": "   "}}, 422, "options.text", "must not be empty"),
    ({"command": "probe", "options": {"text": "x" * 21}}, 422, "options.text", "at most 20 characters"),
    ({"command": "probe", "options": {"text": 5}}, 422, "options.text", "must be a string"),
    ({"command": "probe", "options": {"text": "a\x00b"}}, 422, "options.text", "control characters"),
    ({"command": "probe", "options": {"text": "a", "level": 9}}, 422, "options.level", "at most 5"),
    ({"command": "probe", "options": {"text": "a", "level": 0}}, 422, "options.level", "at least 1"),
    ({"command": "probe", "options": {"text": "a", "level": 2.5}}, 422, "options.level", "whole number"),
    ({"command": "probe", "options": {"text": "a", "level": True}}, 422, "options.level", "whole number"),
    ({"command": "probe", "options": {"text": "a", "style": "fancy"}}, 422, "options.style", "one of 'plain', 'bold'"),
    ({"command": "probe", "options": {"text": "a", "colour": 1}}, 422, "options.colour", "not an option"),
    ({"command": "probe", "options": {"text": "a"}, "count": 5}, 422, "count", "from 1 to 4"),
    ({"command": "probe", "options": {"text": "a", "count": 0}}, 422, "count", "from 1 to 4"),
    ({"command": "probe", "options": {"text": "a", "seed": 3}, "seed": 4}, 422, "options.seed", "conflicts"),
    ({"command": "probe", "options": {"text": "a"}, "seed": -1}, 422, "seed", "greater than or equal to 0"),
    ({"command": "probe", "options": {"text": "a"}, "seed": 2**32}, 422, "seed", "less than or equal to"),
    ({"command": "probe", "options": {"text": "a"}, "priority": "urgent"}, 422, "priority", "'normal' or 'high'"),
    ({"command": "probe", "options": {"text": "a"}, "colour": 1}, 422, "colour", "not a known field"),
    ({"command": "probe", "options": "text"}, 422, "options", "valid dictionary"),
    ({"options": {"text": "a"}}, 422, "command", "Field required"),
    ({"command": "nope", "options": {}}, 404, "command", "no command named 'nope'"),
    ({"command": "probe", "options": {"text": "a"}, "requester": {"user": ""}}, 422, "requester.user", "at least 1 character"),
])
async def test_bad_job_requests_name_field_and_rule(probe_engine, body, status, field, rule):
    h, gen = probe_engine
    r = await h.client.post("/v1/jobs", json=body, headers=h.headers)
    err = (await r.json())["error"]
    assert r.status == status, err
    assert err["field"] == field and rule in err["message"], err
    assert gen.batches == []  # nothing reached the generator


async def test_body_must_be_json(probe_engine):
    h, _ = probe_engine
    r = await h.client.post("/v1/jobs", data="{not json", headers={**h.headers, "Content-Type": "application/json"})
    assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_json"
    r = await h.client.post("/v1/jobs", data="a=b", headers={**h.headers, "Content-Type": "text/plain"})
    assert r.status == 415 and (await r.json())["error"]["code"] == "unsupported_media_type"


async def test_oversized_body_is_refused_as_json(probe_engine):
    h, _ = probe_engine
    big = {"command": "probe", "options": {"text": "x" * (h.engine.settings.max_body_bytes + 1)}}
    r = await h.client.post("/v1/jobs", json=big, headers=h.headers)
    assert r.status == 413 and (await r.json())["error"]["code"] == "body_too_large"


async def test_unknown_route_and_method_are_json_errors(probe_engine):
    h, _ = probe_engine
    r = await h.client.get("/v1/nothing", headers=h.headers)
    assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"
    r = await h.client.put("/v1/jobs", headers=h.headers)
    assert r.status == 405 and (await r.json())["error"]["code"] == "method_not_allowed"


def test_validation_canonicalises_options():
    from engine.validation import validate_option_values
    from tests.engine.probe_plugin import make_probe_plugin

    plugin, _ = make_probe_plugin()
    specs = [o for o in plugin.commands[0].options if not o.job_field]
    assert validate_option_values(specs, {"text": "  hi  ", "level": 2.0}) == {
        "text": "hi", "level": 2, "style": "plain"}


def test_choice_order_names_known_locales_and_choices_only():
    from pydantic import ValidationError

    from engine.protocol import Choice, OptionSpec, ordered_choices

    choices = [Choice(name=n, value=n) for n in ("a", "b", "c")]
    opt = OptionSpec(name="style", type="string", description="d", choices=choices, choice_order={"zh-CN": ["c"]})
    assert [c.value for c in ordered_choices(opt, "zh-CN")] == ["c", "a", "b"]
    assert [c.value for c in ordered_choices(opt, "en-US")] == ["a", "b", "c"]
    with pytest.raises(ValidationError, match=r"choice_order.zh-CN: \['x'\] are not among the choices"):
        OptionSpec(name="style", type="string", description="d", choices=choices, choice_order={"zh-CN": ["x"]})
    with pytest.raises(ValidationError, match="choice_order: unknown locale 'klingon'"):
        OptionSpec(name="style", type="string", description="d", choices=choices, choice_order={"klingon": ["a"]})

"""The content policy runs in the engine before a job is queued, for every front."""
from __future__ import annotations


async def test_refused_prompt_names_rule_not_term_and_costs_no_compute(probe_engine):
    h, gen = probe_engine
    r = await h.client.post("/v1/jobs", headers=h.headers,
                            json={"command": "probe", "options": {"text": "n.u.d.e cat"}})
    err = (await r.json())["error"]
    assert r.status == 422 and err["code"] == "prompt_refused"
    assert (err["rule"], err["category"], err["field"]) == ("global.sexual", "sexual", "options.text")
    assert "nude" not in err["message"] and gen.batches == []


async def test_guild_and_automod_rules_travel_with_the_request(probe_engine):
    h, gen = probe_engine
    policy = {"rules": [{"id": "no-spoilers", "name": "Spoilers", "category": "spoilers",
                         "keywords": ["ending*"]}],
              "automod": [{"id": "99", "trigger_type": 1, "enabled": True, "name": "bad words",
                           "trigger_metadata": {"keyword_filter": ["durian"], "regex_patterns": [],
                                                "allow_list": []}}]}
    for text, rule in (("the endings", "no-spoilers"), ("durian", "automod.99")):
        r = await h.client.post("/v1/jobs", headers=h.headers, json={
            "command": "probe", "options": {"text": text}, "policy": policy, "requester": {"user": text}})
        assert (await r.json())["error"]["rule"] == rule
    ok = await h.submit({"command": "probe", "options": {"text": "the endings"}})  # no guild rules
    assert (await h.wait_done(ok["id"]))["status"] == "done"
    r = await h.client.post("/v1/jobs", headers=h.headers, json={
        "command": "probe", "options": {"text": "x"}, "policy": {"rules": [{"id": "bad"}]}})
    err = (await r.json())["error"]
    assert r.status == 422 and err["code"] == "invalid_rules" and err["field"] == "policy.rules"


async def test_repeated_refusals_block_the_requester_for_a_while(probe_engine):
    h, _ = probe_engine
    body = {"command": "probe", "options": {"text": "gore"}, "requester": {"user": "troll"}}
    for _ in range(3):
        r = await h.client.post("/v1/jobs", headers=h.headers, json=body)
        assert r.status == 422
    r = await h.client.post("/v1/jobs", headers=h.headers,
                            json={**body, "options": {"text": "a cat"}})
    assert r.status == 403 and (await r.json())["error"]["code"] == "requester_blocked"
    assert int(r.headers["Retry-After"]) > 60
    other = await h.submit({"command": "probe", "options": {"text": "a cat"}, "requester": {"user": "nice"}})
    assert (await h.wait_done(other["id"]))["status"] == "done"


async def test_moderate_endpoint(probe_engine):
    h, _ = probe_engine
    r = await h.client.post("/v1/moderate", headers=h.headers, json={"text": "ṕ0rn pls"})
    assert await r.json() == {"allowed": False, "rule": "global.sexual", "category": "sexual",
                              "normalized": "porn pls"}
    r = await h.client.post("/v1/moderate", headers=h.headers, json={"text": "a cocktail in Scunthorpe"})
    assert (await r.json())["allowed"] is True
    r = await h.client.post("/v1/moderate", json={"text": "x"})
    assert r.status == 401


async def test_output_checks_and_ledger(engine_factory, tmp_path):
    """A plugin's output check refuses an output (the job fails, nothing is published); every
    published artifact is in the provenance ledger, which `aigc verify` reads."""
    from engine import sdk
    from engine.provenance import ProvenanceLedger, verify
    from tests.engine.probe_plugin import make_probe_plugin

    class NoDarkImages:
        name = "no-dark"
        modalities = frozenset({"image"})

        def check(self, data):
            import numpy as np
            dark = float(np.asarray(data).mean()) < 20
            return sdk.OutputVerdict(allowed=not dark, check=self.name, rule="test.dark", category="dark")

    plugin, gen = make_probe_plugin()
    plugin.output_checks.append(NoDarkImages())
    h = await engine_factory(extra_plugins=[plugin], builtin_plugins=False, data_dir=tmp_path / "d")
    done = await h.wait_done((await h.submit({"command": "probe", "options": {"text": "ok"}, "seed": 1}))["id"])
    assert done["status"] == "done"
    r = await h.client.get(done["artifacts"][0]["url"], headers=h.headers)
    data = await r.read()
    ledger = ProvenanceLedger(tmp_path / "d" / "provenance.sqlite3", readonly=True)
    report = verify(data, ledger)
    assert report.finding == "recorded" and done["id"] in report.summary
    ledger.close()
    # Now every output is "dark": the check refuses it and the job fails with the rule.
    plugin.output_checks[0].check = lambda data: sdk.OutputVerdict(False, "no-dark", "dark", "test.dark")
    failed = await h.wait_done((await h.submit({"command": "probe", "options": {"text": "ok"}, "seed": 2}))["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "output_refused"
    assert failed["error"]["rule"] == "test.dark" and failed["artifacts"] == []

"""The content policy runs in the engine before a job is queued, for every front."""
from __future__ import annotations

import asyncio
import threading


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


async def test_a_front_that_escalates_itself_gets_refusals_but_no_engine_block(probe_engine):
    h, _ = probe_engine
    body = {"command": "probe", "options": {"text": "gore"}, "requester": {"user": "mod", "escalation": "front"}}
    for _ in range(5):
        r = await h.client.post("/v1/jobs", headers=h.headers, json=body)
        err = (await r.json())["error"]
        assert r.status == 422 and err["code"] == "prompt_refused" and "escalation" not in err
    ok = await h.submit({**body, "options": {"text": "a cat"}})
    assert (await h.wait_done(ok["id"]))["status"] == "done"
    r = await h.client.post("/v1/jobs", headers=h.headers,
                            json={**body, "requester": {"user": "mod", "escalation": "sometimes"}})
    assert r.status == 422 and (await r.json())["error"]["field"] == "requester.escalation"


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


# ---- big guild rule sets: off the event loop, compiled once, capped ---------------------------

HEAVY = [{"id": f"r{i}", "keywords": [f"*w{i}x{j}*" for j in range(1000)]} for i in range(3)]


def _gate_compile(monkeypatch):
    """Make compiling a rule set wait until the test says so, recording the thread it ran on."""
    import threading

    from engine.policy import checker

    released, threads = threading.Event(), []
    real = checker.compile_rule_set

    def gated(rules, source):
        threads.append(threading.current_thread())
        released.wait(10)  # on the event loop this would stall /healthz until it timed out
        return real(rules, source)

    monkeypatch.setattr(checker, "compile_rule_set", gated)
    return released, threads


async def _until(predicate, what: str) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def test_healthz_answers_while_a_heavy_moderate_request_is_compiling(probe_engine, monkeypatch):
    h, _ = probe_engine
    released, threads = _gate_compile(monkeypatch)
    heavy = asyncio.ensure_future(h.client.post("/v1/moderate", headers=h.headers,
                                                json={"text": "a w1x7 here", "rules": HEAVY}))
    await _until(lambda: threads or heavy.done(), "the heavy request reached the compiler")
    r = await h.client.get("/healthz")
    assert r.status == 200
    assert not heavy.done()  # /healthz was served while the rule set was still compiling
    released.set()
    r = await heavy
    assert r.status == 200 and (await r.json())["rule"] == "r1"
    assert threads[0] is not threading.current_thread() and threads[0].name.startswith("aigc-policy")


async def test_job_prompt_checks_with_heavy_guild_rules_run_off_the_event_loop(probe_engine, monkeypatch):
    h, _ = probe_engine
    released, threads = _gate_compile(monkeypatch)
    job = asyncio.ensure_future(h.client.post("/v1/jobs", headers=h.headers, json={
        "command": "probe", "options": {"text": "a w2x9 here"}, "policy": {"rules": HEAVY}}))
    await _until(lambda: threads or job.done(), "the job's prompt check reached the compiler")
    assert (await h.client.get("/healthz")).status == 200 and not job.done()
    released.set()
    r = await job
    assert r.status == 422 and (await r.json())["error"]["rule"] == "r2"
    assert threads[0] is not threading.current_thread()


async def test_the_same_rule_set_is_compiled_once_across_requests(probe_engine, monkeypatch):
    from engine.policy import checker

    h, _ = probe_engine
    calls = []
    real = checker.compile_rule_set
    monkeypatch.setattr(checker, "compile_rule_set", lambda rules, source: calls.append(source) or real(rules, source))
    for i in range(3):
        r = await h.client.post("/v1/moderate", headers=h.headers, json={"text": f"w0x{i} ok", "rules": HEAVY})
        assert (await r.json())["rule"] == "r0"
    r = await h.client.post("/v1/jobs", headers=h.headers, json={
        "command": "probe", "options": {"text": "w0x5"}, "policy": {"rules": HEAVY}})
    assert (await r.json())["error"]["rule"] == "r0"
    assert calls == ["guild"]


async def test_the_engine_keeps_a_bounded_number_of_compiled_rule_sets(probe_engine):
    h, _ = probe_engine
    size = h.engine.policy._cache_size
    for i in range(size + 5):
        r = await h.client.post("/v1/moderate", headers=h.headers,
                                json={"text": "a cat", "rules": [{"id": "x", "keywords": [f"w{i}"]}]})
        assert r.status == 200
    assert size <= 64 and h.engine.policy.cache_len <= size


# ---- rule-set size caps -----------------------------------------------------------------------

async def _refused(h, path: str, body: dict) -> dict:
    r = await h.client.post(path, headers=h.headers, json=body)
    err = (await r.json())["error"]
    assert r.status == 422 and err["code"] == "invalid_request", err
    assert err["message"].startswith(f"{err['field']}: "), err
    return err


async def test_rule_set_size_caps_on_moderate(probe_engine):
    h, _ = probe_engine
    cases = [
        ({"rules": [{"id": "a", "keywords": ["k"] * 1001}]},
         "rules.0.keywords", "at most 1000 keywords per rule, got 1001"),
        ({"rules": {"rules": [{"id": "a", "keywords": ["ok", "k" * 61]}]}},
         "rules.rules.0.keywords.1", "at most 60 characters, got 61"),
        ({"rules": [{"id": "a", "regex": ["a+"] * 11}]}, "rules.0.regex", "at most 10 regexes per rule"),
        ({"rules": [{"id": "a", "regex": ["a" * 261]}]}, "rules.0.regex.0", "at most 260 characters"),
        ({"rules": [{"id": f"r{i}", "keywords": ["a"]} for i in range(101)]}, "rules", "at most 100 rules"),
        ({"rules": [{"id": f"r{i}", "keywords": ["a"] * 1000} for i in range(10)] + [{"id": "x", "keywords": ["b"]}]},
         "rules", "at most 10000 keywords, regexes and allow-list entries in all, got 10001"),
        ({"automod": [{"id": str(i), "trigger_type": 3} for i in range(26)]}, "automod", "at most 25 AutoMod rules"),
        ({"automod": [{"id": "1", "trigger_type": 1, "trigger_metadata": {"keyword_filter": ["a"] * 1001}}]},
         "automod.0.trigger_metadata.keyword_filter", "at most 1000 keywords per rule"),
    ]
    for extra, field, rule in cases:
        err = await _refused(h, "/v1/moderate", {"text": "a cat", **extra})
        assert err["field"] == field and rule in err["message"], (field, err)


async def test_rule_set_size_caps_on_jobs(probe_engine):
    h, gen = probe_engine
    err = await _refused(h, "/v1/jobs", {"command": "probe", "options": {"text": "x"},
                                         "policy": {"rules": [{"id": "a", "keywords": ["k"] * 1001}]}})
    assert err["field"] == "policy.rules.0.keywords" and "at most 1000 keywords per rule" in err["message"]
    err = await _refused(h, "/v1/jobs", {"command": "probe", "options": {"text": "x"}, "policy": {
        "automod": [{"id": "1", "trigger_type": 1, "trigger_metadata": {"allow_list": ["a"] * 1001}}]}})
    assert err["field"] == "policy.automod.0.trigger_metadata.allow_list"
    assert gen.batches == []


def test_the_caps_accept_the_largest_automod_setup_discord_allows():
    """6 keyword rules (1,000 keywords of 60 characters, 10 regexes of 260, 100 allowed), a
    member-profile keyword rule, the preset rule (1,000 allowed), spam and mention-spam rules."""
    from engine.protocol import ModerateRequest, PolicyContext

    def keyword_rule(i: int, trigger_type: int = 1) -> dict:
        return {"id": str(i), "name": f"rule {i}", "trigger_type": trigger_type, "enabled": True,
                "trigger_metadata": {"keyword_filter": [f"*{i:02d}{j:04d}".ljust(59, "x") + "*" for j in range(1000)],
                                     "regex_patterns": [f"r{i}{j}" + "a" * 250 for j in range(10)],
                                     "allow_list": [f"ok{i}{j}".ljust(60, "y") for j in range(100)]}}

    automod = [keyword_rule(i) for i in range(6)] + [keyword_rule(6, trigger_type=6)] + [
        {"id": "7", "trigger_type": 4, "trigger_metadata": {"presets": [1, 2, 3],
                                                            "allow_list": [f"p{j}" for j in range(1000)]}},
        {"id": "8", "trigger_type": 3, "trigger_metadata": {}},
        {"id": "9", "trigger_type": 5, "trigger_metadata": {"mention_total_limit": 50}}]
    assert all(len(k) == 60 for k in automod[0]["trigger_metadata"]["keyword_filter"])
    assert ModerateRequest(text="x", automod=automod).automod == automod
    assert PolicyContext(automod=automod, rules=automod[:6]).rules == automod[:6]

import threading
from pathlib import Path

import pytest

from engine.policy import MAX_TEXT_CHARS, Policy, RuleError, Verdict, check, default_policy, parse_rules

DATA = Path(__file__).parent / "data"


def corpus(name):
    return [ln for ln in (DATA / name).read_text(encoding="utf-8").splitlines() if ln.strip()]


def test_catch_rate_on_the_evasion_corpus_is_at_least_95_percent():
    lines = corpus("evasion.txt")
    assert len(lines) >= 500
    missed = [ln for ln in lines if check(ln).allowed]
    assert 1 - len(missed) / len(lines) >= 0.95, missed[:20]


def test_false_positive_rate_on_the_benign_corpus_is_at_most_1_percent():
    lines = corpus("benign.txt")
    assert len(lines) >= 300
    refused = [ln for ln in lines if not check(ln).allowed]
    assert len(refused) / len(lines) <= 0.01, refused


@pytest.mark.parametrize("trap", ["cocktail", "Scunthorpe", "assassin's creed", "grape", "therapist",
                                  "analysis", "skill", "button", "classic", "Essex", "retardant",
                                  "hentaigana", "Al Gore", "Gore-Tex", "Suicide Squad poster"])
def test_scunthorpe_traps_pass(trap):
    assert check(trap).allowed


def test_normalisation_beats_raw_matching_on_the_corpus():
    lines = corpus("evasion.txt")
    raw_only = Policy(match_normalized=False)
    assert sum(not raw_only.check(ln).allowed for ln in lines) < 0.2 * len(lines)


def test_verdict_fields_and_public_shape():
    v = check("p.o.r.n")
    assert isinstance(v, Verdict)
    assert (v.allowed, v.rule, v.category, v.source, v.matched_form) == \
        (False, "global.sexual", "sexual", "global", "normalized")
    assert v.public() == {"allowed": False, "rule": "global.sexual", "category": "sexual", "normalized": "porn"}
    ok = check("a cat in a hat")
    assert ok.public() == {"allowed": True, "rule": None, "category": None, "normalized": "a cat in a hat"}
    assert "porn" not in v.user_message() and "global.sexual" not in ok.user_message()


def test_global_rules_come_first_then_guild_then_automod():
    guild = [{"id": "no-dogs", "category": "custom", "keywords": ["dog*"]}]
    assert check("a dog", guild).rule == "no-dogs"
    assert check("a naked dog", guild).rule == "global.sexual"
    assert check("a cat", guild).allowed


def test_compiled_guild_rules_are_cached_by_content():
    policy = Policy()
    a = policy.rule_set([{"id": "x", "keywords": ["dog"]}])
    b = policy.rule_set([{"id": "x", "keywords": ["dog"]}])
    c = policy.rule_set([{"id": "x", "keywords": ["cat"]}])
    assert a is b and a is not c
    assert default_policy() is default_policy()


def test_cache_is_bounded():
    policy = Policy(cache_size=2)
    first = policy.rule_set([{"id": "x", "keywords": ["w0"]}])
    for i in range(1, 4):
        policy.rule_set([{"id": "x", "keywords": [f"w{i}"]}])
    assert policy.rule_set([{"id": "x", "keywords": ["w0"]}]) is not first


def test_overlong_text_is_refused_without_matching():
    v = check("a" * (MAX_TEXT_CHARS + 1))
    assert (v.allowed, v.rule, v.category) == (False, "limit.text_length", "limit")
    assert check("a" * MAX_TEXT_CHARS).allowed


def test_concurrent_checks_agree():
    policy = Policy()
    texts = ["a cat", "p0rn", "k i l l y o u r s e l f", "a grape"] * 25
    expected = [policy.check(t).allowed for t in texts]
    results: list[list[bool]] = []

    def worker():
        results.append([policy.check(t, [{"id": "g", "keywords": ["grape"]}]).allowed for t in texts])

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    guild_expected = [e and t != "a grape" for e, t in zip(expected, texts)]
    assert results == [guild_expected] * 4


from hypothesis import given, settings, strategies as st  # noqa: E402

from engine.policy import normalize  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_check_never_crashes_and_reports_the_normalised_form(text):
    v = check(text)
    assert v.normalized == normalize(text)
    assert v.allowed or (v.rule and v.category and v.matched_form in ("raw", "normalized", "joined"))


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["porn", "hentai", "suicide", "beheading"]), st.text(alphabet="abc .,!?", max_size=30),
       st.text(alphabet="xyz .,!?", max_size=30))
def test_a_global_term_as_a_word_is_refused_wherever_it_stands(term, before, after):
    assert not check(f"{before} {term} {after}").allowed


def test_check_options_names_the_refused_option():
    policy = Policy()
    ok = policy.check_options({"prompt": "a cat", "style": "watercolor", "steps": 20})
    assert ok.allowed and ok.field is None
    v = policy.check_options({"prompt": "a cat", "tags": ["cute", "n.u.d.e"], "steps": 20})
    assert (v.allowed, v.field, v.rule) == (False, "tags[1]", "global.sexual")
    g = policy.check_options({"prompt": "a dragon"}, [{"id": "no-dragons", "keywords": ["dragon*"]}])
    assert (g.field, g.rule) == ("prompt", "no-dragons")
    assert policy.check_options({}).allowed


def _spy_compile(monkeypatch) -> list[str]:
    from engine.policy import checker

    calls: list[str] = []
    real = checker.compile_rule_set

    def spy(rules, source):
        calls.append(source)
        return real(rules, source)

    monkeypatch.setattr(checker, "compile_rule_set", spy)
    return calls


def test_a_rule_set_is_parsed_and_compiled_once(monkeypatch):
    calls = _spy_compile(monkeypatch)
    policy = Policy()
    rules = [{"id": "g", "keywords": [f"*w{i}*" for i in range(300)]}]
    for _ in range(3):
        assert not policy.check("a w17 here", [dict(r) for r in rules]).allowed  # equal, not the same object
    assert calls == ["guild"]
    bad = [{"id": "bad"}]  # an invalid set is remembered too: refused again without parsing
    for _ in range(2):
        with pytest.raises(RuleError, match="at least one keyword"):
            policy.check("x", bad)
    assert calls == ["guild", "guild"]


def test_threads_asking_for_one_new_rule_set_compile_it_once(monkeypatch):
    calls = _spy_compile(monkeypatch)
    policy = Policy()
    rules = [{"id": "g", "keywords": [f"*w{i}*" for i in range(500)]}]
    start = threading.Barrier(4)

    def worker():
        start.wait()
        policy.rule_set(rules)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["guild"]


def test_cache_holds_a_bounded_number_of_rule_sets():
    policy = Policy(cache_size=8)
    for i in range(8 + 5):
        policy.rule_set([{"id": "x", "keywords": [f"w{i}"]}])
    assert policy.cache_len <= 8
    assert Policy().cache_len == 0 and Policy()._cache_size <= 64  # a few dozen by default


def test_cache_is_bounded_by_total_rule_set_size():
    policy = Policy(cache_terms=2500)
    for i in range(3):
        policy.rule_set([{"id": "x", "keywords": [f"w{i}k{j}" for j in range(1000)]}])
    assert policy.cache_len == 2  # 3 × 1,000 keywords do not fit in 2,500


def test_rule_set_size_caps_hold_in_process():
    too_many = [{"id": f"r{i}", "keywords": ["a"]} for i in range(101)]
    with pytest.raises(RuleError, match="at most 100"):
        parse_rules(too_many)
    too_big = [{"id": f"r{i}", "keywords": ["a"] * 1000} for i in range(10)] + [{"id": "x", "keywords": ["b"]}]
    with pytest.raises(RuleError, match="at most 10000 keywords, regexes and allow-list entries"):
        parse_rules(too_big)


def test_quick_checks_are_short_texts_with_small_cached_rule_sets():
    policy = Policy()
    small = [{"id": "s", "keywords": ["grape"]}]
    big = [{"id": "b", "keywords": [f"w{i}" for i in range(1000)]}]
    assert policy.is_quick("a cat") and not policy.is_quick("a cat " * 400)
    assert not policy.is_quick("a cat", small)  # not compiled yet
    policy.rule_set(small)
    policy.rule_set(big)
    assert policy.is_quick("a cat", small) and not policy.is_quick("a cat", big)
    assert not policy.is_quick("a cat", small, big)

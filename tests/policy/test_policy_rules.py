import json
import time

import pytest
from hypothesis import given, settings, strategies as st

from engine.policy import Policy, RuleError, load_global_rules, load_rules_file, parse_rules, rules_from_automod
from engine.policy.rules import ALTERNATION_CHUNK, MAX_REGEX_CHARS, RuleSet


def verdict(text, rules):
    return Policy(global_rules={"rules": []}).check(text, rules)


def rules(*keywords, regex=(), allow=(), set_allow=()):
    return {"rules": [{"id": "r1", "name": "Test rule", "category": "test", "keywords": list(keywords),
                       "regex": list(regex), "allow": list(allow)}], "allow": list(set_allow)}


@pytest.mark.parametrize("keyword, text, refused", [
    ("cat", "a cat here", True),
    ("cat", "cats here", False),          # whole word by default
    ("cat", "concatenate", False),
    ("cat*", "catapult", True),           # prefix wildcard: words starting with cat
    ("cat*", "bobcat", False),
    ("*cat", "bobcat", True),             # suffix wildcard: words ending with cat
    ("*cat", "catapult", False),
    ("*cat*", "concatenate", True),       # anywhere
    ("kill yourself", "killyourself", True),
    ("kill yourself", "kill.your.self", False),  # separators only where the keyword has a space
    ("kill yourself", "KILL   YOURSELF", True),
    ("shit", "s h 1 t", True),
    ("shit", "shiiiiit", True),
    ("shit", "shitake", False),
    ("ass", "classic assassin's creed", False),
    ("kill", "a skill tree", False),
    ("butt", "a red button", False),
])
def test_keyword_wildcards_and_whole_words(keyword, text, refused):
    assert verdict(text, rules(keyword)).allowed is not refused


def test_verdict_names_rule_and_form_never_the_term():
    v = verdict("p0rn please", rules("porn"))
    assert (v.allowed, v.rule, v.rule_name, v.category, v.source) == (False, "r1", "Test rule", "test", "guild")
    assert v.matched_form == "normalized"
    assert "porn" not in v.user_message()
    assert verdict("PORN please", rules("porn")).matched_form == "raw"


def test_allow_list_exempts_the_words_it_covers():
    r = rules("*cum*", allow=["document*", "cucumber"])
    assert verdict("a document and a cucumber", r).allowed
    assert not verdict("a document and cum", r).allowed
    assert verdict("scunthorpe", rules("*cunt*", set_allow=["scunthorpe"])).allowed


def test_big_keyword_and_allow_lists_compile_in_chunks_and_every_entry_still_counts():
    # 200 keywords and 200 allow entries: several alternations each (ALTERNATION_CHUNK), so that
    # compiling never holds the GIL long; a keyword or allow entry in any chunk still counts.
    words = [f"zq{chr(97 + i // 26)}{chr(97 + i % 26)}x" for i in range(200)]
    allow = [f"{w}ok" for w in words]
    r = rules(*[f"{w}*" for w in words], set_allow=allow)
    compiled = RuleSet(parse_rules(r), "guild").rules[0]
    assert len(compiled.keyword_re["raw"]) == -(-200 // ALTERNATION_CHUNK)  # other forms may merge some
    assert all(len(p) >= 2 for p in compiled.keyword_re.values())
    for w in (words[0], words[100], words[-1]):
        assert not verdict(f"say {w}s now", r).allowed, w
        assert verdict(f"say {w}ok now", r).allowed, w  # exempted by an allow entry of its chunk
    assert verdict("nothing to see", r).allowed


def test_regex_rules_match_raw_and_normalized_case_insensitively():
    r = rules(regex=[r"b[a@4]d\s*w[o0]rd"])
    assert not verdict("a BAD word", r).allowed
    v = verdict("a b.4.d w.0.r.d", r)
    assert not v.allowed and v.matched_form == "normalized"
    assert verdict("a good word", r).allowed


def test_catastrophic_patterns_are_accepted_and_match_correctly():
    evil = rules(regex=[r"(x+x+)+y$"])
    start = time.perf_counter()
    assert not verdict("x" * 15000 + "y", evil).allowed
    assert verdict("x" * 15000 + "z", evil).allowed  # the backtracking worst case for re
    assert time.perf_counter() - start < 2.0  # stdlib re would take longer than the universe


def test_catastrophic_patterns_that_never_match_stay_fast():
    evil = rules(regex=[r"^(a+)+$", r"^(a|aa)+c$"])
    start = time.perf_counter()
    assert verdict("a" * 10000 + "b", evil).allowed
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize("spec, message", [
    ({"id": "x", "keywords": ["a*b"]}, "rule 'x'): keywords[0]: '*' is allowed only at the start or end"),
    ({"id": "x", "keywords": ["**ab"]}, "keywords[0]: use a single '*'"),
    ({"id": "x", "keywords": [" * "]}, "keywords[0]: keyword ' * ' is empty"),
    ({"id": "x", "keywords": ["a" * 61]}, "keywords[0]: keyword is 61 characters, at most 60"),
    ({"id": "x", "keywords": ["ok", "\u200b\u200d"]}, "keywords[1]: keyword '\\u200b\\u200d' has nothing visible"),
    ({"id": "x", "keywords": ["ok"], "allow": ["\u00ad"]}, "allow[0]: keyword '\\xad' has nothing visible"),
    ({"id": "x", "regex": ["(a"]}, "regex[0]: not a valid RE2 pattern (missing ): (a)"),
    ({"id": "x", "regex": [r"(a)\1"]}, "regex[0]: not a valid RE2 pattern"),
    ({"id": "x", "regex": ["a*"]}, "regex[0]: pattern matches the empty string"),
    ({"id": "x", "regex": ["a" * (MAX_REGEX_CHARS + 1)]}, "regex[0]: pattern is 261 characters, at most 260"),
    ({"id": "x", "regex": ["a"] * 11}, "regex: List should have at most 10 items"),
    ({"id": "x"}, "rule 'x'): a rule needs at least one keyword or regex"),
    ({"id": "bad id!", "keywords": ["a"]}, "(rule 'bad id!'): id: String should match pattern"),
    ({"id": "x", "keywords": ["a"], "colour": "red"}, "colour: Extra inputs are not permitted"),
    ({"keywords": ["a"]}, "rules.rules[0]: id: Field required"),
    ({"id": "x", "keywords": "porn"}, "keywords: Input should be a valid list"),
])
def test_bad_rules_name_the_rule_and_the_field(spec, message):
    with pytest.raises(RuleError) as info:
        parse_rules([spec])
    assert message in str(info.value)


def test_bad_rule_sets_are_explained():
    with pytest.raises(RuleError, match="rule id 'a' is used twice"):
        parse_rules([{"id": "a", "keywords": ["x"]}, {"id": "a", "keywords": ["y"]}])
    with pytest.raises(RuleError, match=r"unknown field\(s\) \['rulez'\]"):
        parse_rules({"rulez": []})
    with pytest.raises(RuleError, match="expected a list of rules"):
        parse_rules("porn")
    with pytest.raises(RuleError, match=r"allow\[0\]: '\*' is allowed only"):
        parse_rules({"rules": [], "allow": ["a*b"]})


def test_rules_files_json_toml_and_errors(tmp_path):
    good = tmp_path / "guild.json"
    good.write_text(json.dumps(rules("dragon*")))
    assert not verdict("dragons!", load_rules_file(good)).allowed
    toml = tmp_path / "guild.toml"
    toml.write_text('[[rules]]\nid = "t"\nkeywords = ["unicorn"]\n')
    assert not verdict("a unicorn", load_rules_file(toml)).allowed
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(RuleError, match="broken.json: not valid JSON"):
        load_rules_file(broken)
    with pytest.raises(RuleError, match="cannot read rules file"):
        load_rules_file(tmp_path / "missing.json")


def test_global_rules_are_valid_small_and_cover_the_categories():
    spec = load_global_rules()
    assert {r.category for r in spec.rules} == {"sexual", "slurs", "violence", "self_harm"}
    assert all(r.description for r in spec.rules)
    assert sum(len(r.keywords) for r in spec.rules) < 200  # kept small on purpose
    assert len(RuleSet(spec, "global")) == 4


AUTOMOD = [
    {"id": "111", "guild_id": "9", "name": "No spoilers", "creator_id": "1", "event_type": 1,
     "trigger_type": 1, "enabled": True, "exempt_roles": [], "exempt_channels": [],
     "trigger_metadata": {"keyword_filter": ["spoiler*", "*ending"], "regex_patterns": ["dies? at the end"],
                          "allow_list": ["happy ending"]},
     "actions": [{"type": 1, "metadata": {}}]},
    {"id": "222", "name": "Presets", "trigger_type": 4, "enabled": True,
     "trigger_metadata": {"presets": [1, 2, 3], "allow_list": []}},
    {"id": "333", "name": "Disabled", "trigger_type": 1, "enabled": False,
     "trigger_metadata": {"keyword_filter": ["banana"]}},
    {"id": "444", "name": "Spam", "trigger_type": 3, "enabled": True, "trigger_metadata": {}},
]


def test_automod_keyword_rules_are_imported():
    spec = rules_from_automod(AUTOMOD)
    assert [r.id for r in spec.rules] == ["automod.111"]
    rule = spec.rules[0]
    assert (rule.name, rule.category, rule.allow) == ("No spoilers", "automod", ["happy ending"])
    policy = Policy(global_rules={"rules": []})
    assert not policy.check("big spoilers ahead", automod_rules=AUTOMOD).allowed
    assert not policy.check("the sad ending", automod_rules=AUTOMOD).allowed
    assert policy.check("a happy ending", automod_rules=AUTOMOD).allowed
    v = policy.check("the hero dies at the end", automod_rules=AUTOMOD)
    assert (v.rule, v.source) == ("automod.111", "automod")
    assert policy.check("a banana", automod_rules=AUTOMOD).allowed  # disabled rule skipped
    assert parse_rules(AUTOMOD) == spec  # the same JSON is recognised as a rules file


def test_bad_automod_payloads_are_explained():
    with pytest.raises(RuleError, match=r"automod\[0\] \(rule 'x'\): regex\[0\]: not a valid RE2"):
        rules_from_automod([{"id": "1", "name": "x", "trigger_type": 1,
                             "trigger_metadata": {"regex_patterns": ["(unclosed"]}}])
    with pytest.raises(RuleError, match="expected a list of rule objects"):
        rules_from_automod("nope")
    with pytest.raises(RuleError, match=r"automod\[0\]: expected an object"):
        rules_from_automod([3])


REGEX_ATOMS = st.sampled_from(["a", "b", ".", r"\w", r"\d", "[ab]", "(a|b)", "(a+)", "x", "\\", "(", ")", "[",
                               "*", "+", "?", "{2,}", "|", "^", "$", r"\1", "(?=a)", "(?i)"])


@settings(max_examples=200, deadline=None)
@given(st.lists(REGEX_ATOMS, min_size=1, max_size=12).map("".join), st.text(max_size=200))
def test_any_regex_either_compiles_and_runs_or_gives_a_rule_error(pattern, text):
    try:
        spec = parse_rules([{"id": "fuzz", "regex": [pattern]}])
    except RuleError as exc:
        assert "fuzz" in str(exc) and "regex[0]" in str(exc)
        return
    v = Policy(global_rules={"rules": []}).check(text + "a" * 300, spec)
    assert v.allowed in (True, False)

"""`aigc moderate TEXT [--guild-rules FILE] [--json]`: check a text against the policy.

Exit code 0 whether the text is allowed or not (the verdict is the output); 2 when the rules
file is unreadable or invalid, with the rule and field named on stderr.
"""
from __future__ import annotations

import argparse
import json
import sys

from engine.policy.checker import Policy
from engine.policy.rules import RuleError, load_rules_file


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", metavar="TEXT", help="the prompt or text to check")
    parser.add_argument("--guild-rules", metavar="FILE",
                        help="guild rules (.json/.toml), or a Discord AutoMod rules JSON export")
    parser.add_argument("--json", action="store_true",
                        help='print {"allowed", "rule", "category", "normalized"} as JSON')


def run(args: argparse.Namespace) -> int:
    try:
        guild = load_rules_file(args.guild_rules) if args.guild_rules else None
        verdict = Policy().check(args.text, guild)
    except RuleError as exc:
        print(f"aigc moderate: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(verdict.public(), ensure_ascii=False))
    elif verdict.allowed:
        print(f"allowed (normalized: {verdict.normalized!r})")
    else:
        print(f"refused by rule {verdict.rule} [{verdict.category}] "
              f"on the {verdict.matched_form} text (normalized: {verdict.normalized!r})")
    return 0

"""Catch rate of the content policy on the evasion corpus, false positives on the benign one.

    .venv/bin/python benchmarks/policy_catch_rate.py

Prints one JSON line: catch_rate (share of tests/policy/data/evasion.txt refused),
false_positive_rate (share of tests/policy/data/benign.txt refused), the corpus sizes and
baseline_catch_rate (the same global rules matched on the raw text only, no normalisation),
real_catch_rate (evasion_real.txt, hand-written real-world forms) and
spaced_benign_false_positive_rate (benign_spaced.txt, benign texts with spelled-out letters).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.policy.checker import Policy  # noqa: E402

DATA = ROOT / "tests" / "policy" / "data"


def read_corpus(name: str) -> list[str]:
    return [ln for ln in (DATA / name).read_text(encoding="utf-8").splitlines() if ln.strip()]


def refused_share(policy: Policy, texts: list[str]) -> float:
    return sum(not policy.check(t).allowed for t in texts) / len(texts)


def measure() -> dict[str, float | int]:
    evasion, benign = read_corpus("evasion.txt"), read_corpus("benign.txt")
    policy, raw_only = Policy(), Policy(match_normalized=False)
    start = time.perf_counter()
    catch = refused_share(policy, evasion)
    fp = refused_share(policy, benign)
    per_check_us = (time.perf_counter() - start) / (len(evasion) + len(benign)) * 1e6
    return {"catch_rate": round(catch, 4), "false_positive_rate": round(fp, 4),
            "n_evasion": len(evasion), "n_benign": len(benign),
            "baseline_catch_rate": round(refused_share(raw_only, evasion), 4),
            "baseline_false_positive_rate": round(refused_share(raw_only, benign), 4),
            "mean_check_us": round(per_check_us, 1),
            # Hand-written real-world forms (spaced next to one-letter words, dotted, mixed
            # separators, zero-width and fullwidth letters, leet) and spaced benign texts.
            "real_catch_rate": round(refused_share(policy, read_corpus("evasion_real.txt")), 4),
            "spaced_benign_false_positive_rate": round(refused_share(policy, read_corpus("benign_spaced.txt")), 4)}


if __name__ == "__main__":
    print(json.dumps(measure()))

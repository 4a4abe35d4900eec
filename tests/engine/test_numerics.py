"""Bit-for-bit matrix products in every process that runs a generator: importing ``engine``
first sets MKL_CBWR=AUTO (engine/__init__.py), so a product's last bits do not depend on where
its input happens to lie in memory."""
from __future__ import annotations

import json
import os
import subprocess
import sys

# F.linear on one input placed at 16 alignments; prints the largest difference from the first
PROBE = """
import json, sys
{first}
import torch
torch.manual_seed(0)
a, w = torch.randn(3, 300), torch.randn(77, 300)
ref = torch.nn.functional.linear(a, w)
worst = 0.0
for off in range(1, 16):
    buf = torch.empty(a.numel() + 16)
    v = buf[off:off + a.numel()].view_as(a)
    v.copy_(a)
    worst = max(worst, float((torch.nn.functional.linear(v, w) - ref).abs().max()))
print(json.dumps({{"worst": worst, "cbwr": __import__("os").environ.get("MKL_CBWR")}}))
"""


def _probe(first: str, env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE.format(first=first)], env=env, capture_output=True,
                         text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_engine_first_makes_products_independent_of_alignment():
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    pinned = _probe("import engine", env)
    assert pinned["cbwr"] == "AUTO"
    assert pinned["worst"] == 0.0, pinned
    # what it guards against (on CPUs where MKL dispatches by alignment, as this machine's does):
    # the same probe without the setting; not asserted, other CPUs may not show it
    bare = _probe("", env)
    print("without MKL_CBWR: worst difference", bare["worst"])


def test_an_explicit_setting_wins():
    env = {**os.environ, "MKL_CBWR": "COMPATIBLE"}
    assert _probe("import engine", env)["cbwr"] == "COMPATIBLE"

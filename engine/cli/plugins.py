"""`aigc plugins`: the catalog as a table (or JSON), loaded in-process."""
from __future__ import annotations

import argparse
import json

from engine.cli import settings_or_exit


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the catalog as JSON")


def run(args: argparse.Namespace) -> int:
    from engine.registry import build_registry
    from engine.runtime import pick_device

    s = settings_or_exit()
    reg = build_registry(pick_device(s.device), enabled=s.plugins_enabled,
                         disabled=s.plugins_disabled, builtin=s.builtin_plugins)
    cat = reg.catalog()
    if args.json:
        print(json.dumps(cat.model_dump(mode="json"), indent=2, ensure_ascii=False))
        return 0
    rows = [("PLUGIN", "VERSION", "COMMAND", "MODALITY", "OPTIONS", "ACTIONS")]
    for p in cat.plugins:
        for c in p.commands:
            rows.append((p.name, p.version, f"/{c.name}", c.modality,
                         " ".join(o.name + ("*" if o.required else "") for o in c.options),
                         " ".join(a.name for a in c.actions)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    for f in cat.failed:
        print(f"FAILED  {f.name} ({f.source}): {f.reason}")
    print(f"modalities: {', '.join(m.name for m in cat.modalities)}")
    return 0

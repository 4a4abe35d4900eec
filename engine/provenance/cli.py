"""`aigc verify FILE [--ledger PATH] [--json]`: what the labels and the ledger say about a file.

The ledger defaults to ``$AIGC_DATA_DIR/provenance.sqlite3`` (``AIGC_DATA_DIR`` defaults to
``./data``) and is opened read-only: verifying never creates or changes it. Exit code 0
whatever the finding; 2 when the file cannot be read.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from engine.provenance.ledger import LedgerError, ProvenanceLedger
from engine.provenance.verify import verify


def default_ledger_path() -> Path:
    return Path(os.environ.get("AIGC_DATA_DIR") or "./data") / "provenance.sqlite3"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="the file to check")
    parser.add_argument("--ledger", metavar="PATH",
                        help="provenance ledger (default: $AIGC_DATA_DIR/provenance.sqlite3, AIGC_DATA_DIR=./data)")
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")


def run(args: argparse.Namespace) -> int:
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        print(f"aigc verify: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    path = Path(args.ledger) if args.ledger else default_ledger_path()
    ledger, status = None, "checked"
    try:
        ledger = ProvenanceLedger(path, readonly=True)
    except LedgerError as exc:
        status = f"not checked: {exc}"
    try:
        report = verify(data, ledger, ledger_status=status)
    finally:
        if ledger is not None:
            ledger.close()
    if args.json:
        print(json.dumps(report.model_dump(mode="json"), ensure_ascii=False))
    else:
        print(report.summary)
        c = report.content_credentials
        if c:  # the manifest in a few lines: who signed it, what made it, from which files
            signer = c.get("signer") or {}
            print(f"Content Credentials: {c['state']}, signed by "
                  f"{' / '.join(x for x in (signer.get('common_name'), signer.get('issuer')) if x) or '?'}")
            for a in c.get("actions") or []:
                agent = a.get("softwareAgent") if isinstance(a.get("softwareAgent"), dict) else {}
                print("  " + " · ".join(str(x) for x in (a.get("action"), a.get("digitalSourceType"),
                                                          agent.get("name"), a.get("description")) if x))
            for i in c.get("ingredients") or []:
                print(f"  ingredient: {i.get('title')} ({i.get('relationship')})")
        if status != "checked":
            print(f"ledger {status}")
    return 0

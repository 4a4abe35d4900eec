"""Provenance: a ledger of every artifact the engine encodes, and ``verify`` for any file.

    from engine.provenance import ProvenanceLedger, verify
    ledger = ProvenanceLedger(data_dir / "provenance.sqlite3")
    ledger.record_meta(file_bytes, meta, platform="discord", guild="123", mime="image/png")
    report = verify(uploaded_bytes, ledger)   # report.finding, report.summary, report.labels
"""
from engine.provenance.ledger import LedgerEntry, LedgerError, ProvenanceLedger, sha256_hex
from engine.provenance.verify import VerifyReport, verify

__all__ = ["LedgerEntry", "LedgerError", "ProvenanceLedger", "VerifyReport", "sha256_hex", "verify"]

"""``verify(data)``: what a file's embedded labels, its Content Credentials (C2PA, whoever
signed them) and the provenance ledger say about it."""
from __future__ import annotations

import logging

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from engine.labels import read_labels
from engine.provenance.content_hash import content_hash
from engine.provenance.ledger import LedgerEntry, ProvenanceLedger, sha256_hex

__all__ = ["VerifyReport", "verify"]
log = logging.getLogger("aigc.engine")

Finding = Literal["recorded", "recorded_same_content", "recorded_job_bytes_differ",
                  "labelled_not_recorded", "unknown"]


class VerifyReport(BaseModel):
    """``finding``: *recorded* — these exact bytes are in the ledger; *recorded_same_content* —
    the same pixels/PCM are (the metadata was stripped or rewritten); *recorded_job_bytes_differ*
    — the labels name a job the ledger knows, but the bytes changed (re-encoded, edited);
    *labelled_not_recorded* — AI labels, but no ledger record here (another service, or another
    ledger); *unknown* — neither."""

    model_config = ConfigDict(frozen=True)

    sha256: str
    size: int
    format: str
    finding: Finding
    made_here: bool
    ai_generated: bool
    labels: dict[str, Any]
    ledger: list[dict[str, Any]]
    job_records: list[dict[str, Any]] = []
    ledger_status: str  # "checked", "no ledger", or why it could not be read
    # "not needed" (no ledger, or these exact bytes are recorded), "checked", "not applicable"
    # (no pixel/PCM hash for this format), or "skipped: why" (e.g. an image over the pixel cap)
    content_check: str = "not needed"
    # The file's C2PA manifest, any signer's (None: none found): state (Valid, Trusted, or
    # Invalid = the file or its manifest changed since signing), errors, signer (common name,
    # issuer), actions, digital_source_type, ingredients, aigc (the GB 45438 assertion)
    content_credentials: dict[str, Any] | None = None
    summary: str


def _describe(entry: LedgerEntry) -> str:
    from datetime import datetime, timezone

    when = datetime.fromtimestamp(entry.created, timezone.utc).isoformat(timespec="seconds")
    where = f" for {entry.platform}" + (f" guild {entry.guild}" if entry.guild else "") if entry.platform else ""
    what = entry.rendition or f"output {entry.index}"
    return (f"{what} of job {entry.job} ({entry.command}) by model {entry.model}"
            f" at {when}{where}" + (", the copy signed with Content Credentials" if entry.signed else ""))


def _credentials(data: bytes) -> dict[str, Any] | None:
    try:
        from engine.provenance.credentials import read_credentials
    except ImportError:  # c2pa-python not installed: no credentials check
        return None
    try:
        return read_credentials(data)
    except Exception as e:  # noqa: BLE001 - a hostile file must not fail the whole report
        log.warning("reading Content Credentials failed", extra={"error": type(e).__name__})
        return {"state": "Invalid", "errors": [{"code": "manifest.unreadable", "explanation": type(e).__name__}],
                "signer": None, "actions": [], "digital_source_type": None, "ai_generated": False,
                "ingredients": [], "aigc": None,
                "trusted": False, "claim_generator": None, "title": None}


def _describe_credentials(c: dict[str, Any]) -> str:
    signer = c.get("signer") or {}
    name, issuer = signer.get("common_name"), signer.get("issuer")
    who = (f"{name} (issued by {issuer})" if name and issuer else name or issuer) or "an unknown signer"
    if c["state"] == "Invalid":
        return (f" Its Content Credentials (signed by {who}) do not match it: the file or the manifest "
                "was changed after signing.")
    ai = " as AI-generated" if c.get("ai_generated") else ""
    sources = c.get("ingredients") or []
    made_from = f", made from {len(sources)} source file{'s' * (len(sources) != 1)}" if sources else ""
    return f" Content Credentials signed by {who} describe it{ai}{made_from} (signature valid)."


def verify(data: bytes, ledger: ProvenanceLedger | None = None, *, ledger_status: str | None = None) -> VerifyReport:
    digest = sha256_hex(data)
    labels = read_labels(data)
    credentials = _credentials(data)
    cred_ai = bool(credentials and credentials["state"] != "Invalid" and credentials.get("ai_generated"))
    records = ledger.lookup(digest) if ledger is not None else []
    content_records: list[LedgerEntry] = []
    job_records: list[LedgerEntry] = []
    provenance = labels.get("provenance") or {}
    content_check = "not needed"
    if ledger is not None and not records:
        content, why = content_hash(data)
        content_records = ledger.lookup_content(content) if content else []
        content_check = "checked" if content else f"skipped: {why}" if why else "not applicable"
    if ledger is not None and not records and not content_records and isinstance(provenance.get("job"), str):
        job_records = ledger.lookup_job(provenance["job"])
    status = ledger_status or ("checked" if ledger is not None else "no ledger")
    if records:
        finding: Finding = "recorded"
        summary = "Made here: " + _describe(records[0]) + "."
    elif content_records:
        finding = "recorded_same_content"
        summary = ("Made here, with the same content but different file metadata: "
                   + _describe(content_records[0]) + ".")
    elif job_records:
        finding = "recorded_job_bytes_differ"
        summary = (f"The labels name job {provenance['job']}, which the ledger knows "
                   f"({_describe(job_records[0])}), but these bytes were changed since.")
    elif labels["ai_generated"] or cred_ai:
        finding = "labelled_not_recorded"
        summary = "Labelled as AI-generated, but not in this ledger."
    else:
        finding = "unknown"
        summary = "No AI-content labels and no ledger record."
    if not labels["ai_generated"] and not cred_ai and finding != "unknown":
        summary += " Its embedded labels are missing (metadata stripped)."
    if content_check.startswith("skipped") and not content_records and not job_records:
        summary += f" Its pixels/samples were not compared with the ledger ({content_check[9:]})."
    if credentials is not None:
        summary += _describe_credentials(credentials)
    return VerifyReport(sha256=digest, size=len(data), format=labels["format"], finding=finding,
                        made_here=bool(records or content_records),
                        ai_generated=labels["ai_generated"] or cred_ai or bool(records or content_records),
                        labels=labels, ledger=[r.to_dict() for r in records or content_records],
                        job_records=[r.to_dict() for r in job_records], ledger_status=status,
                        content_check=content_check, content_credentials=credentials, summary=summary)

"""The provenance ledger: sha256 of every artifact's bytes → job, command, model, time, requester.

Discord and other hosts may strip file metadata, so the engine records each artifact when it
is encoded, and ``/verify`` can still answer "was this made here, when, by which model".

SQLite (stdlib ``sqlite3``), one file given by the caller. Append-only: triggers refuse
UPDATE and DELETE, so a record cannot be rewritten through this or any other client short of
dropping the triggers. Recording the same artifact again (a job re-run after a crash yields
the same bytes) is a no-op.

Signed files (Content Credentials): a C2PA manifest is not byte-reproducible, so each output has
two rows under the same job and index — the deterministic labelled file (``signed`` false: what
the engine makes again on demand and sha-checks) and the signed file that was served (``signed``
true; a file signed again after being made again adds one more row). ``/verify`` finds any of them. Thread-safe: one connection guarded by a lock; other processes
are serialised by SQLite's file lock (WAL mode, 5 s busy timeout).

Privacy: a row names the requester's platform and guild, never the user. The ledger keeps
no prompt either; the options live in the job journal and audit log, which have retention.
"""
from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.provenance.content_hash import content_sha256 as _content_sha256

__all__ = ["LedgerEntry", "LedgerError", "ProvenanceLedger", "sha256_hex"]

SCHEMA_VERSION = 3  # 2: rendition (display copies); 3: signed; older ledgers are upgraded in place
_SCHEMA = """
CREATE TABLE IF NOT EXISTS artifacts (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
    content_sha256 TEXT,
    job TEXT NOT NULL,
    output_index INTEGER NOT NULL,
    command TEXT NOT NULL,
    model TEXT NOT NULL,
    model_sha256 TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    platform TEXT,
    guild TEXT,
    mime TEXT,
    recorded_at REAL NOT NULL,
    rendition TEXT NOT NULL DEFAULT '',
    signed INTEGER NOT NULL DEFAULT 0,
    UNIQUE (sha256, job, output_index)
);
CREATE INDEX IF NOT EXISTS artifacts_by_job ON artifacts (job);
CREATE INDEX IF NOT EXISTS artifacts_by_content ON artifacts (content_sha256);
CREATE TRIGGER IF NOT EXISTS artifacts_no_update BEFORE UPDATE ON artifacts
BEGIN SELECT RAISE(ABORT, 'the provenance ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS artifacts_no_delete BEFORE DELETE ON artifacts
BEGIN SELECT RAISE(ABORT, 'the provenance ledger is append-only'); END;
"""
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class LedgerError(ValueError):
    """Bad input to the ledger or an unusable ledger file, with the field or the reason."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class LedgerEntry:
    sha256: str
    content_sha256: str | None  # pixels/PCM hash: survives stripped metadata (content_hash.py)
    job: str
    index: int
    command: str
    model: str
    model_sha256: str
    created: float  # UNIX time the job was created
    platform: str | None
    guild: str | None
    mime: str | None
    recorded_at: float
    rendition: str = ""  # "" for an output; e.g. "display copy of outputs 1-4" for a posted grid
    signed: bool = False  # these bytes carry our C2PA manifest (the labelled bytes under it have a row too)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _text(value: Any, field: str, *, required: bool = True, limit: int = 256) -> str | None:
    if value is None or value == "":
        if required:
            raise LedgerError(f"{field}: required")
        return None
    if not isinstance(value, str):
        raise LedgerError(f"{field}: expected a string, got {type(value).__name__}")
    if len(value) > limit:
        raise LedgerError(f"{field}: at most {limit} characters, got {len(value)}")
    return value


# One artifact for record_meta_many: (file bytes, provenance meta, {platform, guild, mime} and
# optionally signed and content_sha256).
LedgerRecord = tuple[bytes, dict[str, str], dict[str, str | None]]


def _meta_fields(meta: dict[str, str]) -> dict[str, Any]:
    """record()'s keyword arguments from the engine's provenance meta."""
    from datetime import datetime

    created = meta.get("created")
    try:
        when = datetime.fromisoformat(created).timestamp() if created else None
    except ValueError:
        raise LedgerError(f"meta.created: not an ISO 8601 time: {created!r}") from None
    rendition = meta.get("rendition", "")
    try:  # a rendition (a display copy) is filed under its job's first output
        index = 0 if rendition else int(meta.get("index", "0"))
    except ValueError:
        raise LedgerError(f"meta.index: not an integer: {meta.get('index')!r}") from None
    return dict(job=meta.get("job", ""), index=index, command=meta.get("command", ""),
                model=meta.get("model", ""), model_sha256=meta.get("model_sha256", ""), created=when,
                rendition=rendition)


class ProvenanceLedger:
    """Open (creating unless ``readonly``) the ledger at ``path``."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        try:
            if readonly:
                if not self.path.is_file():
                    raise LedgerError(f"{self.path}: no ledger file there")
                self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                           check_same_thread=False, timeout=5.0)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=5.0)
                self._db.execute("PRAGMA journal_mode=WAL")
                # WAL + NORMAL: a commit survives an engine crash without an fsync per artifact.
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.executescript(_SCHEMA)
                columns = self._table_columns()
                if "rendition" not in columns:  # a version-1 ledger
                    self._db.execute("ALTER TABLE artifacts ADD COLUMN rendition TEXT NOT NULL DEFAULT ''")
                if "signed" not in columns:  # version 1 or 2
                    self._db.execute("ALTER TABLE artifacts ADD COLUMN signed INTEGER NOT NULL DEFAULT 0")
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                self._db.commit()
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"{self.path}: not a usable ledger ({exc})") from None
        if version not in (1, 2, SCHEMA_VERSION) or (version != SCHEMA_VERSION and not readonly):
            raise LedgerError(f"{self.path}: ledger schema {version}, this engine reads {SCHEMA_VERSION}")
        # An older ledger read as it is (read-only): version 1 holds no renditions, neither signed files.
        self._columns = (_COLUMNS if version == SCHEMA_VERSION else
                         _COLUMNS_V1 + (", rendition" if version == 2 else ", '' AS rendition") + ", 0 AS signed")
        self._lock = threading.Lock()

    def _table_columns(self) -> set[str]:
        return {r[1] for r in self._db.execute("PRAGMA table_info(artifacts)")}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "ProvenanceLedger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(self, data: bytes | None = None, *, sha256: str | None = None, job: str, index: int = 0,
               command: str, model: str, model_sha256: str = "", created: float | None = None,
               platform: str | None = None, guild: str | None = None, mime: str | None = None,
               rendition: str = "", signed: bool = False) -> LedgerEntry:
        """Record one artifact (its bytes, or their ``sha256``). Returns the stored entry —
        the earlier one when this artifact of this job was recorded already."""
        row = self._row(data, sha256=sha256, job=job, index=index, command=command, model=model,
                        model_sha256=model_sha256, created=created, platform=platform, guild=guild, mime=mime,
                        rendition=rendition, signed=signed)
        with self._lock:
            self._db.execute(_INSERT, row)
            self._db.commit()
            stored = self._db.execute(
                f"SELECT {self._columns} FROM artifacts WHERE sha256=? AND job=? AND output_index=?",
                (row[0], row[2], row[3])).fetchone()
        return _entry(stored)

    def _row(self, data: bytes | None, *, sha256: str | None, job: str, index: int, command: str, model: str,
             model_sha256: str, created: float | None, platform: str | None, guild: str | None,
             mime: str | None, rendition: str = "", signed: bool = False,
             content_sha256: str | None = None) -> tuple:
        """One validated row (LedgerError names the bad field). ``content_sha256``: the pixel/PCM
        hash when the caller knows it already (a signed copy has its labelled file's pixels)."""
        if self.readonly:
            raise LedgerError(f"{self.path}: opened read-only")
        if (data is None) == (sha256 is None):
            raise LedgerError("give the artifact's bytes or its sha256, exactly one of them")
        digest = sha256_hex(data) if data is not None else str(sha256).lower()
        content = content_sha256 or (_content_sha256(data) if data is not None else None)
        if not _HEX64.match(digest):
            raise LedgerError("sha256: expected 64 hexadecimal characters")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise LedgerError(f"index: expected an integer ≥ 0, got {index!r}")
        if model_sha256 and not _HEX64.match(model_sha256.lower()):
            raise LedgerError("model_sha256: expected 64 hexadecimal characters or empty")
        return (digest, content, _text(job, "job", limit=64), index, _text(command, "command", limit=64),
                _text(model, "model"), (model_sha256 or "").lower(),
                time.time() if created is None else float(created),
                _text(platform, "platform", required=False, limit=32),
                _text(guild, "guild", required=False, limit=64),
                _text(mime, "mime", required=False, limit=128), time.time(),
                _text(rendition, "rendition", required=False, limit=128) or "", int(bool(signed)))

    def record_meta(self, data: bytes, meta: dict[str, str], *, platform: str | None = None,
                    guild: str | None = None, mime: str | None = None, signed: bool = False) -> LedgerEntry:
        """Record an artifact from the engine's provenance ``meta`` (job, index, command,
        model, model_sha256, created as ISO 8601)."""
        return self.record(data, **_meta_fields(meta), platform=platform, guild=guild, mime=mime, signed=signed)

    def record_meta_many(self, records: list[LedgerRecord]) -> int:
        """Record several artifacts, each (bytes, meta, {platform, guild, mime}), in one
        transaction. Valid records are written even when others are not; the invalid ones
        are then reported in one LedgerError. Returns how many rows were new."""
        rows, bad = [], []
        for data, meta, where in records:
            try:
                rows.append(self._row(data, sha256=None, **_meta_fields(meta), **where))
            except LedgerError as e:
                bad.append(f"{meta.get('job', '?')}/{meta.get('index', '?')}: {e}")
        with self._lock:
            before = self._db.total_changes
            with self._db:  # one transaction: all of these rows, or none of them
                self._db.executemany(_INSERT, rows)
            written = self._db.total_changes - before
        if bad:
            raise LedgerError("; ".join(bad))
        return written

    def lookup(self, sha256: str) -> list[LedgerEntry]:
        """Every record of these bytes (normally one)."""
        with self._lock:
            rows = self._db.execute(f"SELECT {self._columns} FROM artifacts WHERE sha256=? ORDER BY id",
                                    (sha256.lower(),)).fetchall()
        return [_entry(r) for r in rows]

    def lookup_content(self, content_sha256: str) -> list[LedgerEntry]:
        """Records whose pixels/PCM match (the file's metadata may have been stripped)."""
        with self._lock:
            rows = self._db.execute(f"SELECT {self._columns} FROM artifacts WHERE content_sha256=? ORDER BY id",
                                    (content_sha256,)).fetchall()
        return [_entry(r) for r in rows]

    def lookup_job(self, job: str) -> list[LedgerEntry]:
        with self._lock:
            rows = self._db.execute(f"SELECT {self._columns} FROM artifacts WHERE job=? ORDER BY output_index, id",
                                    (job,)).fetchall()
        return [_entry(r) for r in rows]

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM artifacts").fetchone()[0])


_COLUMNS_V1 = ("sha256, content_sha256, job, output_index, command, model, model_sha256, created, platform, "
               "guild, mime, recorded_at")
_COLUMNS = _COLUMNS_V1 + ", rendition, signed"
_INSERT = f"INSERT OR IGNORE INTO artifacts ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"


def _entry(row: tuple[Any, ...]) -> LedgerEntry:
    return LedgerEntry(*row[:-1], signed=bool(row[-1]))

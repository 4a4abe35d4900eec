import io
import sqlite3
import threading

import numpy as np
import pytest
from PIL import Image

from engine import labels
from engine.provenance import LedgerError, ProvenanceLedger, sha256_hex
from engine.provenance.content_hash import content_sha256

META = {"label": "AI-generated", "producer": "AIGC Bot", "job": "job1", "index": "2", "command": "emoji",
        "model": "dcgan-emoji", "model_sha256": "cd" * 32, "created": "2026-11-29T09:00:00+00:00"}


@pytest.fixture
def ledger(tmp_path):
    with ProvenanceLedger(tmp_path / "data" / "provenance.sqlite3") as led:
        yield led


def png(seed=0, meta=META):
    rng = np.random.default_rng(seed)
    return labels.encode_png(Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)), meta)


def test_record_and_lookup_by_bytes(ledger):
    data = png()
    entry = ledger.record_meta(data, META, platform="discord", guild="99", mime="image/png")
    assert (entry.sha256, entry.job, entry.index, entry.command, entry.model) == \
        (sha256_hex(data), "job1", 2, "emoji", "dcgan-emoji")
    assert entry.created == 1795942800.0 and entry.platform == "discord" and entry.guild == "99"
    assert ledger.lookup(sha256_hex(data)) == [entry]
    assert ledger.lookup(sha256_hex(data).upper()) == [entry]
    assert ledger.lookup(sha256_hex(b"other")) == []
    assert ledger.lookup_job("job1") == [entry]
    assert ledger.lookup_content(content_sha256(data)) == [entry]


def test_recording_again_is_idempotent(ledger):
    data = png()
    first = ledger.record_meta(data, META)
    again = ledger.record_meta(data, META, guild="ignored")
    assert again == first and len(ledger) == 1
    ledger.record(sha256=sha256_hex(b"x"), job="job2", command="c", model="m")
    assert len(ledger) == 2


def test_ledger_is_append_only_even_for_other_clients(ledger, tmp_path):
    ledger.record_meta(png(), META)
    raw = sqlite3.connect(ledger.path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        raw.execute("UPDATE artifacts SET model='forged'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        raw.execute("DELETE FROM artifacts")
    raw.close()
    assert ledger.lookup_job("job1")[0].model == "dcgan-emoji"


def test_ledger_persists_and_opens_read_only(tmp_path):
    path = tmp_path / "p.sqlite3"
    with ProvenanceLedger(path) as led:
        entry = led.record_meta(png(), META)
    with ProvenanceLedger(path, readonly=True) as ro:
        assert ro.lookup(entry.sha256) == [entry]
        with pytest.raises(LedgerError, match="opened read-only"):
            ro.record(sha256=entry.sha256, job="j", command="c", model="m")
    with pytest.raises(LedgerError, match="no ledger file there"):
        ProvenanceLedger(tmp_path / "missing.sqlite3", readonly=True)
    assert not (tmp_path / "missing.sqlite3").exists()


def test_unusable_files_are_explained(tmp_path):
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LedgerError, match="not a usable ledger"):
        ProvenanceLedger(junk)
    future = tmp_path / "future.sqlite3"
    db = sqlite3.connect(future)
    db.execute("PRAGMA user_version=7")
    db.close()
    with pytest.raises(LedgerError, match="ledger schema 7, this engine reads 3"):
        ProvenanceLedger(future, readonly=True)


@pytest.mark.parametrize("kwargs, message", [
    ({"job": "", "command": "c", "model": "m"}, "job: required"),
    ({"job": "j", "command": "", "model": "m"}, "command: required"),
    ({"job": "j" * 65, "command": "c", "model": "m"}, "job: at most 64 characters"),
    ({"job": "j", "command": "c", "model": "m", "index": -1}, "index: expected an integer ≥ 0"),
    ({"job": "j", "command": "c", "model": "m", "index": True}, "index: expected an integer ≥ 0"),
    ({"job": "j", "command": "c", "model": "m", "model_sha256": "xyz"}, "model_sha256: expected 64 hex"),
    ({"job": "j", "command": "c", "model": 3}, "model: expected a string, got int"),
    ({"job": "j", "command": "c", "model": "m", "platform": "p" * 33}, "platform: at most 32"),
])
def test_bad_records_name_the_field(ledger, kwargs, message):
    with pytest.raises(LedgerError, match=message.replace("(", r"\(")):
        ledger.record(b"data", **kwargs)
    assert len(ledger) == 0


def test_bytes_or_digest_exactly_one(ledger):
    with pytest.raises(LedgerError, match="exactly one"):
        ledger.record(job="j", command="c", model="m")
    with pytest.raises(LedgerError, match="exactly one"):
        ledger.record(b"x", sha256="0" * 64, job="j", command="c", model="m")
    with pytest.raises(LedgerError, match="sha256: expected 64 hexadecimal"):
        ledger.record(sha256="abc", job="j", command="c", model="m")


def test_bad_meta_is_explained(ledger):
    with pytest.raises(LedgerError, match="meta.created: not an ISO 8601 time"):
        ledger.record_meta(b"x", {**META, "created": "yesterday"})
    with pytest.raises(LedgerError, match="meta.index: not an integer"):
        ledger.record_meta(b"x", {**META, "index": "two"})


def test_concurrent_recording_from_threads(ledger):
    errors = []

    def worker(t):
        try:
            for i in range(25):
                ledger.record(f"{t}-{i}".encode(), job=f"job{t}", index=i, command="c", model="m")
                ledger.record(f"{t}-{i}".encode(), job=f"job{t}", index=i, command="c", model="m")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(ledger) == 100
    assert [e.index for e in ledger.lookup_job("job3")] == list(range(25))


def test_content_hash_ignores_metadata_but_not_pixels():
    data = png()
    stripped = io.BytesIO()
    Image.open(io.BytesIO(data)).save(stripped, format="PNG")
    assert sha256_hex(stripped.getvalue()) != sha256_hex(data)
    assert content_sha256(stripped.getvalue()) == content_sha256(data)
    assert content_sha256(png(seed=1)) != content_sha256(data)
    wav = labels.encode_wav(np.zeros(100), 8000, META)
    assert content_sha256(wav) == content_sha256(labels.encode_wav(np.zeros(100), 8000, {**META, "job": "x"}))
    assert content_sha256(b"\x89PNG\r\n\x1a\ngarbage") is None
    assert content_sha256(b"plain text") is None


def test_record_many_writes_the_valid_and_names_the_invalid(ledger):
    good = [(png(i), {**META, "index": str(i)}, {"platform": "discord", "guild": "1", "mime": "image/png"})
            for i in range(3)]
    bad = (png(9), {**META, "index": "nine"}, {"platform": None, "guild": None, "mime": None})
    with pytest.raises(LedgerError, match=r"job1/nine: meta.index: not an integer"):
        ledger.record_meta_many([*good, bad])
    assert [e.index for e in ledger.lookup_job("job1")] == [0, 1, 2]
    assert ledger.record_meta_many(good) == 0  # again: duplicates are ignored, no error
    assert len(ledger.lookup_job("job1")) == 3


def test_a_version_1_ledger_is_read_as_it_is_and_upgraded_by_a_writer(tmp_path):
    path = tmp_path / "v1.sqlite3"
    db = sqlite3.connect(path)  # the version-1 table, as the first release wrote it
    db.executescript("""
        CREATE TABLE artifacts (id INTEGER PRIMARY KEY, sha256 TEXT NOT NULL, content_sha256 TEXT,
            job TEXT NOT NULL, output_index INTEGER NOT NULL, command TEXT NOT NULL, model TEXT NOT NULL,
            model_sha256 TEXT NOT NULL DEFAULT '', created REAL NOT NULL, platform TEXT, guild TEXT, mime TEXT,
            recorded_at REAL NOT NULL, UNIQUE (sha256, job, output_index));
        PRAGMA user_version=1;""")
    db.execute("INSERT INTO artifacts (sha256, job, output_index, command, model, created, recorded_at) "
               "VALUES (?, 'j1', 0, 'emoji', 'm', 1.0, 1.0)", ("a" * 64,))
    db.commit()
    db.close()
    with ProvenanceLedger(path, readonly=True) as old:
        assert old.lookup("a" * 64)[0].rendition == ""
    with ProvenanceLedger(path) as ledger:  # a writer upgrades it in place
        grid = ledger.record(sha256="b" * 64, job="j1", command="emoji", model="m",
                             rendition="display copy of outputs 1-4")
        assert grid.rendition == "display copy of outputs 1-4" and grid.index == 0
        assert [e.rendition for e in ledger.lookup_job("j1")] == ["", "display copy of outputs 1-4"]
    with ProvenanceLedger(path, readonly=True) as again:
        assert len(again) == 2


def test_a_version_2_ledger_gains_the_signed_column(tmp_path):
    path = tmp_path / "v2.sqlite3"
    with ProvenanceLedger(path) as ledger:
        ledger.record(sha256="a" * 64, job="j1", command="emoji", model="m")
    db = sqlite3.connect(path)  # back to version 2: as the release before signing wrote it
    db.executescript("ALTER TABLE artifacts DROP COLUMN signed; PRAGMA user_version=2;")
    db.close()
    with ProvenanceLedger(path, readonly=True) as old:
        assert old.lookup("a" * 64)[0].signed is False
    with ProvenanceLedger(path) as ledger:
        signed = ledger.record(sha256="c" * 64, job="j1", command="emoji", model="m", signed=True)
        assert signed.signed and [e.signed for e in ledger.lookup_job("j1")] == [False, True]
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 3
    db.close()


def test_a_signed_copy_shares_its_labelled_files_content_hash(ledger):
    data = png(3)
    meta = {**META, "index": "0"}
    where = {"platform": "discord", "guild": "1", "mime": "image/png"}
    known = content_sha256(data)
    assert ledger.record_meta_many([(data, meta, where),
                                    (data + b"signed", meta, {**where, "signed": True, "content_sha256": known})]) == 2
    rows = ledger.lookup_content(known)
    assert [r.signed for r in rows] == [False, True]

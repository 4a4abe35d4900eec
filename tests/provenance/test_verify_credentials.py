"""verify() reports Content Credentials from any signer (a second CA made here), and tampering."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

c2pa = pytest.importorskip("c2pa")

from engine.labels import DIGITAL_SOURCE_TYPE, encode_png  # noqa: E402
from engine.provenance import ProvenanceLedger, verify  # noqa: E402
from engine.provenance import credentials as cr  # noqa: E402


def _plain_png(value: int = 9) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), value, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _sign_elsewhere(tmp_path, data: bytes, ingredient: bytes | None = None) -> bytes:
    """A file signed by another studio's CA, with its own manifest (optionally edited from a parent)."""
    keys = cr.create_local_ca(tmp_path / "other", "Other Studio", common_name="Other Studio signer")
    info = c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, keys.chain_pem, keys.key_pem, None)
    ctx = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}}, signer=c2pa.Signer.from_info(info))
    actions = [{"action": "c2pa.created", "digitalSourceType": DIGITAL_SOURCE_TYPE,
                "softwareAgent": {"name": "OtherGen", "version": "9"}}]
    builder = c2pa.Builder.from_json({"claim_generator_info": [{"name": "Other Studio", "version": "1"}],
                                      "title": "theirs.png", "assertions": [
                                          {"label": "c2pa.actions", "data": {"actions": actions}}]}, ctx)
    if ingredient is not None:
        builder.add_ingredient(json.dumps({"title": "parent.png", "relationship": "componentOf"}), "image/png",
                               io.BytesIO(ingredient))
    out = io.BytesIO()
    builder.sign("image/png", io.BytesIO(data), out)
    return out.getvalue()


def test_another_signers_credentials_are_reported(tmp_path):
    signed = _sign_elsewhere(tmp_path, _plain_png(), ingredient=_plain_png(200))
    report = verify(signed, ProvenanceLedger(tmp_path / "ledger.sqlite3"))
    c = report.content_credentials
    assert c is not None and c["state"] == "Valid" and not c["errors"]
    assert c["signer"]["common_name"] == "Other Studio signer" and c["signer"]["issuer"] == "Other Studio"
    assert c["actions"][0]["action"] == "c2pa.created" and c["digital_source_type"] == DIGITAL_SOURCE_TYPE
    assert c["ingredients"] and c["ingredients"][0]["title"] == "parent.png"
    assert c["aigc"] is None and c["claim_generator"] == "Other Studio"
    # no embedded labels of ours, but the credentials say AI-generated
    assert report.finding == "labelled_not_recorded" and report.ai_generated and not report.made_here
    assert "Other Studio" in report.summary and "signature valid" in report.summary
    assert report.model_dump(mode="json")["content_credentials"]["state"] == "Valid"


def test_a_changed_file_reads_as_tampered(tmp_path):
    signed = _sign_elsewhere(tmp_path, _plain_png())
    at = signed.index(b"IDAT") + 6  # inside the compressed pixels
    tampered = signed[:at] + bytes([signed[at] ^ 0xFF]) + signed[at + 1:]
    report = verify(tampered)
    c = report.content_credentials
    assert c["state"] == "Invalid" and c["errors"]
    assert "changed after signing" in report.summary


def test_ours_and_none(tmp_path):
    meta = {"job": "j9", "index": "0", "model": "m", "command": "draw"}
    ours = cr.Signer(cr.local_keys(tmp_path)).sign(encode_png(np.zeros((8, 8, 3), np.uint8), meta), "image/png", meta)
    c = verify(ours).content_credentials
    assert c["state"] == "Valid" and c["aigc"]["ProduceID"] == "j9:0"
    assert verify(_plain_png()).content_credentials is None
    assert verify(b"not an image at all").content_credentials is None


def test_hostile_files_never_reach_the_unbounded_sdk_reader(monkeypatch):
    """c2pa's reader walks a whole file by itself (a 32 MiB file of tiny chunks held it for
    20-80 s): only files whose manifest box our own bounded walk finds are handed to it."""
    import struct

    import c2pa

    from tests.provenance import hostile_files as h

    def refuse(*args, **kwargs):
        raise AssertionError("the SDK reader was given a hostile file")

    monkeypatch.setattr(c2pa.Reader, "try_create", refuse)
    box_first = {  # a manifest box up front, then more chunks than the walk allows
        "png": h.png_with(h.png_chunk(b"caBX", b"jumb") + h.png_chunk(b"zzZz", b"") * 70_000),
        "wav": h.riff(b"WAVE", h.riff_chunk(b"C2PA", b"jumb") + h.riff_chunk(b"junk", b"") * 70_000),
        "gif": (b"GIF89a" + struct.pack("<HHBBB", 8, 8, 0, 0, 0)
                + b"\x21\xff\x0bC2PA_GIF\x01\x00\x00" + b"\x01a" * 70_000 + b"\x00"
                + b"\x2c" + struct.pack("<HHHHB", 0, 0, 8, 8, 0) + b"\x02\x02\x44\x01\x00\x3b"),
    }
    box_first["mp4"] = (h.mp4_box(b"ftyp", b"isom\0\0\2\0isom") + h.mp4_box(b"uuid", cr.C2PA_BMFF_UUID + b"jumb")
                        + h.mp4_box(b"free", b"") * 70_000)
    files = [h.png_tiny_chunks(), h.wav_tiny_chunks(), h.gif_comment_subblocks(), h.mp4_tiny_boxes(),
             h.mp4_many_containers(), *box_first.values()]
    for data in files:
        assert cr.read_credentials(data) is None


def test_aigc_verify_prints_the_credentials(tmp_path, capsys):
    import argparse

    from engine.provenance import cli

    path = tmp_path / "theirs.png"
    path.write_bytes(_sign_elsewhere(tmp_path, _plain_png(), ingredient=_plain_png(200)))
    assert cli.run(argparse.Namespace(file=str(path), ledger=str(tmp_path / "none.sqlite3"), json=False)) == 0
    out = capsys.readouterr().out
    assert "Content Credentials: Valid, signed by Other Studio signer / Other Studio" in out
    assert f"c2pa.created · {DIGITAL_SOURCE_TYPE} · OtherGen" in out
    assert "ingredient: parent.png (componentOf)" in out

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aigc.cli import main
from engine import labels
from engine.provenance import ProvenanceLedger, verify

ROOT = Path(__file__).resolve().parents[2]
META = {"label": "AI-generated", "producer": "AIGC Bot", "job": "jobV", "index": "0", "command": "emoji",
        "model": "dcgan-emoji", "model_sha256": "ef" * 32, "created": "2026-11-29T09:00:00+00:00"}


def image_bytes(seed=0):
    arr = np.random.default_rng(seed).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    return labels.encode_png(Image.fromarray(arr), META)


@pytest.fixture
def ledger(tmp_path):
    with ProvenanceLedger(tmp_path / "provenance.sqlite3") as led:
        yield led


def test_recorded_file_is_made_here(ledger):
    data = image_bytes()
    ledger.record_meta(data, META, platform="discord", guild="7", mime="image/png")
    report = verify(data, ledger)
    assert (report.finding, report.made_here, report.ai_generated, report.format) == ("recorded", True, True, "png")
    assert report.ledger[0]["job"] == "jobV" and report.labels["provenance"]["job"] == "jobV"
    assert report.summary == ("Made here: output 0 of job jobV (emoji) by model dcgan-emoji at "
                              "2026-11-29T09:00:00+00:00 for discord guild 7.")


def test_stripped_metadata_is_still_recognised_by_content(ledger):
    data = image_bytes()
    ledger.record_meta(data, META)
    stripped = io.BytesIO()
    Image.open(io.BytesIO(data)).save(stripped, format="PNG")
    report = verify(stripped.getvalue(), ledger)
    assert (report.finding, report.made_here, report.labels["ai_generated"]) == ("recorded_same_content", True, False)
    assert "metadata stripped" in report.summary


def test_edited_file_points_at_its_job(ledger):
    data = image_bytes()
    ledger.record_meta(data, META)
    im = Image.open(io.BytesIO(data)).convert("RGB")
    im.putpixel((0, 0), (1, 2, 3))
    edited = labels.encode_png(im, META, visible_mark=False)  # labels kept, pixels changed
    report = verify(edited, ledger)
    assert (report.finding, report.made_here) == ("recorded_job_bytes_differ", False)
    assert report.job_records[0]["job"] == "jobV"


def test_labelled_elsewhere_and_unknown(ledger):
    assert verify(image_bytes(5), ledger).finding == "labelled_not_recorded"
    plain = io.BytesIO()
    Image.new("RGB", (8, 8)).save(plain, format="PNG")
    report = verify(plain.getvalue(), ledger)
    assert (report.finding, report.ai_generated) == ("unknown", False)
    assert verify(image_bytes(), None).ledger_status == "no ledger"


def test_verify_cli_json_with_ledger(tmp_path, capsys, ledger):
    data = image_bytes()
    ledger.record_meta(data, META, platform="discord")
    f = tmp_path / "art.png"
    f.write_bytes(data)
    assert main(["verify", str(f), "--ledger", str(ledger.path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["finding"] == "recorded" and report["ledger"][0]["platform"] == "discord"
    assert report["labels"]["aigc"]["Label"] == "1"
    assert main(["verify", str(f), "--ledger", str(ledger.path)]) == 0
    assert capsys.readouterr().out.startswith("Made here: output 0 of job jobV")


def test_verify_cli_default_ledger_from_data_dir(tmp_path, monkeypatch, capsys):
    data_dir = tmp_path / "aigc-data"
    with ProvenanceLedger(data_dir / "provenance.sqlite3") as led:
        led.record_meta(image_bytes(), META)
    f = tmp_path / "art.png"
    f.write_bytes(image_bytes())
    monkeypatch.setenv("AIGC_DATA_DIR", str(data_dir))
    assert main(["verify", str(f), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["made_here"] is True
    monkeypatch.setenv("AIGC_DATA_DIR", str(tmp_path / "empty"))
    assert main(["verify", str(f), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["finding"] == "labelled_not_recorded"
    assert report["ledger_status"].startswith("not checked:") and "no ledger file there" in report["ledger_status"]
    assert not (tmp_path / "empty").exists()  # verifying never creates a ledger


def test_verify_cli_unreadable_file_exits_2(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "nope.png")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_verify_runs_as_a_process_on_audio(tmp_path):
    wav = tmp_path / "a.wav"
    wav.write_bytes(labels.encode_wav(np.zeros(800), 8000, META))
    out = subprocess.run([sys.executable, "-m", "aigc.cli", "verify", str(wav), "--ledger", str(tmp_path / "x"),
                          "--json"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    report = json.loads(out.stdout)
    assert (report["format"], report["ai_generated"], report["finding"]) == ("wav", True, "labelled_not_recorded")

import json
import shutil
import subprocess

import pytest


@pytest.fixture
def meta():
    return {"label": "AI-generated", "producer": "AIGC Bot", "job": "job42", "index": "1",
            "command": "emoji", "plugin": "emoji", "seed": "7", "model": "dcgan-emoji",
            "model_sha256": "ab" * 32, "options": json.dumps({"prompt": 'a "cat" <&> 猫'}),
            "created": "2026-11-29T09:00:00+00:00"}


@pytest.fixture(scope="session")
def exiftool():
    """Runs Debian's exiftool (libimage-exiftool-perl; CI must apt-get it) on a file."""
    path = shutil.which("exiftool")
    assert path, "exiftool is required: apt-get install libimage-exiftool-perl"

    def run(file):
        out = subprocess.run([path, "-j", "-G1", "-a", "-struct", str(file)], capture_output=True,
                             text=True, timeout=60, check=True)
        return json.loads(out.stdout)[0]

    return run

"""`/name` through a real engine over loopback HTTP, and `aigc generate name`."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from plugins.name.data import STYLES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def name_engine(engine_factory):
    return await engine_factory(plugins_enabled=["name"])


async def run(h, body) -> dict:
    acc = await h.submit(body)
    done = await h.wait_done(acc["id"])
    assert done["status"] == "done", done
    return done


async def test_catalog_offers_name_with_styles_and_chinese_localizations(name_engine):
    r = await name_engine.client.get("/v1/catalog", headers=name_engine.headers)
    cat = await r.json()
    (cmd,) = [c for p in cat["plugins"] for c in p["commands"] if c["name"] == "name"]
    assert cmd["modality"] == "text" and cmd["max_count"] == 25
    assert cmd["name_localizations"]["zh-CN"] == "起名"
    opts = {o["name"]: o for o in cmd["options"]}
    assert [c["value"] for c in opts["style"]["choices"]] == list(STYLES)
    assert all(c["name_localizations"]["zh-CN"] for c in opts["style"]["choices"])
    assert opts["count"]["max_value"] == 25 and opts["count"]["job_field"] == "count"
    assert {a["name"]: a["per_output"] for a in cmd["actions"]} == {"reroll": False, "variations": True}


async def test_twenty_five_labelled_names_the_same_alone_and_batched(name_engine):
    h = name_engine
    job = await run(h, {"command": "name", "options": {"style": "person-en"}, "seed": 42, "count": 25})
    arts = job["artifacts"]
    assert len(arts) == 25 and all(a["presentation"] == "inline_text" and a["text"] for a in arts)
    body = await (await h.client.get(arts[3]["url"], headers=h.headers)).text()
    assert body.startswith(arts[3]["text"]) and body.rstrip().endswith("[AI-generated]")
    assert len({a["text"] for a in arts}) >= 20
    one = await run(h, {"command": "name", "options": {"style": "person-en"}, "seed": 42, "count": 1})
    assert one["artifacts"][0]["text"] == arts[0]["text"]
    zh = await run(h, {"command": "name", "options": {"style": "person-zh", "starts_with": "王"}, "seed": 1, "count": 5})
    assert all(a["text"].startswith("王") for a in zh["artifacts"])
    gan = await run(h, {"command": "name", "options": {"style": "place", "model": "gan"}, "seed": 1, "count": 3})
    assert all(a["meta"]["model"] == "gan" and a["text"] for a in gan["artifacts"])
    assert job["artifacts"][0]["meta"]["model"] == "vae"


async def test_more_like_and_reroll(name_engine):
    h = name_engine
    parent = await run(h, {"command": "name", "options": {"style": "fantasy"}, "seed": 5, "count": 4})
    more = await run(h, {"command": "name", "parent": {"job": parent["id"], "action": "variations", "index": 2},
                         "count": 5})
    assert more["options"]["style"] == "fantasy" and len(more["artifacts"]) == 5
    again = await run(h, {"command": "name", "parent": {"job": parent["id"], "action": "variations", "index": 2},
                          "count": 5, "seed": more["seed"]})
    assert [a["text"] for a in again["artifacts"]] == [a["text"] for a in more["artifacts"]]
    reroll = await run(h, {"command": "name", "parent": {"job": parent["id"], "action": "reroll"}})
    assert reroll["count"] == 4 and reroll["seed"] != parent["seed"]


async def test_bad_input_is_named(name_engine):
    h = name_engine
    bad = await h.submit({"command": "name", "options": {"style": "elvish"}}, expect=422)
    assert bad["error"]["field"] == "options.style"
    bad = await h.submit({"command": "name", "options": {"style": "place"}, "count": 26}, expect=422)
    assert "count" in bad["error"]["field"]
    bad = await h.submit({"command": "name", "options": {"style": "place", "starts_with": "x" * 13}}, expect=422)
    assert bad["error"]["field"] == "options.starts_with"
    refused = await h.submit({"command": "name", "options": {"style": "project", "starts_with": "porn"}}, expect=422)
    assert refused["error"]["code"] == "prompt_refused" and "porn" not in refused["error"]["message"]


def test_aigc_generate_name_writes_25_labelled_files(tmp_path):
    out = subprocess.run([sys.executable, "-m", "aigc.cli", "generate", "name", "--style", "person-en", "--count", "25",
                          "--seed", "3", "-o", str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "AIGC_DATA_DIR": str(tmp_path / "d"), "PYTHONPATH": str(ROOT)}, timeout=300)
    assert out.returncode == 0, out.stderr
    files = sorted((tmp_path / "out").iterdir())
    assert len(files) == 25 and all(f.suffix == ".txt" for f in files)
    texts = [f.read_text(encoding="utf-8") for f in files]
    assert all(t.rstrip().endswith("[AI-generated]") and len(t.splitlines()[0]) >= 3 for t in texts)

"""Plugin generators in child processes: the built-in emoji generator runs outside the
engine process, gives the same pixels as in-process, survives its child being killed, and
a child that cannot load is reported with its reason."""
from __future__ import annotations

import dataclasses
import io
import os
import signal

import numpy as np
import pytest
from PIL import Image

from engine import sdk
from engine.generator_process import GeneratorProcess, GeneratorProcessError, can_isolate, isolate

REQ = {"command": "emoji", "options": {"prompt": "cat face", "model": "gan"}, "seed": 77, "count": 3}


def refuse(output, ctx):
    raise AssertionError("the engine process encoded an output the child should have")


async def pixels(h, job) -> list[np.ndarray]:
    out = []
    for art in job["artifacts"]:
        r = await h.client.get(art["url"], headers=h.headers)
        out.append(np.asarray(Image.open(io.BytesIO(await r.read()))))
    return out


async def test_emoji_generator_runs_in_its_own_process(engine_factory, tmp_path):
    child = await engine_factory(plugins_enabled=["emoji"], data_dir=tmp_path / "a")
    g = child.engine.registry.generators["emoji"]
    assert isinstance(g, GeneratorProcess) and g.pid not in (None, os.getpid())
    assert g.model_info()["name"] == "emoji-dcgan" and len(g.model_info()["sha256"]) == 64
    # the child encodes: the engine's own encoder is not needed (here it would fail)
    modalities = child.engine.registry.modalities
    modalities["image"] = dataclasses.replace(modalities["image"], encode=refuse)
    done = await child.wait_done((await child.submit(REQ))["id"])
    assert done["status"] == "done"
    r = await child.client.get(done["artifacts"][0]["url"], headers=child.headers)
    assert done["id"] in Image.open(io.BytesIO(await r.read())).info["AIGC"]

    local = await engine_factory(plugins_enabled=["emoji"], data_dir=tmp_path / "b", generator_processes=False)
    assert not isinstance(local.engine.registry.generators["emoji"], GeneratorProcess)
    same = await local.wait_done((await local.submit(REQ))["id"])
    a, b = await pixels(child, done), await pixels(local, same)
    assert len(a) == len(b) == 3
    for x, y in zip(a, b):
        assert np.array_equal(x, y), (f"{int((x != y).any(axis=-1).sum())} pixels differ, max |diff| "
                                      f"{int(np.abs(x.astype(int) - y.astype(int)).max())}; child meta "
                                      f"{done['artifacts']}, in-process meta {same['artifacts']}")


async def test_a_killed_child_is_started_again(emoji_engine):
    h = emoji_engine
    g = h.engine.registry.generators["emoji"]
    first = g.pid
    os.kill(first, signal.SIGKILL)
    g._proc.wait(10)
    done = await h.wait_done((await h.submit(REQ))["id"])
    assert done["status"] == "done"  # the batch failed once, its items were retried on a new child
    assert g.pid not in (None, first)


def test_a_child_that_cannot_load_explains_why():
    class Missing(sdk.Generator):
        name = "missing"

    with pytest.raises(GeneratorProcessError, match="ModuleNotFoundError"):
        isolate(Missing(), "no_such_plugin", "builtin", "cpu")
    with pytest.raises(GeneratorProcessError, match="cannot be imported in a child"):
        isolate(Missing(), "x", "in-process", "cpu")
    assert can_isolate("builtin") and can_isolate("entry_point:aigc-example-plugin")
    assert not can_isolate("in-process")


def test_thread_count_does_not_change_pixels():
    """What the child's thread switching (all cores, or all but one, with the engine's load)
    relies on: the emoji generator's pixels do not depend on torch's thread count."""
    import torch
    from plugins.emoji import plugin

    gen = plugin.generators[0]
    gen.load("cpu")
    items = [sdk.Item(command="emoji", options={"prompt": p, "variety": 0.7, "model": m}, seed=s, index=0)
             for s, (p, m) in enumerate([("red heart", "gan"), ("sun", "vae"), ("dog face", "gan")] * 3)]
    before = torch.get_num_threads()
    try:
        runs = []
        for n in (1, 2):
            torch.set_num_threads(n)
            with torch.inference_mode():
                runs.append([np.asarray(o.data) for o in gen.generate(items)])
    finally:
        torch.set_num_threads(before)
    for a, b in zip(*runs):
        assert np.array_equal(a, b)


async def test_a_stopped_generator_process_refuses_work_and_leaves_no_child(emoji_engine):
    g = emoji_engine.engine.registry.generators["emoji"]
    proc = g._proc
    g.close()
    assert proc.poll() is not None and g.pid is None
    with pytest.raises(GeneratorProcessError, match="stopped"):
        g.generate([sdk.Item(command="emoji", options={"prompt": "x"}, seed=1, index=0)])


def test_a_silent_child_is_killed_after_the_timeout():
    from plugins.emoji import plugin

    g = isolate(plugin.generators[0], "emoji", "builtin", "cpu", threads=1)
    try:
        first = g._proc
        item = sdk.Item(command="emoji", options={"prompt": "x", "variety": 0.7, "model": "gan"}, seed=1, index=0)
        os.kill(first.pid, signal.SIGSTOP)  # a child that never answers
        with pytest.raises(GeneratorProcessError, match="did not answer"):
            g.generate_encoded([item], [None], timeout_s=0.5)
        assert first.poll() is not None and g.pid is None
        assert len(g.generate_encoded([item], [None])) == 1  # a new child serves the next batch
    finally:
        g.close()


def test_restarts_are_rate_limited(monkeypatch):
    from plugins.emoji import plugin

    g = isolate(plugin.generators[0], "emoji", "builtin", "cpu", threads=1)
    monkeypatch.setattr(GeneratorProcess, "MAX_RESTARTS", 1)
    monkeypatch.setattr(GeneratorProcess, "BACKOFF_S", 60.0)  # past MAX_RESTARTS: a back-off, not a refusal
    try:
        item = sdk.Item(command="emoji", options={"prompt": "x", "variety": 0.7, "model": "gan"}, seed=1, index=0)
        def kill() -> None:
            os.kill(g._proc.pid, signal.SIGKILL)
            g._proc.wait()

        kill()
        with pytest.raises(GeneratorProcessError, match="died"):
            g.generate([item])
        assert len(g.generate([item])) == 1  # started again once
        kill()
        with pytest.raises(GeneratorProcessError, match="died"):
            g.generate([item])
        with pytest.raises(GeneratorProcessError, match="restarted 1 times in 60 s"):
            g.generate([item])  # no second restart inside the window
    finally:
        g.close()


async def test_warm_up_runs_in_the_child_and_records_nothing(engine_factory, tmp_path, caplog):
    import asyncio

    from engine.provenance import ProvenanceLedger

    h = await engine_factory(plugins_enabled=["emoji"], data_dir=tmp_path / "w", warmup=True)
    for _ in range(600):
        if h.engine.ready:
            break
        await asyncio.sleep(0.05)
    assert h.engine.ready
    with ProvenanceLedger(tmp_path / "w" / "provenance.sqlite3", readonly=True) as ledger:
        assert ledger.lookup_job("warmup") == []  # nothing was served, nothing is recorded
    assert "ledger write failed" not in caplog.text

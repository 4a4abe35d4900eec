"""Plugin discovery: built-ins, an installed third-party package (entry points) with a new
modality, and plugins that fail to import, declare or load."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine import sdk

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """A site directory holding the example package, installed by pip from its own
    pyproject, plus a broken distribution whose entry point fails to import."""
    site = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(ROOT / "examples" / "aigc-example-plugin")],
                   check=True, capture_output=True)
    (site / "broken_plugin.py").write_text("raise ImportError('needs libfoo')\n")
    dist = site / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[aigc.plugins]\nbroken = broken_plugin:plugin\n")
    return site


def aigc_plugins_json(site: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}"}
    out = subprocess.run([sys.executable, "-m", "aigc.cli", "plugins", "--json"], env=env,
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout)


def test_installed_package_adds_its_command_and_new_modality(plugin_site):
    cat = aigc_plugins_json(plugin_site)
    plugins = {p["name"]: p for p in cat["plugins"]}
    assert {"emoji", "swatch"} <= set(plugins)
    swatch = plugins["swatch"]
    assert swatch["source"] == "entry_point:aigc-example-swatch"
    assert swatch["commands"][0]["name"] == "swatch"
    assert swatch["modalities"] == [{"name": "swatch", "mime": "image/svg+xml", "extension": "svg",
                                     "presentation": "file", "description": "A five-colour palette as SVG"}]
    assert "swatch" in {m["name"] for m in cat["modalities"]}
    (broken,) = cat["failed"]
    assert broken["name"] == "broken" and broken["source"] == "entry_point:broken-plugin"
    assert "ImportError: needs libfoo" in broken["reason"]


async def test_engine_serves_the_installed_plugin_end_to_end(plugin_site, engine_factory, monkeypatch):
    monkeypatch.syspath_prepend(str(plugin_site))
    h = await engine_factory(plugins_enabled=["swatch"])
    done = await h.wait_done((await h.submit({"command": "swatch", "options": {"mood": "calm"},
                                              "seed": 3, "count": 2}))["id"])
    art = done["artifacts"][0]
    assert art["mime"] == "image/svg+xml" and art["presentation"] == "file"
    assert art["filename"].endswith(".svg") and art["text"].startswith("#")
    r = await h.client.get(art["url"], headers=h.headers)
    svg = await r.text()
    assert r.headers["Content-Type"].startswith("image/svg+xml") and "AI-generated" in svg
    assert f"<aigc:job xmlns:aigc=\"urn:aigc\">{done['id']}</aigc:job>" in svg


class _Boom(sdk.Generator):
    name = "boom"

    def load(self, device: str) -> None:
        raise RuntimeError("weights missing")

    def generate(self, items):  # pragma: no cover - never loaded
        return []


async def test_plugins_that_fail_are_reported_and_the_rest_served(engine_factory):
    from tests.engine.probe_plugin import make_probe_plugin

    good, _ = make_probe_plugin()
    fails_load = sdk.Plugin(name="boom", version="1", generators=[_Boom()], commands=[
        sdk.Command(name="boom", description="explodes", modality="image", generator="boom")])
    bad_name, _ = make_probe_plugin("probe2")
    bad_name.commands[0] = sdk.Command(name="Bad Name", description="x", modality="image",
                                       generator="probe2")
    bad_modality, _ = make_probe_plugin("probe3")
    bad_modality.commands[0] = sdk.Command(name="probe3", description="x", modality="hologram",
                                           generator="probe3")
    h = await engine_factory(extra_plugins=[good, fails_load, bad_name, bad_modality],
                             builtin_plugins=False)
    cat = await (await h.client.get("/v1/catalog", headers=h.headers)).json()
    assert [p["name"] for p in cat["plugins"]] == ["probe"]
    reasons = {f["name"]: f["reason"] for f in cat["failed"]}
    assert "could not load: RuntimeError: weights missing" in reasons["boom"]
    assert "name" in reasons["probe2"] and "lowercase" in reasons["probe2"]
    assert "unknown modality 'hologram'" in reasons["probe3"]
    done = await h.wait_done((await h.submit({"command": "probe", "options": {"text": "ok"}}))["id"])
    assert done["status"] == "done"
    r = await h.client.post("/v1/jobs", headers=h.headers, json={"command": "boom", "options": {}})
    assert r.status == 404


async def test_plugins_can_be_disabled_by_config(engine_factory):
    from tests.engine.probe_plugin import make_probe_plugin

    a, _ = make_probe_plugin("alpha")
    b, _ = make_probe_plugin("beta")
    h = await engine_factory(extra_plugins=[a, b], builtin_plugins=False, plugins_disabled="beta")
    cat = await (await h.client.get("/v1/catalog", headers=h.headers)).json()
    assert [p["name"] for p in cat["plugins"]] == ["alpha"]


def test_weights_load_from_safetensors_only(tmp_path):
    from engine.runtime import load_weights

    bad = tmp_path / "model.pt"
    bad.write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(ValueError, match="must be a .safetensors file"):
        load_weights(bad)
    import torch
    from safetensors.torch import save_file

    good = tmp_path / "model.safetensors"
    save_file({"w": torch.ones(2)}, str(good))
    assert load_weights(good)["w"].tolist() == [1.0, 1.0]


def test_plugins_import_only_the_sdk_from_the_engine():
    """Dependencies point one way: a plugin's only engine import is engine.sdk."""
    import ast

    offenders = []
    for path in [*(ROOT / "plugins").rglob("*.py"), *(ROOT / "examples").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if name.startswith("engine") and name not in ("engine", "engine.sdk"):
                    offenders.append(f"{path.relative_to(ROOT)}: {name}")
                if isinstance(node, ast.ImportFrom) and name == "engine" and any(
                        a.name != "sdk" for a in node.names):
                    offenders.append(f"{path.relative_to(ROOT)}: from engine import ...")
    assert offenders == []


# ---- one resolver: built-ins are entry points too (engine.discovery) ----------------------------

def _declared_builtins() -> dict[str, str]:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["entry-points"]["aigc.plugins"]


def test_every_builtin_plugin_is_a_declared_entry_point():
    import pkgutil

    import plugins
    from engine.discovery import discover

    folders = {m.name for m in pkgutil.iter_modules(plugins.__path__) if not m.name.startswith("_")}
    declared = _declared_builtins()
    assert set(declared) == folders and all(v == f"plugins.{k}" for k, v in declared.items())
    assert [(c.name, c.source) for c in discover() if c.source == "builtin"] == sorted(
        (name, "builtin") for name in folders)


class _FakeEntryPoint:
    def __init__(self, name: str, value: str, dist: str):
        self.name, self.value, self.group = name, value, "aigc.plugins"
        self.dist = type("Dist", (), {"name": dist})()

    def load(self):
        return f"loaded {self.value}"


def test_installed_metadata_gives_the_builtins_without_a_source_tree(monkeypatch):
    from engine import discovery

    installed = [_FakeEntryPoint("zeta", "plugins.zeta", "aigc_bot"), _FakeEntryPoint("alpha", "plugins.alpha", "aigc-bot"),
                 _FakeEntryPoint("swatch", "aigc_example_swatch:plugin", "aigc-example-swatch")]
    monkeypatch.setattr(discovery.importlib.metadata, "entry_points", lambda group: installed)
    monkeypatch.setattr(discovery, "_source_tree_entry_points", lambda: None)  # a wheel install
    got = [(c.name, c.source, c.load()) for c in discovery.discover()]
    assert got == [("alpha", "builtin", "loaded plugins.alpha"), ("zeta", "builtin", "loaded plugins.zeta"),
                   ("swatch", "entry_point:aigc-example-swatch", "loaded aigc_example_swatch:plugin")]


def test_the_running_source_tree_declares_the_builtins_over_stale_metadata(monkeypatch):
    from engine import discovery

    stale = [_FakeEntryPoint("retired", "plugins.retired", "aigc-bot")]  # an old editable install
    monkeypatch.setattr(discovery.importlib.metadata, "entry_points", lambda group: stale)
    assert [(c.name, c.source) for c in discovery.discover()] == [(n, "builtin") for n in sorted(_declared_builtins())]
    assert discovery.load_plugin("emoji", "builtin").name == "emoji"
    with pytest.raises(ModuleNotFoundError, match="no plugin 'retired'"):
        discovery.load_plugin("retired")


def aigc(site: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}"}
    return subprocess.run([sys.executable, "-m", "aigc.cli", *argv], env=env, capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def test_installed_package_adds_its_data_and_eval_tools_to_the_cli(plugin_site, tmp_path):
    listed = aigc(plugin_site, "data", "--help")
    assert listed.returncode == 0 and "swatch-moods" in listed.stdout and "emoji" in listed.stdout
    built = aigc(plugin_site, "data", "swatch-moods", str(tmp_path / "moods"))
    assert built.returncode == 0, built.stderr
    assert json.loads((tmp_path / "moods" / "moods.json").read_text())["calm"] == 0.55

    ev = aigc(plugin_site, "eval", "--plugin", "swatch", "--samples", "16", "--json")
    assert ev.returncode == 0, ev.stderr
    figures = json.loads(ev.stdout)
    assert figures["samples"] == 64 and 0 <= figures["hue_error"] < figures["hue_error_random"]
    bad = aigc(plugin_site, "eval", "--plugin=swatch", "--samples", "0")
    assert bad.returncode == 2 and "--samples must be between 1 and 10000" in bad.stderr
    # the built-in image evaluation keeps its own options
    assert "--model" in aigc(plugin_site, "eval", "--help").stdout
    unknown = aigc(plugin_site, "eval", "--plugin", "swatch", "--model", "gan")
    assert unknown.returncode == 2 and "--model" in unknown.stderr

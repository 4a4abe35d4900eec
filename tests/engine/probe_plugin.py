"""A real plugin for engine tests whose generator the test controls: it can be held at a gate
(so jobs pile up and batching/fairness/cancel become observable), records every batch, and
fails on a poisoned prompt."""
from __future__ import annotations

import threading

import numpy as np

from engine import sdk


class ProbeGenerator(sdk.Generator):
    def __init__(self, name: str = "probe", max_batch_size: int = 4) -> None:
        self.name = name
        self.max_batch_size = max_batch_size
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()  # set when a batch starts (so tests know it is busy)
        self.batches: list[list[tuple[str, int, str]]] = []
        self.loaded_on: str | None = None

    def load(self, device: str) -> None:
        self.loaded_on = device

    def model_info(self) -> dict[str, str]:
        return {"name": "probe-model", "version": "1", "sha256": "0" * 64}

    def generate(self, items: list[sdk.Item]) -> list[sdk.Output]:
        self.entered.set()
        self.gate.wait(timeout=30)
        self.batches.append([(str(i.options.get("text")), i.index, i.action) for i in items])
        out = []
        for item in items:
            if item.options.get("text") == "poison":
                raise ValueError("poisoned prompt")
            noise = item.noise((8, 8, 3))
            if item.action == "variations" and item.source:
                noise = sdk.normal((8, 8, 3), *item.source) + 0.1 * noise
            px = ((noise.clamp(-2, 2) + 2) / 4 * 255).round().to(dtype=__import__("torch").uint8)
            out.append(sdk.Output(data=np.ascontiguousarray(px.numpy())))
        return out


def make_probe_plugin(name: str = "probe", max_batch_size: int = 4) -> tuple[sdk.Plugin, ProbeGenerator]:
    gen = ProbeGenerator(name, max_batch_size)
    echo = sdk.Action(name="echo", label="Echo", options=[
        sdk.Option(name="to", type="string", required=True, max_length=20, description="target")])
    cmd = sdk.Command(
        name=name, description="Probe command for tests", modality="image", generator=name,
        max_count=4, actions=[sdk.REROLL, sdk.VARIATIONS, echo],
        name_localizations={"zh-CN": "探针"}, description_localizations={"zh-CN": "测试用命令"},
        options=[
            sdk.Option(name="text", type="string", required=True, max_length=20,
                       autocomplete="words", description="Any text"),
            sdk.Option(name="level", type="integer", min_value=1, max_value=5, default=3,
                       description="A level"),
            sdk.Option(name="style", type="string", default="plain", description="A style",
                       choices=[sdk.Choice(name="Plain", value="plain"),
                                sdk.Choice(name="Bold", value="bold")]),
            sdk.Option(name="count", type="integer", min_value=1, max_value=4, default=1,
                       job_field="count", description="How many"),
            sdk.Option(name="seed", type="integer", min_value=0, max_value=sdk.SEED_MAX,
                       job_field="seed", description="Seed"),
        ])
    words = [f"word{i:02d}" for i in range(40)]
    plugin = sdk.Plugin(name=name, version="1.0.0", commands=[cmd], generators=[gen],
                        autocomplete={"words": lambda value, opts: [w for w in words if w.startswith(value)]})
    return plugin, gen

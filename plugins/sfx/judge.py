"""The judge: a small spectrogram CNN classifier trained locally on one audio data set (as the
WaveGAN paper trained one on SC09), whose class probabilities give the Inception score and the
conditional accuracy and whose penultimate features give the Fréchet distance, diversity and
novelty (evaluation.py).

Input is the model's own 128x128 log spectrogram (spectro.to_spec), average-pooled to 64x64.
Training augments with random gain (-12..+3 dB) and a random circular time shift, so the
judge keys on what a sound is, not on its level or onset.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

from plugins.sfx.spectro import to_spec


class Judge(nn.Module):
    def __init__(self, classes: int, width: int = 16):
        super().__init__()
        c = [1, width, width * 2, width * 4, width * 8]
        layers: list[nn.Module] = [nn.AvgPool2d(2)]
        for cin, cout in zip(c[:-1], c[1:]):
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]
        self.body = nn.Sequential(*layers)
        self.features_dim = c[-1]
        self.head = nn.Linear(c[-1], classes)

    def features(self, spec: torch.Tensor) -> torch.Tensor:
        return self.body(spec).mean(dim=(2, 3))

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(spec))


def augment(audio: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    b = audio.shape[0]
    gain = 10 ** (-(torch.rand(b, 1, generator=g) * 15 - 3) / 20)
    shift = torch.randint(0, audio.shape[1], (b,), generator=g)
    idx = (torch.arange(audio.shape[1])[None, :] - shift[:, None]) % audio.shape[1]
    return (audio * gain).gather(1, idx).clamp(-1, 1)


def train_judge(data, minutes: float, steps: int, batch: int = 32, seed: int = 0) -> tuple[Judge, dict]:
    """A judge trained on ``data`` (dataset.AudioSet) for at most ``steps`` or ``minutes``."""
    from tqdm import tqdm

    from engine.sdk import derive_seed

    torch.manual_seed(seed)
    judge = Judge(len(data.classes))
    opt = torch.optim.AdamW(judge.parameters(), 2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps)
    start, step = time.monotonic(), 0
    judge.train()
    for step in tqdm(range(steps), desc="judge", unit="step"):
        if time.monotonic() - start > minutes * 60:
            break
        g = torch.Generator().manual_seed(derive_seed("sfx-judge", seed, step))
        idx = torch.randint(len(data.labels), (batch,), generator=g).sort().values.numpy()
        audio = augment(torch.from_numpy(data.floats(idx)), g)
        loss = nn.functional.cross_entropy(judge(to_spec(audio)), torch.from_numpy(data.labels[idx]),
                                           label_smoothing=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return judge.eval(), {"steps": step + 1, "batch": batch, "seed": seed,
                          "seconds": round(time.monotonic() - start)}


@torch.no_grad()
def judge_outputs(judge: Judge, audio: torch.Tensor, batch: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """(probabilities (N, K), features (N, F)) for (N, SAMPLES) audio."""
    probs, feats = [], []
    for s in range(0, len(audio), batch):
        f = judge.features(to_spec(audio[s:s + batch]))
        feats.append(f)
        probs.append(judge.head(f).softmax(1))
    return torch.cat(probs).double(), torch.cat(feats).double()


def save_judge(judge: Judge, stem: str | Path, meta: dict) -> None:
    from plugins.sfx import checkpoint as ck

    ck.save(stem, {k: v.contiguous() for k, v in judge.state_dict().items()},
            {"classes": meta["classes"], "width": 16, **meta})


def load_judge(stem: str | Path) -> tuple[Judge, dict]:
    from plugins.sfx import checkpoint as ck

    tensors, meta = ck.load(stem)
    judge = Judge(len(meta["classes"]), meta.get("width", 16))
    judge.load_state_dict(tensors)
    return judge.eval(), meta

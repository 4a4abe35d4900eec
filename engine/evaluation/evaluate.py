"""Evaluate a plugin's image model against its data set, in the judge's feature space.

All FDs are measured against the training split with as many images as the held-out split
has, so the floor (held-out real), the blur references and the model are comparable.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine import sdk
from engine.discovery import load_plugin
from engine.evaluation.judge import (balanced_accuracy, is_held_out, judge_outputs, load_judge,
                                     save_judge, train_judge)
from engine.evaluation.metrics import frechet_distance, gaussian_blur, nearest_rmse, precision_recall
from engine.training.data import ImageSet
from engine.validation import validate_option_values


@dataclass
class Split:
    train: torch.Tensor  # uint8 (N, C, H, W)
    held_out: torch.Tensor
    train_labels: torch.Tensor
    held_out_labels: torch.Tensor
    classes: list[str]
    train_captions: list[str]


def split(data: ImageSet) -> Split:
    if not data.categories:
        raise ValueError("the data set has no categories (captions.jsonl 'category'); the judge needs them")
    classes = sorted(set(data.categories))
    labels = torch.tensor([classes.index(c) for c in data.categories])
    ho = torch.tensor([is_held_out(f) for f in data.files])
    return Split(train=data.images[~ho], held_out=data.images[ho], train_labels=labels[~ho],
                 held_out_labels=labels[ho], classes=classes,
                 train_captions=[c for c, h in zip(data.captions, ho.tolist()) if not h])


def labels_sha256(s: Split) -> str:
    """What the judge learnt from: the category of every training image, in order. The same
    class names and count are not enough: relabelling images (a category rule fixed) keeps
    both and still changes what the judge's classes mean."""
    labels = [s.classes[i] for i in s.train_labels.tolist()]
    return hashlib.sha256(json.dumps(labels).encode()).hexdigest()


def get_judge(s: Split, stem: Path, log: Any, epochs: int = 10) -> Any:
    fingerprint = labels_sha256(s)
    if stem.with_suffix(".json").exists():
        judge, meta = load_judge(stem)
        if (meta["classes"] == s.classes and meta["identities"] == s.train.shape[0]
                and meta.get("labels_sha256", fingerprint) == fingerprint):  # older judges: no hash kept
            return judge
        log(f"judge at {stem} was trained on another data set or other categories; training a new one")
    t0 = time.perf_counter()
    judge = train_judge(s.train, s.train_labels, s.classes, epochs=epochs, log=log)
    save_judge(judge, stem, {"recipe": f"engine.evaluation.judge.train_judge(epochs={epochs}, batch=64, seed=0, "
                                       "lr=2e-3) on the training split",
                             "train_wall_s": round(time.perf_counter() - t0, 1), "labels_sha256": fingerprint})
    return judge


def generate_images(generator: sdk.Generator, command: str, prompts: list[str], options: dict[str, Any],
                    seed: int = 0) -> torch.Tensor:
    """Samples through the serving path (exactly what users get), as uint8 (N, 4, 64, 64).
    ``options``: the command's options for every sample (all but the prompt), as validated."""
    items = [sdk.Item(command=command, options={**options, "prompt": p}, seed=seed, index=i)
             for i, p in enumerate(prompts)]
    out = []
    for i in range(0, len(items), generator.max_batch_size):
        out += [np.asarray(o.data.convert("RGBA")) for o in generator.generate(items[i:i + generator.max_batch_size])]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


def served_options(plugin: str, model: str, variety: float | None = None,
                   options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
    """The plugin, and the options every sample gets (all but the prompt): checked and
    completed with the command's defaults as the engine does for a request. Raises
    FieldError naming the field; cheap, so callers check before any compute."""
    p = load_plugin(plugin)
    asked = {"prompt": "check", "model": model, **({} if variety is None else {"variety": variety}), **(options or {})}
    served = validate_option_values([o for o in p.commands[0].options if not o.job_field], asked)
    served.pop("prompt")
    return p, served


def evaluate(plugin: str, model: str, data: ImageSet, judge_stem: Path, samples: int = 2000,
             variety: float | None = None, seed: int = 0, log: Any = None, judge_epochs: int = 10,
             weights: Path | None = None, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """``variety``: None, the command's default (what a user gets without the option); 1.0,
    no truncation. ``weights``: a folder with the model files to use instead of the plugin's
    own (the plugin's generator class must take it as its only argument); ``options``: more
    command options for every sample. Options left out take the command's defaults."""
    log = log or (lambda m: print(m, file=sys.stderr))
    p, served = served_options(plugin, model, variety, options)
    command = p.commands[0]
    torch.manual_seed(seed)
    s = split(data)
    judge = get_judge(s, judge_stem, log, judge_epochs)
    k = len(s.classes)
    f_train, _ = judge_outputs(judge, s.train)
    f_ho, pred_ho = judge_outputs(judge, s.held_out)
    n_ref = s.held_out.shape[0]
    g = torch.Generator().manual_seed(seed)
    ref = f_train[torch.randperm(f_train.shape[0], generator=g)[:n_ref]]
    held = s.held_out.float() / 255.0
    f_blur1, _ = judge_outputs(judge, gaussian_blur(held, 1.0))
    f_blur2, _ = judge_outputs(judge, gaussian_blur(held, 2.0))

    gen = next(x for x in p.generators if x.name == command.generator)
    if weights is not None:
        gen = type(gen)(Path(weights))
    gen.load("cpu")
    # unconditional quality: prompts drawn like the training captions
    cap_idx = torch.randint(len(s.train_captions), (samples,), generator=g).tolist()
    fake = generate_images(gen, command.name, [s.train_captions[i] for i in cap_idx], served, seed)
    f_fake, _ = judge_outputs(judge, fake)
    precision, recall = precision_recall(f_train, f_fake, k=3)
    # calibration: k-NN precision is outlier-sensitive (a few isolated real images have huge
    # balls); what held-out real images and uniform noise score puts the figure in context
    f_noise, _ = judge_outputs(judge, torch.rand(256, s.train.shape[1], s.train.shape[2], s.train.shape[3],
                                                 generator=g))
    precision_heldout = precision_recall(f_train, f_ho, k=3)[0]
    precision_noise = precision_recall(f_train, f_noise, k=3)[0]
    # conditioning: equal numbers of samples per category prompt
    per = max(1, samples // (2 * k))
    cond_prompts = [c for c in s.classes for _ in range(per)]
    cond = generate_images(gen, command.name, cond_prompts, served, seed + 1)
    _, pred_cond = judge_outputs(judge, cond)
    target = torch.tensor([s.classes.index(c) for c in cond_prompts])
    # novelty: a sample is a near-copy when it is closer to a training image than a real
    # image is to its own sigma=1 blur (the median of that distance over held-out images)
    copy_threshold = float(((gaussian_blur(held, 1.0) - held).flatten(1).pow(2).mean(1).sqrt()).median())
    novelty = float((nearest_rmse(fake.float() / 255.0, s.train.float() / 255.0) > copy_threshold).double().mean())
    return {
        "plugin": plugin, "model": model, "samples": samples, "variety": served.get("variety"), "options": served,
        "classes": s.classes,
        "fd_floor": frechet_distance(f_ho, ref),
        "fd_blur1": frechet_distance(f_blur1, ref),
        "fd_blur2": frechet_distance(f_blur2, ref),
        "fd_model": frechet_distance(f_fake[:n_ref], ref),
        "precision": precision, "recall": recall,
        "precision_heldout_real": precision_heldout, "precision_uniform_noise": precision_noise,
        "cond_acc_balanced": balanced_accuracy(pred_cond, target, k),
        "chance": 1.0 / k,
        "judge_balanced_acc": balanced_accuracy(pred_ho, s.held_out_labels, k),
        "novelty": novelty,
    }

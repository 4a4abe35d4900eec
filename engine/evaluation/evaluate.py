"""Evaluate a plugin's image model against its data set, in the judge's feature space.

All FDs are measured against the training split with as many images as the held-out split
has, so the floor (held-out real), the blur references and the model are comparable. Every
figure is computed the same way for the model and for references whose answer is known
(held-out real images, blurred ones, uniform noise, pixel-shuffled real images): a figure
that does not rank those correctly measures nothing (tests/evaluation/test_sanity_gates.py).
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from engine import sdk
from engine.discovery import load_plugin
from engine.evaluation.judge import (DAMAGE, Judge, balanced_accuracy, is_held_out, judge_probabilities, load_judge,
                                     reference_rows, save_judge, train_judge)
from engine.evaluation.metrics import (chimera, covered, frechet_distance, gaussian_blur, kth_radius, mean_pairwise_distance,
                                       nearest_rmse, pixel_shuffle)
from engine.training.data import ImageSet
from engine.validation import validate_option_values

RECOGNISABLE_P = 0.8  # a sample is recognisable when the judge gives its category at least this

# (prompts, their categories as class ids, seed) -> uint8 images (N, C, H, W)
Sampler = Callable[[list[str], list[int], int], torch.Tensor]


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


def get_judge(s: Split, stem: Path, log: Any, epochs: int = 12) -> Judge:
    fingerprint = labels_sha256(s)
    if stem.with_suffix(".json").exists():
        judge, meta = load_judge(stem)
        if (meta["classes"] == s.classes and meta.get("train_images") == s.train.shape[0]
                and meta.get("labels_sha256") == fingerprint and meta.get("normalise") and meta.get("visible_only")
                and meta.get("damage") == DAMAGE):
            return judge
        log(f"judge at {stem} was trained on another data set or other categories, or is an older kind; "
            "training a new one")
    t0 = time.perf_counter()
    judge = train_judge(s.train, s.train_labels, s.classes, epochs=epochs, log=log, held_out=s.held_out)
    save_judge(judge, stem, {"recipe": f"engine.evaluation.judge.train_judge(epochs={epochs}, batch=64, seed=0, "
                                       f"lr=2e-3, damage={DAMAGE}) on the training split; "
                                       "k chosen on the held-out split",
                             "train_wall_s": round(time.perf_counter() - t0, 1), "labels_sha256": fingerprint,
                             "train_images": s.train.shape[0], "visible_only": True, "damage": DAMAGE})
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


@dataclass
class Reference:
    """The real side, in judge features: the training split (k-NN balls), a held-out-sized
    sample of it (FD), and each category's spread (diversity)."""
    judge: Judge
    split: Split
    k: int
    train: torch.Tensor
    radii: torch.Tensor
    fd_ref: torch.Tensor
    spread: list[float]  # mean pairwise distance of each category's training images

    @classmethod
    def build(cls, judge: Judge, s: Split, seed: int = 0) -> "Reference":
        f_train, p_train = judge_probabilities(judge, s.train)
        keep = reference_rows(p_train)  # not the few real images the judge calls garbage (judge.py)
        f_train, labels = f_train[keep], s.train_labels[keep]
        g = torch.Generator().manual_seed(seed)
        fd_ref = f_train[torch.randperm(f_train.shape[0], generator=g)[:s.held_out.shape[0]]]
        spread = [mean_pairwise_distance(f_train[labels == c]) for c in range(len(s.classes))]
        return cls(judge, s, judge.cfg.k, f_train, kth_radius(f_train, judge.cfg.k), fd_ref, spread)

    def unconditional(self, images: torch.Tensor) -> dict[str, float]:
        """FD (on the first held-out-sized rows), precision and recall of a set of images."""
        f, _ = judge_probabilities(self.judge, images)
        precision = covered(f, self.train, self.radii).double().mean().item()
        recall = covered(self.train, f, kth_radius(f, self.k)).double().mean().item()
        return {"fd": frechet_distance(f[:self.fd_ref.shape[0]], self.fd_ref), "precision": precision,
                "recall": recall}

    def conditional(self, images: torch.Tensor, target: torch.Tensor) -> dict[str, Any]:
        """Figures of images made for category prompts (target: their class ids):
        diversity_ratio per category (their mean pairwise distance over the category's real
        images'), its minimum, recognisable (share with p(category) >= RECOGNISABLE_P, per
        category and the mean over categories) and balanced conditioning accuracy."""
        f, p = judge_probabilities(self.judge, images)
        ratio, recog = {}, {}
        for c, name in enumerate(self.split.classes):
            rows = target == c
            if not rows.any():
                continue
            recog[name] = float((p[rows, c] >= RECOGNISABLE_P).double().mean())
            if rows.sum() >= 2 and self.spread[c] > 0:  # else there is no spread to compare
                ratio[name] = mean_pairwise_distance(f[rows]) / self.spread[c]
        return {"diversity_ratio": ratio, "diversity_ratio_min": min(ratio.values()),
                "recognisable": sum(recog.values()) / len(recog), "recognisable_by_category": recog,
                "cond_acc_balanced": balanced_accuracy(p.argmax(1), target, len(self.split.classes))}


def score_sampler(ref: Reference, sampler: Sampler, samples: int, seed: int = 0) -> dict[str, Any]:
    """A sampler's figures: unconditional ones on ``samples`` prompts drawn like the
    training captions, conditional ones on samples // (2 * classes) per category prompt."""
    s = ref.split
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(s.train_captions), (samples,), generator=g).tolist()
    images = sampler([s.train_captions[i] for i in idx], [int(s.train_labels[i]) for i in idx], seed)
    out: dict[str, Any] = {**ref.unconditional(images), "_images": images}
    per = max(2, samples // (2 * len(s.classes)))
    target = torch.arange(len(s.classes)).repeat_interleave(per)
    cond = sampler([s.classes[c] for c in target.tolist()], target.tolist(), seed + 1)
    return {**out, **ref.conditional(cond, target)}


# -- references whose answer is known (and the served model, as a sampler) ---------------------
def noise_sampler(shape: tuple[int, int, int]) -> Sampler:
    """Uniform noise, whatever the prompt."""
    def sample(prompts: list[str], classes: list[int], seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return (torch.rand(len(prompts), *shape, generator=g) * 255).round().to(torch.uint8)
    return sample


def real_sampler(pool: torch.Tensor, labels: torch.Tensor, transform: Callable[[torch.Tensor, torch.Generator],
                                                                              torch.Tensor] | None = None) -> Sampler:
    """Real images of each prompt's category (from ``pool``, e.g. the held-out split), through
    ``transform`` (float [0, 1] in and out), e.g. a blur or a pixel shuffle."""
    def sample(prompts: list[str], classes: list[int], seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        rows = []
        for c in classes:
            members = (labels == c).nonzero().flatten()
            rows.append(int(members[torch.randint(len(members), (1,), generator=g)]))
        x = pool[torch.tensor(rows, dtype=torch.long)]
        if transform is None:
            return x
        return (transform(x.float() / 255.0, g).clamp(0, 1) * 255).round().to(torch.uint8)
    return sample


def fixed_sampler(pool: torch.Tensor, labels: torch.Tensor) -> Sampler:
    """A generator collapsed to one picture per category: the first real image of each."""
    first = {int(c): pool[int((labels == c).nonzero()[0])] for c in labels.unique()}
    return lambda prompts, classes, seed: torch.stack([first[c] for c in classes])


def plugin_sampler(generator: sdk.Generator, command: str, options: dict[str, Any]) -> Sampler:
    """The served path, exactly what users get (the categories are not passed on)."""
    return lambda prompts, classes, seed: generate_images(generator, command, prompts, options, seed)


def reference_figures(ref: Reference, seed: int = 0) -> dict[str, dict[str, float]]:
    """What known-good and known-bad image sets score, beside the model: held-out real
    images (the floor), σ = 1, 2 and 3 px blurs of them (each still an emoji anyone names),
    chimeras of them (four real emoji's quadrants: real textures, no emoji), uniform noise
    and pixel-shuffled reals."""
    s = ref.split
    g = torch.Generator().manual_seed(seed + 7)
    held = s.held_out.float() / 255.0
    n = s.held_out.shape[0]
    to_u8 = lambda x: (x.clamp(0, 1) * 255).round().to(torch.uint8)  # noqa: E731
    sets = {"held_out": s.held_out, **{f"blur{r}": to_u8(gaussian_blur(held, float(r))) for r in (1, 2, 3)},
            "chimera": to_u8(chimera(held, g)),
            "uniform_noise": noise_sampler(tuple(s.train.shape[1:]))([""] * n, [0] * n, seed + 7),
            "pixel_shuffle": to_u8(pixel_shuffle(held, g))}
    out = {name: ref.unconditional(images) for name, images in sets.items()}
    out["held_out"].update(ref.conditional(s.held_out, s.held_out_labels))
    return out


def evaluate(plugin: str, model: str, data: ImageSet, judge_stem: Path, samples: int = 2000,
             variety: float | None = None, seed: int = 0, log: Any = None, judge_epochs: int = 12,
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
    ref = Reference.build(judge, s, seed)
    refs = reference_figures(ref, seed)
    gen = next(x for x in p.generators if x.name == command.generator)
    if weights is not None:
        gen = type(gen)(Path(weights))
    gen.load("cpu")
    got = score_sampler(ref, plugin_sampler(gen, command.name, served), samples, seed)
    fake = got.pop("_images")
    held = s.held_out.float() / 255.0
    # novelty: a sample is a near-copy when it is closer to a training image than a real
    # image is to its own sigma=1 blur (the median of that distance over held-out images)
    copy_threshold = float(((gaussian_blur(held, 1.0) - held).flatten(1).pow(2).mean(1).sqrt()).median())
    novelty = float((nearest_rmse(fake.float() / 255.0, s.train.float() / 255.0) > copy_threshold).double().mean())
    real = refs["held_out"]
    _, p_ho = judge_probabilities(judge, s.held_out)
    return {
        "plugin": plugin, "model": model, "samples": samples, "variety": served.get("variety"), "options": served,
        "classes": s.classes, "k": ref.k, "reference_images": ref.train.shape[0],
        "fd_floor": real["fd"], "fd_blur1": refs["blur1"]["fd"], "fd_blur2": refs["blur2"]["fd"],
        "fd_blur3": refs["blur3"]["fd"], "fd_chimera": refs["chimera"]["fd"], "fd_model": got["fd"],
        "fd_uniform_noise": refs["uniform_noise"]["fd"], "fd_pixel_shuffle": refs["pixel_shuffle"]["fd"],
        "precision": got["precision"], "recall": got["recall"],
        "precision_heldout_real": real["precision"], "recall_heldout_real": real["recall"],
        "precision_uniform_noise": refs["uniform_noise"]["precision"],
        "precision_pixel_shuffle": refs["pixel_shuffle"]["precision"],
        "precision_blur1": refs["blur1"]["precision"], "precision_blur2": refs["blur2"]["precision"],
        "precision_blur3": refs["blur3"]["precision"], "precision_chimera": refs["chimera"]["precision"],
        "diversity_ratio": got["diversity_ratio"], "diversity_ratio_min": got["diversity_ratio_min"],
        "diversity_ratio_real": real["diversity_ratio"], "diversity_ratio_real_min": real["diversity_ratio_min"],
        "recognisable": got["recognisable"], "recognisable_real": real["recognisable"],
        # per category, beside the real images': where the gap is, and where even real emoji are not
        # recognisable under keyword-rule labels (object, food); the held-out counts say how far
        # to trust each real figure (weather has a handful)
        "recognisable_by_category": got["recognisable_by_category"],
        "recognisable_real_by_category": real["recognisable_by_category"],
        "held_out_per_category": {c: int((s.held_out_labels == i).sum()) for i, c in enumerate(s.classes)},
        "cond_acc_balanced": got["cond_acc_balanced"],
        "chance": 1.0 / len(s.classes),
        "judge_balanced_acc": balanced_accuracy(p_ho.argmax(1), s.held_out_labels, len(s.classes)),
        "novelty": novelty,
    }

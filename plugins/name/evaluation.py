"""`aigc eval --plugin name`: the figures of MODEL_CARD.md, on names made the way users get them.

- ``nll``: the VAE's per-character NLL bound on the test split (nats over characters + EOS): the
  importance-weighted bound (IWAE, Burda et al. 2016, k samples from q(z|x)), an upper bound on
  the true NLL that is tighter than the ELBO; ``nll_elbo``: the negative ELBO; ``nll_ngram``: the best Witten-Bell character n-gram (orders 1-6, each per style,
  order chosen on the valid split) on the same names.
- ``novelty``: share of generated names not in the training set.
- ``validity``: share of generated names the local style classifier (the judge) gives the
  requested style with p ≥ 0.8; ``validity_real``: the same for held-out real names.
- ``fd_model``: Fréchet distance in the judge's features between generated and test names
  (same count per style); ``fd_floor``: between the valid and the test split (real vs real).
- ``diversity``: mean pairwise normalised edit distance within one batch of 25 (one style, one
  seed), averaged over batches; ``diversity_real``: the same for random batches of real names.
- ``checks``: the same figures for trivially bad "models" (random strings, one name repeated,
  copies of training names), which must fail the figure that catches them.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from engine import sdk
from plugins.name import checkpoint
from plugins.name.classifier import ClassifierConfig, StyleClassifier, train_classifier
from plugins.name.data import STYLES, Example
from plugins.name.metrics import diversity, frechet_distance, novelty
from plugins.name.ngram import CharNGram, per_char_nll

BATCH = 25
VALID_P = 0.8
HERE = Path(__file__).resolve().parent
JUDGE = HERE / "judge"

Sampler = Callable[[str, int], list[str]]  # (style, seed) -> a batch of BATCH names


@dataclass
class Splits:
    train: list[Example]
    valid: list[Example]
    test: list[Example]

    def names(self, split: str, style: str) -> list[str]:
        return [e.name for e in getattr(self, split) if e.style == style]


def load_judge(path: Path | str = JUDGE) -> StyleClassifier | None:
    path = Path(path)
    if not path.with_suffix(".safetensors").exists():
        return None
    model = StyleClassifier(ClassifierConfig(**checkpoint.read_meta(path)["config"]))
    checkpoint.load_into(path, model)
    return model.eval()


def fit_judge(splits: Splits, path: Path | str = JUDGE, steps: int = 2000) -> StyleClassifier:
    model = train_classifier(splits.train, steps=steps)
    real = [e.name for e in splits.test]
    labels = torch.tensor([STYLES.index(e.style) for e in splits.test])
    acc = float((model.probs(real).argmax(-1) == labels).double().mean())
    checkpoint.save(path, model, {"kind": "style-classifier", "config": model.cfg.to_dict(), "styles": list(STYLES),
                                  "steps": steps, "test_accuracy": round(acc, 4)})
    return model


def best_ngram(splits: Splits, vocab_size: int, orders: range = range(1, 7)) -> dict[str, Any]:
    """Per order: valid and test per-char NLL; the order with the best valid figure is the baseline."""
    figures: dict[int, dict[str, float]] = {}
    for k in orders:
        models = {s: CharNGram(k, splits.names("train", s), vocab_size) for s in STYLES}
        figures[k] = {"valid": per_char_nll(models, ((e.style, e.name) for e in splits.valid)),
                      "test": per_char_nll(models, ((e.style, e.name) for e in splits.test))}
    best = min(figures, key=lambda k: figures[k]["valid"])
    return {"order": best, "nll": figures[best]["test"],
            "by_order": {k: round(v["test"], 4) for k, v in figures.items()}}


def figures(sampler: Sampler, judge: StyleClassifier, splits: Splits, seeds: int) -> dict[str, Any]:
    """novelty, validity, fd_model, diversity (and per style) of a sampler's batches."""
    train_names = [e.name for e in splits.train]
    per_style: dict[str, dict[str, float]] = {}
    gen_feats, all_names, valid_hits, divs = [], [], 0, []
    for si, style in enumerate(STYLES):
        names: list[str] = []
        for seed in range(seeds):
            batch = sampler(style, seed)
            divs.append(diversity(batch))
            names += batch
        p = judge.probs(names)[:, si] if names else torch.zeros(0)
        hits = int((p >= VALID_P).sum())
        valid_hits += hits
        k = min(len(names), len(splits.names("test", style)), len(splits.names("valid", style)))
        gen_feats.append(judge.feats(names[:k]))
        all_names += names
        per_style[style] = {"novelty": round(novelty(names, train_names), 4),
                            "validity": round(hits / max(len(names), 1), 4),
                            "diversity": round(sum(divs[-seeds:]) / seeds, 4), "examples": names[:5]}
    real = _real_features(judge, splits, seeds * BATCH)
    return {"novelty": novelty(all_names, train_names), "validity": valid_hits / max(len(all_names), 1),
            "fd_model": frechet_distance(torch.cat(gen_feats), real["test"]),
            "diversity": sum(divs) / len(divs), "per_style": per_style}


def _real_features(judge: StyleClassifier, splits: Splits, n: int) -> dict[str, torch.Tensor]:
    out: dict[str, list[torch.Tensor]] = {"test": [], "valid": []}
    for style in STYLES:
        k = min(n, len(splits.names("test", style)), len(splits.names("valid", style)))
        for split in out:
            out[split].append(judge.feats(splits.names(split, style)[:k]))
    return {s: torch.cat(v) for s, v in out.items()}


def real_figures(judge: StyleClassifier, splits: Splits, seeds: int) -> dict[str, float]:
    real = _real_features(judge, splits, seeds * BATCH)
    hits = total = 0
    divs = []
    rng = random.Random(0)
    for si, style in enumerate(STYLES):
        names = splits.names("test", style)
        hits += int((judge.probs(names)[:, si] >= VALID_P).sum())
        total += len(names)
        divs += [diversity(rng.sample(names, BATCH)) for _ in range(seeds)]
    return {"validity_real": hits / total, "fd_floor": frechet_distance(real["valid"], real["test"]),
            "diversity_real": sum(divs) / len(divs)}


def trivial_samplers(splits: Splits) -> dict[str, Sampler]:
    """Models that must fail: random strings (the style's own characters, real lengths), a
    collapsed model (one name, every time) and a copier (training names)."""
    def random_strings(style: str, seed: int) -> list[str]:
        rng = random.Random(sdk.derive_seed("random", style, seed))
        names = splits.names("train", style)
        chars = sorted({c for n in names for c in n if not c.isspace()})
        return ["".join(rng.choice(chars) for _ in range(len(rng.choice(names)))) for _ in range(BATCH)]

    def collapsed(style: str, seed: int) -> list[str]:
        return [splits.names("train", style)[0]] * BATCH

    def copies(style: str, seed: int) -> list[str]:
        return random.Random(sdk.derive_seed("copies", style, seed)).sample(splits.names("train", style), BATCH)

    return {"random": random_strings, "collapsed": collapsed, "copies": copies}


def generator_sampler(generator: sdk.Generator, options: dict[str, Any] | None = None) -> Sampler:
    """Batches exactly as `/name style:S count:25 seed:N` returns them (defaults otherwise)."""
    def run(style: str, seed: int) -> list[str]:
        items = [sdk.Item(command="name", options={"style": style, **(options or {})}, seed=seed, index=i)
                 for i in range(BATCH)]
        return [str(o.data) for o in generator.generate(items)]
    return run

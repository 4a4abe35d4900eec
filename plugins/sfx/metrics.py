"""The figures of `aigc eval --plugin sfx`, from a judge's class probabilities and features.

* Inception score exp(E_x KL(p(y|x) || p(y))) (Salimans et al. 2016; the WaveGAN paper's
  figure for SC09), for generated and for held-out real clips.
* Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017): the
  engine's, through ``engine.sdk.frechet_distance``.
* Balanced conditional accuracy: per requested class, how often the judge hears that class
  (``cond_accuracy_per_class``); the mean over classes.
* Diversity: mean pairwise feature distance within a class, averaged over classes; per class,
  and the mean of per-class ratios to the real clips' capped at 1 (``capped_ratio``).
* Novelty: mean distance from each clip to its nearest training clip (features).
"""
from __future__ import annotations

import torch

from engine.sdk import frechet_distance  # the engine's FD, one implementation for every evaluation


def inception_score(probs: torch.Tensor, eps: float = 1e-12) -> float:
    p = probs.double()
    marginal = p.mean(0, keepdim=True)
    kl = (p * ((p + eps).log() - (marginal + eps).log())).sum(1)
    return float(kl.mean().exp())


def cond_accuracy_per_class(probs: torch.Tensor, wanted: torch.Tensor, classes: int) -> dict[int, float]:
    """Per requested class (with at least one clip): how often the judge hears that class."""
    hit = (probs.argmax(1) == wanted).double()
    return {c: float(hit[wanted == c].mean()) for c in range(classes) if bool((wanted == c).any())}


def cond_accuracy_balanced(probs: torch.Tensor, wanted: torch.Tensor, classes: int) -> float:
    return average(cond_accuracy_per_class(probs, wanted, classes))


def diversity_per_class(features: torch.Tensor, labels: torch.Tensor) -> dict[int, float]:
    """Per class (with at least two clips): the mean pairwise L2 distance between its clips."""
    per = {}
    for c in labels.unique():
        f = features[labels == c].double()
        if len(f) >= 2:
            per[int(c)] = float(torch.cdist(f, f).sum() / (len(f) * (len(f) - 1)))
    return per


def average(per_class: dict[int, float]) -> float:
    """The mean over classes of a per-class figure (0 for none)."""
    return sum(per_class.values()) / max(1, len(per_class))


def diversity(features: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean pairwise L2 distance between clips of the same class, averaged over classes."""
    return average(diversity_per_class(features, labels))


def capped_ratio(generated: dict[int, float], real: dict[int, float]) -> float:
    """The mean over classes of min(1, generated / real): a class more varied than the real one
    (a kind that came apart into noise) cannot make up for a collapsed one, as it does in the
    ratio of the averages."""
    ratios = [min(1.0, generated[c] / real[c]) for c in generated if real.get(c)]
    return sum(ratios) / max(1, len(ratios))


def nearest_distance(features: torch.Tensor, reference: torch.Tensor, batch: int = 512) -> float:
    """Mean distance from each row of ``features`` to its nearest row of ``reference``."""
    out = [torch.cdist(features[s:s + batch].double(), reference.double()).min(1).values
           for s in range(0, len(features), batch)]
    return float(torch.cat(out).mean())

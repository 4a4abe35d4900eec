"""The name figures are honest: trivially bad outputs fail the figure that should catch them,
judged by the committed style classifier; the n-gram baseline is a proper distribution."""
from __future__ import annotations

import pytest
import torch

from plugins.name import evaluation as ev
from plugins.name.data import STYLES, build
from plugins.name.metrics import diversity, edit_distance, frechet_distance, novelty
from plugins.name.ngram import EOS, CharNGram


@pytest.fixture(scope="module")
def splits():
    ex = build(person_pairs=4000)
    return ev.Splits(*[[e for e in ex if e.split == s] for s in ("train", "valid", "test")])


@pytest.fixture(scope="module")
def judge():
    torch.set_num_threads(1)
    j = ev.load_judge()
    assert j is not None, "plugins/name/judge.safetensors is committed"
    return j


def test_metric_helpers():
    assert edit_distance("kitten", "sitting") == 3 and edit_distance("", "abc") == 3
    assert diversity(["Ada"] * 5) == 0.0 and diversity(["abc", "xyz"]) == 1.0
    assert novelty(["Ada", "ada", "Bob"], ["ADA"]) == pytest.approx(1 / 3)
    x = torch.randn(400, 4, generator=torch.Generator().manual_seed(0))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(x, x + 3.0) == pytest.approx(36.0, rel=1e-6)


def test_ngram_is_a_distribution_and_context_helps(splits):
    names = splits.names("train", "place")
    vocab = sorted({c for n in names for c in n})
    m3 = CharNGram(3, names, len(vocab))
    total = sum(m3.prob("\x02Bo", c) for c in vocab) + m3.prob("\x02Bo", EOS)
    assert total == pytest.approx(1.0, abs=1e-9)
    held = [("place", n) for n in splits.names("test", "place")]
    from plugins.name.ngram import per_char_nll
    m1 = CharNGram(1, names, len(vocab))
    assert per_char_nll({"place": m3}, held) < per_char_nll({"place": m1}, held)


def test_trivially_bad_outputs_fail_the_right_figures(splits, judge):
    seeds = 2
    real = ev.real_figures(judge, splits, seeds)
    assert real["validity_real"] > 0.85
    bad = {name: ev.figures(s, judge, splits, seeds) for name, s in ev.trivial_samplers(splits).items()}
    # random strings: novel and diverse, but not of the style and far from real names
    assert bad["random"]["novelty"] > 0.95 and bad["random"]["validity"] < 0.7 * real["validity_real"]
    assert bad["random"]["fd_model"] > 10 * real["fd_floor"]
    # one name over and over: no novelty (a training name), no diversity, far in FD
    assert bad["collapsed"]["diversity"] == 0.0 and bad["collapsed"]["novelty"] == 0.0
    assert bad["collapsed"]["fd_model"] > 10 * real["fd_floor"]
    # copies of training names look perfect except for novelty
    assert bad["copies"]["novelty"] == 0.0 and bad["copies"]["validity"] > 0.85
    assert set(bad["copies"]["per_style"]) == set(STYLES)

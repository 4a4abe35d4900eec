"""The evaluation's metrics on cases with known answers, and `aigc eval --plugin sfx` end to end
on a small set (real data, a briefly trained judge and generator)."""
from __future__ import annotations

import json

import pytest
import torch

from plugins.sfx import metrics


def test_inception_score_bounds():
    k = 10
    confident_spread = torch.eye(k).repeat(5, 1)  # sure of each class, all classes equally often
    assert metrics.inception_score(confident_spread) == pytest.approx(k, rel=1e-6)
    assert metrics.inception_score(torch.full((50, k), 1 / k)) == pytest.approx(1.0)
    collapsed = torch.eye(k)[[3] * 50]  # one class only: no better than unsure
    assert metrics.inception_score(collapsed) == pytest.approx(1.0)


def test_frechet_distance_known_values():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4000, 8, generator=g)
    b = torch.randn(4000, 8, generator=g)
    assert metrics.frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    assert metrics.frechet_distance(a, b) < 0.05
    assert metrics.frechet_distance(a, b + 2) == pytest.approx(4 * 8, rel=0.02)  # |mu|^2
    assert metrics.frechet_distance(a, b * 3) == pytest.approx(8 * (1 + 9 - 2 * 3), rel=0.05)
    assert metrics.frechet_distance(a, b + 2) == pytest.approx(metrics.frechet_distance(b + 2, a), rel=1e-6)


def test_accuracy_diversity_and_novelty():
    probs = torch.eye(3)[[0, 0, 1, 2, 2, 2]]
    wanted = torch.tensor([0, 1, 1, 2, 2, 0])
    # per class: 0 -> 1/2, 1 -> 1/2, 2 -> 2/2
    assert metrics.cond_accuracy_balanced(probs, wanted, 3) == pytest.approx((0.5 + 0.5 + 1) / 3)
    assert metrics.cond_accuracy_per_class(probs, wanted, 3) == pytest.approx({0: 0.5, 1: 0.5, 2: 1.0})
    assert metrics.cond_accuracy_per_class(probs[:2], wanted[:2], 3) == pytest.approx({0: 1.0, 1: 0.0})  # no 2
    f = torch.tensor([[0.0, 0], [3, 4], [1, 1], [1, 1]])
    assert metrics.diversity(f, torch.tensor([0, 0, 1, 1])) == pytest.approx((5 + 0) / 2)
    assert metrics.diversity_per_class(f, torch.tensor([0, 0, 1, 1])) == pytest.approx({0: 5.0, 1: 0.0})
    # one kind twice as varied as real and one collapsed: the ratio of averages says 1, capped says 1/2
    real, gen = {0: 2.0, 1: 2.0}, {0: 4.0, 1: 0.0}
    assert sum(gen.values()) / sum(real.values()) == 1.0
    assert metrics.capped_ratio(gen, real) == pytest.approx(0.5)
    assert metrics.capped_ratio({0: 1.0, 1: 3.0}, {0: 2.0, 1: 0.0}) == pytest.approx(0.5)  # no real spread: skipped
    assert metrics.nearest_distance(torch.tensor([[0.0, 1]]), torch.tensor([[0.0, 0], [5, 5]])) == 1.0


def test_eval_cli_end_to_end_on_a_small_set(tmp_path, capsys):
    from aigc.cli import main
    from plugins.sfx import dataset
    from plugins.sfx.judge import save_judge, train_judge
    from plugins.sfx.model import Config
    from plugins.sfx.train_tool import Trainer

    def aigc(*argv):
        try:
            return int(main(list(argv)) or 0)
        except SystemExit as e:
            return int(e.code or 0)

    data_dir = tmp_path / "set"
    assert aigc("data", "sfx", str(data_dir), "--per-class", "4", "--test-per-class", "2") == 0
    capsys.readouterr()
    data = dataset.load(data_dir)
    judge, info = train_judge(data, minutes=1, steps=3, batch=8)
    save_judge(judge, tmp_path / "judge", {"classes": list(data.classes), **info})
    trainer = Trainer(data, tmp_path / "run", batch=4,
                      config=Config(classes=10, nz=8, embed=4, g_channels=(16, 8, 8, 8, 4), d_channels=(4, 8, 8, 8, 16)))
    trainer.train(steps=1)
    trainer.export(tmp_path / "gan")
    assert aigc("eval", "--plugin", "sfx", "--dataset", "sfx", "--data", str(data_dir), "--model", str(tmp_path / "gan"),
                "--judge", str(tmp_path / "judge"), "--per-class", "2", "--json") == 0
    got = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("inception_score", "inception_score_real", "cond_acc_balanced", "chance", "fd_model", "fd_floor",
                "fd_reference", "diversity_ratio", "novelty"):
        assert key in got, key
    assert got["chance"] == 0.1 and 1 <= got["inception_score"] <= 10 and got["samples"] == 20
    assert set(got["fd_reference"]) == set(got["inception_score_reference"]) == {"lowpass_2khz", "noise_20db", "griffin_lim"}
    assert set(got["sanity"]) == {"noise", "collapsed"} and got["sanity"]["collapsed"]["diversity"] == 0
    assert got["sanity"]["collapsed"]["diversity_ratio_capped"] == 0
    assert set(got["diversity_ratio_per_class"]) <= set(got["classes"])
    assert 0 <= got["diversity_ratio_capped"] <= 1
    # per kind accuracy: one entry per kind asked for, their mean the balanced figure
    assert set(got["cond_acc_per_class"]) == set(got["kinds"])
    per_acc = got["cond_acc_per_class"].values()
    assert sum(per_acc) / len(per_acc) == pytest.approx(got["cond_acc_balanced"], abs=2e-3)
    assert "cond_acc_per_class" not in got["sanity"]["noise"]
    # the wrong set, or none, is refused with the rule
    assert aigc("eval", "--plugin", "sfx", "--dataset", "digits", "--data", str(data_dir), "--judge",
                str(tmp_path / "judge")) == 2
    assert "holds the 'sfx' set, not 'digits'" in capsys.readouterr().err
    assert aigc("eval", "--plugin", "sfx", "--dataset", "sfx") == 2
    assert "--data is required" in capsys.readouterr().err


def test_eval_measures_a_joined_generator_on_each_of_its_sets(tmp_path, capsys):
    from aigc.cli import main
    from plugins.sfx import dataset
    from plugins.sfx.judge import save_judge, train_judge
    from plugins.sfx.model import Config
    from plugins.sfx.train_tool import Trainer

    def aigc(*argv):
        try:
            return int(main(list(argv)) or 0)
        except SystemExit as e:
            return int(e.code or 0)

    sets = {}
    for name, per in (("sfx", "2"), ("digits", "1")):  # two held-out clips: real diversity needs pairs
        sets[name] = tmp_path / name
        assert aigc("data", name, str(sets[name]), "--per-class", per, "--test-per-class", "2") == 0
        data = dataset.load(sets[name])
        judge, info = train_judge(data, minutes=1, steps=2, batch=8)
        save_judge(judge, tmp_path / f"judge_{name}", {"classes": list(data.classes), **info})
    both = dataset.join([dataset.load(sets["sfx"]), dataset.load(sets["digits"])])
    trainer = Trainer(both, tmp_path / "run", batch=4, ms_weight=0.05,
                      config=Config(classes=20, nz=8, embed=4, g_channels=(16, 8, 8, 8, 4), d_channels=(4, 8, 8, 8, 16)))
    trainer.train(steps=1)
    trainer.export(tmp_path / "gan")
    capsys.readouterr()
    for name in ("sfx", "digits"):
        assert aigc("eval", "--plugin", "sfx", "--dataset", name, "--data", str(sets[name]), "--model",
                    str(tmp_path / "gan"), "--judge", str(tmp_path / f"judge_{name}"), "--per-class", "2",
                    "--json") == 0
        got = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert got["samples"] == 20 and got["chance"] == 0.1 and "inception_score" in got
        assert got["kinds"][7] == ("digit-seven" if name == "digits" else "siren")
    # a generator without the set's classes is refused, naming them
    only_sfx = Trainer(dataset.load(sets["sfx"]), tmp_path / "run10", batch=4,
                       config=Config(classes=10, nz=8, embed=4, g_channels=(16, 8, 8, 8, 4), d_channels=(4, 8, 8, 8, 16)))
    only_sfx.export(tmp_path / "gan10")
    assert aigc("eval", "--plugin", "sfx", "--dataset", "digits", "--data", str(sets["digits"]), "--model",
                str(tmp_path / "gan10"), "--judge", str(tmp_path / "judge_digits")) == 2
    assert "not on this set's classes" in capsys.readouterr().err

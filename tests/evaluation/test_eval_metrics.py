"""FD, precision/recall, blur, the judge, and `aigc eval` end to end on a tiny emoji set."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.evaluation.judge import balanced_accuracy, load_judge, save_judge, train_judge
from engine.evaluation.metrics import frechet_distance, gaussian_blur, nearest_rmse, precision_recall


def _reference_fd(a: np.ndarray, b: np.ndarray) -> float:
    """An independent FD: Tr sqrt(S_a S_b) from the eigenvalues of the (non-symmetric) product."""
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    eig = np.linalg.eigvals(s_a @ s_b)
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s_a + s_b) - 2 * np.sqrt(eig.real.clip(0)).sum())


def test_frechet_distance_against_an_independent_formula():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(500, 6, generator=g, dtype=torch.float64)
    b = torch.randn(400, 6, generator=g, dtype=torch.float64) @ torch.rand(6, 6, generator=g, dtype=torch.float64) + 0.5
    assert frechet_distance(a, b) == pytest.approx(_reference_fd(a.numpy(), b.numpy()), rel=1e-6)
    assert abs(frechet_distance(a, a)) < 1e-8
    assert frechet_distance(a, a + 2.0) == pytest.approx(6 * 4.0, rel=1e-9)  # only the means differ


def test_precision_recall_extremes():
    g = torch.Generator().manual_seed(1)
    real = torch.randn(300, 4, generator=g)
    assert precision_recall(real, real.clone()) == (1.0, 1.0)
    far = torch.randn(300, 4, generator=g) + 100
    assert precision_recall(real, far) == (0.0, 0.0)
    collapsed = real[:1] + 1e-3 * torch.randn(50, 4, generator=g)  # mode collapse onto one real
    p, r = precision_recall(real, collapsed)
    assert p == 1.0 and r < 0.05


def test_blur_and_nearest():
    x = torch.full((1, 4, 16, 16), 0.3)
    assert torch.allclose(gaussian_blur(x, 2.0), x, atol=1e-6)
    noisy = torch.rand(2, 4, 16, 16, generator=torch.Generator().manual_seed(2))
    assert gaussian_blur(noisy, 1.0).var() < noisy.var()
    assert nearest_rmse(noisy[:1], noisy).item() == 0.0


def test_judge_learns_two_classes_and_round_trips(tmp_path):
    g = torch.Generator().manual_seed(3)
    n = 64
    labels = torch.arange(n) % 2
    images = torch.zeros(n, 4, 64, 64, dtype=torch.uint8)
    images[labels == 0, 0] = 255  # red
    images[labels == 1, 2] = 255  # blue
    images[:, 3] = 255
    images[:, :, :8] = 0  # a transparent band, jittered per image by the judge's shifts
    judge = train_judge(images, labels, ["red", "blue"], epochs=20, batch=16, log=lambda m: None,
                        held_out=images[:8])
    with torch.no_grad():
        pred = judge(images.float() / 255)[0].argmax(1)
    assert balanced_accuracy(pred, labels, 2) == 1.0
    with torch.no_grad():  # garbage goes to the extra "not an emoji" class (index 2)
        noise = judge(torch.rand(16, 4, 64, 64, generator=g))[0].argmax(1)
    assert (noise == 2).float().mean() > 0.5
    feats = judge.features(images[:4].float() / 255)  # the evaluation space: unit length
    assert torch.allclose(feats.norm(dim=1), torch.ones(4), atol=1e-5)
    assert 1 <= judge.cfg.k <= 10
    save_judge(judge, tmp_path / "judge", {"recipe": "test"})
    again, meta = load_judge(tmp_path / "judge")
    assert meta["classes"] == ["red", "blue"] and meta["k"] == judge.cfg.k and meta["normalise"]
    assert torch.allclose(again.features(images[:4].float() / 255), judge.features(images[:4].float() / 255), atol=0.05)


def test_mean_pairwise_distance_and_pixel_shuffle():
    from engine.evaluation.metrics import mean_pairwise_distance, pixel_shuffle

    square = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert mean_pairwise_distance(square) == pytest.approx((4 * 1.0 + 2 * 2 ** 0.5) / 6)
    assert mean_pairwise_distance(square[:1]) == 0.0 and mean_pairwise_distance(square[[0, 0, 0]]) == 0.0
    g = torch.Generator().manual_seed(4)
    x = torch.rand(3, 4, 8, 8, generator=g)
    y = pixel_shuffle(x, g)
    assert not torch.equal(x, y)
    for i in range(3):  # the same pixels (each an RGBA 4-vector), in another order
        px, py = x[i].flatten(1).T.tolist(), y[i].flatten(1).T.tolist()
        assert sorted(map(tuple, px)) == sorted(map(tuple, py))


def test_chimera_and_speckle():
    from engine.evaluation.metrics import chimera, speckle

    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 4, 64, 64, generator=g)
    c = chimera(x, g)
    assert torch.equal(c[:, :, :32, :32], x[:, :, :32, :32])  # the first quadrant is each image's own
    for ys, xs in [(slice(0, 32), slice(32, 64)), (slice(32, 64), slice(0, 32)), (slice(32, 64), slice(32, 64))]:
        quads = c[:, :, ys, xs]  # every other quadrant is some image's, at the same place
        assert all(any(torch.equal(q, x[j, :, ys, xs]) for j in range(16)) for q in quads)
    assert sum(not torch.equal(c[i], x[i]) for i in range(16)) >= 12  # and mostly another image's
    x[:, 3, :, :32] = 0  # the left half transparent
    n = speckle(x, 0.2, g)
    assert torch.equal(n[:, 3], x[:, 3]) and torch.equal(n[:, :3, :, :32], x[:, :3, :, :32])
    assert 0.1 < float((n[:, :3, :, 32:] - x[:, :3, :, 32:]).abs().mean()) < 0.2 and 0 <= n.min() and n.max() <= 1


def test_choose_k_is_the_smallest_k_that_holds_the_held_out_share():
    from engine.evaluation.judge import choose_k

    g = torch.Generator().manual_seed(5)
    train = torch.randn(400, 3, generator=g, dtype=torch.float64)
    held = torch.randn(200, 3, generator=g, dtype=torch.float64)
    k = choose_k(train, held, target=0.9)
    share = lambda k: precision_recall(train, held, k=k)[0]  # noqa: E731
    assert share(k) >= 0.9 and (k == 1 or share(k - 1) < 0.9)
    assert choose_k(train, held + 100.0, target=0.9, k_max=4) == 4  # unreachable: the largest allowed


def test_balanced_accuracy_weights_classes_equally():
    pred, target = torch.tensor([0, 0, 0, 0, 1]), torch.tensor([0, 0, 0, 0, 1])
    assert balanced_accuracy(pred, target, 2) == 1.0
    assert balanced_accuracy(torch.zeros(5, dtype=torch.long), target, 2) == 0.5


def test_aigc_eval_json_on_a_tiny_set(tmp_path, capsys):
    from aigc.cli import main

    data = tmp_path / "data"
    assert main(["data", "emoji", str(data), "--limit", "120"]) == 0
    capsys.readouterr()
    rc = main(["eval", "--plugin", "emoji", "--model", "gan", "--samples", "40", "--data", str(data),
               "--judge", str(tmp_path / "judge"), "--judge-epochs", "2", "--seeds", "0,1",
               "--option", "quality=draft", "--json"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("fd_floor", "fd_blur1", "fd_blur2", "fd_model", "precision", "recall", "cond_acc_balanced",
                "chance", "judge_balanced_acc", "novelty", "fd_uniform_noise", "fd_pixel_shuffle",
                "precision_pixel_shuffle", "diversity_ratio_min", "diversity_ratio_real_min", "recognisable",
                "recognisable_real", "fd_blur3", "fd_chimera", "precision_blur3", "precision_chimera"):
        assert isinstance(result[key], float), key
    # per category, the model's and the real images' own, averaged over the seeds
    assert set(result["diversity_ratio"]) == set(result["classes"])
    assert set(result["diversity_ratio_real"]) <= set(result["classes"])  # categories with 2+ held-out images
    assert result["diversity_ratio_min"] == pytest.approx(
        sum(min(r) for r in zip(*result["per_seed"]["diversity_ratio"].values())) / 2)
    assert len(result["per_seed"]["diversity_ratio"]["face"]) == 2 and 0 <= result["recognisable"] <= 1
    # recognisable per category: its mean is the headline figure; the real images' own beside it,
    # with the held-out counts it rests on
    by = result["recognisable_by_category"]
    assert set(by) == set(result["classes"]) and result["recognisable"] == pytest.approx(sum(by.values()) / len(by))
    assert len(result["per_seed"]["recognisable_by_category"]["face"]) == 2
    real_by = result["recognisable_real_by_category"]
    assert set(real_by) == {c for c, n in result["held_out_per_category"].items() if n > 0}
    assert result["recognisable_real"] == pytest.approx(sum(real_by.values()) / len(real_by))
    assert sum(result["held_out_per_category"].values()) > 0
    assert 0 <= result["precision"] <= 1 and 0 <= result["novelty"] <= 1
    assert result["chance"] == pytest.approx(1 / len(result["classes"]))
    assert (tmp_path / "judge.safetensors").exists()  # trained once, then reused
    assert result["seeds"] == [0, 1] and len(result["per_seed"]["recall"]) == 2
    # options left out are the command's defaults, what a user gets: variety 0.7 (truncated)
    assert result["options"]["quality"] == "draft" and result["variety"] == 0.7 == result["options"]["variety"]
    rc = main(["eval", "--plugin", "emoji", "--model", "gan", "--samples", "40", "--data", str(data),
               "--judge", str(tmp_path / "judge"), "--variety", "1", "--option", "quality=draft", "--json"])
    assert rc == 0 and json.loads(capsys.readouterr().out)["variety"] == 1.0


def test_judge_is_retrained_when_the_categories_change_not_only_the_class_names(tmp_path):
    from engine.evaluation.evaluate import Split, get_judge

    images = torch.zeros(64, 4, 64, 64, dtype=torch.uint8)  # one batch: one judge step an epoch
    images[::2, 0] = images[1::2, 2] = images[:, 3] = 255

    def split_with(labels: list[int]) -> Split:
        return Split(train=images, held_out=images[:2], train_labels=torch.tensor(labels),
                     held_out_labels=torch.tensor(labels[:2]), classes=["red", "blue"], train_captions=[""] * 64)

    logs: list[str] = []
    stem = tmp_path / "judge"
    get_judge(split_with([0, 1] * 32), stem, logs.append, epochs=1)
    trained = (stem.with_suffix(".json").stat().st_mtime_ns, len(logs))
    get_judge(split_with([0, 1] * 32), stem, logs.append, epochs=1)  # the same labels: reused
    assert (stem.with_suffix(".json").stat().st_mtime_ns, len(logs)) == trained
    get_judge(split_with([0, 1] * 31 + [1, 0]), stem, logs.append, epochs=1)  # two images relabelled
    assert "trained on another data set or other categories" in " ".join(logs[trained[1]:])
    assert json.loads(stem.with_suffix(".json").read_text())["labels_sha256"] != ""
    # a judge from before session 20 read the RGB under transparent pixels: it is retrained too
    meta = json.loads(stem.with_suffix(".json").read_text())
    assert meta["visible_only"] is True
    stem.with_suffix(".json").write_text(json.dumps({k: v for k, v in meta.items() if k != "visible_only"}))
    seen = len(logs)
    get_judge(split_with([0, 1] * 31 + [1, 0]), stem, logs.append, epochs=1)
    assert "or is an older kind" in " ".join(logs[seen:])
    assert json.loads(stem.with_suffix(".json").read_text())["visible_only"] is True
    # a judge from before session 21 learnt only slight blur (up to σ 1) as no change: retrained
    from engine.evaluation.judge import DAMAGE

    meta = json.loads(stem.with_suffix(".json").read_text())
    assert meta["damage"] == DAMAGE and "damage=" in meta["recipe"]
    stem.with_suffix(".json").write_text(json.dumps({k: v for k, v in meta.items() if k != "damage"}))
    seen = len(logs)
    get_judge(split_with([0, 1] * 31 + [1, 0]), stem, logs.append, epochs=1)
    assert "or is an older kind" in " ".join(logs[seen:])
    assert json.loads(stem.with_suffix(".json").read_text())["damage"] == DAMAGE


def test_combine_reports_means_sd_and_per_seed_values():
    from engine.evaluation.cli import combine

    runs = [{"precision": 0.6, "recall": 0.5, "classes": ["a"], "samples": 10, "diversity_ratio": {"a": 0.2},
             "options": {"quality": "best"}},
            {"precision": 0.8, "recall": 0.7, "classes": ["a"], "samples": 10, "diversity_ratio": {"a": 0.4},
             "options": {"quality": "best"}}]
    got = combine(runs, [0, 1])
    assert got["diversity_ratio"]["a"] == pytest.approx(0.3) and got["per_seed"]["diversity_ratio"]["a"] == [0.2, 0.4]
    assert got["options"] == {"quality": "best"}  # not figures: taken as they are
    assert got["precision"] == pytest.approx(0.7) and got["recall"] == pytest.approx(0.6)
    assert got["sd"]["precision"] == pytest.approx(0.1414, abs=1e-4)
    assert got["per_seed"]["recall"] == [0.5, 0.7] and got["seeds"] == [0, 1]
    assert got["classes"] == ["a"] and got["samples"] == 10


def test_aigc_eval_refuses_bad_seeds_and_options(tmp_path, capsys):
    from aigc.cli import main

    assert main(["eval", "--seeds", "0,x", "--data", str(tmp_path)]) == 2
    assert "--seeds '0,x': expected comma-separated integers" in capsys.readouterr().err
    assert main(["eval", "--option", "quality", "--data", str(tmp_path)]) == 2
    assert "--option 'quality': expected NAME=VALUE" in capsys.readouterr().err
    assert main(["eval", "--option", "quality=bset", "--data", str(tmp_path / "none")]) == 2
    assert "--option options.quality: must be one of" in capsys.readouterr().err
    assert main(["eval", "--option", "qualty=draft", "--data", str(tmp_path / "none")]) == 2
    assert "options.qualty: is not an option of this command" in capsys.readouterr().err
    assert main(["eval", "--variety", "1.5", "--data", str(tmp_path / "none")]) == 2
    assert "--variety options.variety: must be" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()  # refused before any data set was built

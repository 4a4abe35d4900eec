import numpy as np
import pytest
from PIL import Image

from engine.policy import NudeNetImageCheck, OutputChecks, TextRulesCheck, available_image_checks


class RecordingDetector:
    """Stands in for nudenet.NudeDetector().detect: same input (BGR array), same output shape."""

    def __init__(self, detections):
        self.detections, self.seen = detections, []

    def __call__(self, bgr):
        self.seen.append(bgr)
        return self.detections


def test_nudenet_check_refuses_exposed_classes_above_threshold():
    det = RecordingDetector([{"class": "FACE_FEMALE", "score": 0.99, "box": [0, 0, 4, 4]},
                             {"class": "FEMALE_BREAST_EXPOSED", "score": 0.8, "box": [1, 2, 3, 4]}])
    check = NudeNetImageCheck(threshold=0.5, detector=det)
    image = Image.new("RGB", (8, 8), (255, 0, 0))
    v = check.check(image)
    assert (v.allowed, v.category, v.rule, v.score) == (False, "sexual", "nudenet.female_breast_exposed", 0.8)
    assert v.details == {"box": [1, 2, 3, 4]}
    bgr = det.seen[0]
    assert bgr.shape == (8, 8, 3) and tuple(bgr[0, 0]) == (0, 0, 255)  # RGB red arrives as BGR


def test_nudenet_check_allows_covered_or_low_scores_and_checks_every_frame():
    det = RecordingDetector([{"class": "FEMALE_BREAST_COVERED", "score": 0.9, "box": []},
                             {"class": "BUTTOCKS_EXPOSED", "score": 0.3, "box": []}])
    check = NudeNetImageCheck(threshold=0.5, detector=det)
    frames = [Image.new("RGB", (4, 4)) for _ in range(3)]
    assert check.check(frames).allowed
    assert len(det.seen) == 3


def test_nudenet_threshold_is_validated():
    with pytest.raises(ValueError, match="threshold must be in"):
        NudeNetImageCheck(threshold=0)


def test_registry_runs_checks_for_the_modality_and_first_refusal_wins():
    refuse = NudeNetImageCheck(detector=RecordingDetector([{"class": "ANUS_EXPOSED", "score": 1.0}]))
    registry = OutputChecks([TextRulesCheck(), refuse])
    assert [c.name for c in registry.for_modality("image")] == ["nudenet"]
    assert not registry.run("image", np.zeros((4, 4, 3), dtype=np.uint8)).allowed
    assert registry.run("audio", b"...").allowed
    text = registry.run("text", "a story about s.u.i.c.i.d.e")
    assert (text.allowed, text.check, text.rule) == (False, "text-rules", "global.self_harm")
    assert registry.run("text", "a story about a cat").allowed


def test_text_check_uses_guild_rules_too():
    check = TextRulesCheck(guild_rules=[{"id": "no-spoilers", "keywords": ["spoiler*"]}])
    assert check.check("spoilers!").rule == "no-spoilers"


def test_registry_rejects_objects_that_are_not_checks():
    with pytest.raises(TypeError, match="is not an OutputCheck"):
        OutputChecks().register(object())


def test_available_image_checks_reflects_the_optional_package():
    try:
        import nudenet  # noqa: F401
        expected = ["nudenet"]
    except ImportError:
        expected = []
    assert [c.name for c in available_image_checks()] == expected

import pytest

from engine.policy import NearMissTracker


def test_refusals_below_threshold_do_not_escalate():
    t = NearMissTracker(threshold=3, window_s=60, block_s=100)
    assert t.record_refusal("u", now=0).blocked_until is None
    e = t.record_refusal("u", now=10)
    assert (e.refusals_in_window, e.blocked_until, e.notify_moderators) == (2, None, False)
    assert t.blocked_until("u", now=10) is None


def test_threshold_in_window_blocks_and_notifies_once():
    t = NearMissTracker(threshold=3, window_s=60, block_s=100)
    t.record_refusal("u", now=0)
    t.record_refusal("u", now=10)
    e = t.record_refusal("u", now=20)
    assert (e.blocked_until, e.notify_moderators, e.level) == (120, True, 1)
    again = t.record_refusal("u", now=30)
    assert (again.blocked_until, again.notify_moderators) == (120, False)
    assert t.blocked_until("u", now=119) == 120
    assert t.blocked_until("u", now=120) is None
    assert t.blocked_until("someone else", now=30) is None


def test_old_refusals_slide_out_of_the_window():
    t = NearMissTracker(threshold=3, window_s=60, block_s=100)
    t.record_refusal("u", now=0)
    t.record_refusal("u", now=30)
    e = t.record_refusal("u", now=61)  # the refusal at 0 is out of the window
    assert (e.refusals_in_window, e.blocked_until) == (2, None)


def test_repeat_escalations_double_the_block_up_to_the_cap():
    t = NearMissTracker(threshold=1, window_s=10, block_s=100, max_block_s=250)
    assert t.record_refusal("u", now=0).blocked_until == 100
    assert t.record_refusal("u", now=200).blocked_until == 400
    e = t.record_refusal("u", now=1000)
    assert (e.blocked_until, e.level) == (1250, 3)
    t.forget("u")
    assert t.record_refusal("u", now=2000).level == 1


def test_clock_is_used_when_no_time_is_given():
    now = [1000.0]
    t = NearMissTracker(threshold=1, block_s=5, clock=lambda: now[0])
    assert t.record_refusal("u").blocked_until == 1005
    now[0] = 1006
    assert t.blocked_until("u") is None


@pytest.mark.parametrize("kwargs, message", [
    ({"threshold": 0}, "threshold must be at least 1"),
    ({"window_s": 0}, "window_s and block_s must be positive"),
    ({"block_s": 100, "max_block_s": 50}, "max_block_s >= block_s"),
])
def test_bad_settings_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NearMissTracker(**kwargs)

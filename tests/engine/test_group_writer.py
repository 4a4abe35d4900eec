"""The ledger's group writer: groups records, flushes on demand, loses nothing on close,
and survives a failing write."""
from __future__ import annotations

import threading

from engine.group_writer import GroupWriter


def test_groups_flushes_and_closes_without_loss():
    groups: list[list[int]] = []
    w = GroupWriter(groups.append, window_s=0.05)
    for i in range(5):
        w.put([i, i + 100])
    w.put([])  # nothing to write: ignored
    assert w.flush(5)
    assert sorted(x for g in groups for x in g) == [0, 1, 2, 3, 4, 100, 101, 102, 103, 104]
    assert len(groups) < 5  # a burst lands in fewer transactions than puts
    w.put([7])
    w.close()
    assert groups[-1] == [7]


def test_a_failing_write_does_not_stop_the_writer(caplog):
    seen: list[list[str]] = []
    fail = threading.Event()
    fail.set()

    def write(group: list[str]) -> None:
        if fail.is_set():
            fail.clear()
            raise RuntimeError("disk full")
        seen.append(group)

    w = GroupWriter(write, window_s=0.0)
    w.put(["lost"])
    assert w.flush(5)
    w.put(["kept"])
    assert w.flush(5)
    w.close()
    assert seen == [["kept"]]
    assert "group write failed" in caplog.text

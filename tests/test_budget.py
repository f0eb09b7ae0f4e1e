"""Deadlines stop work where it can stop; the cost model declines only what cannot fit."""

from __future__ import annotations

import time

import pytest

from mmbench.budget import NO_DEADLINE, CostModel, Deadline, DeadlineReached


def test_deadline_check_raises_naming_the_work_once_expired() -> None:
    deadline = Deadline.after(0.05)
    deadline.check("fold 1")  # still in time
    assert 0 < deadline.remaining() <= 0.05
    time.sleep(0.06)
    assert deadline.expired()
    with pytest.raises(DeadlineReached, match="during epoch 3"):
        deadline.check("epoch 3")


def test_no_deadline_never_expires_and_reserving_time_moves_it_earlier() -> None:
    NO_DEADLINE.check("anything")
    assert NO_DEADLINE.remaining() == float("inf")
    assert NO_DEADLINE.earlier(10) is NO_DEADLINE
    deadline = Deadline.after(5.0)
    assert deadline.earlier(5.0).expired() and not deadline.expired()


def test_cost_model_is_cautious_and_unknown_kinds_may_run() -> None:
    costs = CostModel()
    assert costs.estimate("attention") is None
    assert costs.fits("attention", Deadline.after(1.0))
    costs.record("attention", 30.0)
    costs.record("attention", 50.0)
    costs.record("linear", 0.5)
    assert costs.estimate("attention") == 50.0
    assert not costs.fits("attention", Deadline.after(40.0))
    assert costs.fits("linear", Deadline.after(40.0))

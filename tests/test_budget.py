"""Deadlines stop work where it can stop; the cost model declines only what cannot fit."""

from __future__ import annotations

import time
from pathlib import Path

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


def test_a_trial_that_cannot_fit_is_declined_not_pruned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A candidate whose measured cost exceeds the time left is declined before any fold: it
    is told apart from a pruned trial in the study, the hooks and the result's history, and
    it has no score. The cost recorded for a head is its warm cost, without the encoding of
    rows no cache held."""
    from conftest import FAST_TRAINING, cheap_search, tiny_suite

    from mmbench.data import load_table
    from mmbench.evaluation import cv_folds
    from mmbench.jobs import search_history
    from mmbench.search import SearchSettings, SearchSpace, TrialHooks, run_search

    suite = tiny_suite(tmp_path, n_rows=90, folds=2)
    table = load_table(suite.datasets[0], suite.root, seed=0)
    folds = cv_folds(table.labels, 2, 1, seed=0)
    recorded: list[float] = []
    real_record = CostModel.record

    def record(self: CostModel, kind: str, seconds: float) -> None:
        recorded.append(seconds)
        real_record(self, kind, 1e9)  # as if the first trial had taken forever

    monkeypatch.setattr(CostModel, "record", record)
    space = SearchSpace.model_validate(
        cheap_search({"fusion": "early", "training": {**FAST_TRAINING, "lr": [3e-3, 1e-2]}})
    )
    ends: list[str] = []
    hooks = TrialHooks(end=lambda trial, state, spec, folds, err: ends.append(state))
    settings = SearchSettings(
        study_name="t.tiny",
        storage=f"sqlite:///{tmp_path / 'optuna.db'}",
        n_trials=2,
        deadline=Deadline.after(600),
    )
    outcome = run_search(table, folds, space, settings, hooks=hooks)
    first, second = outcome.study.trials
    assert ends == ["complete", "declined"]
    assert second.state.name == "PRUNED" and second.user_attrs["declined"] is True
    assert "with cached features" in second.user_attrs["reason"]
    assert second.value is None and second.user_attrs["folds"] == []
    assert [p.state for p in search_history(outcome.study, 2)] == ["complete", "declined"]
    assert len(recorded) == 1 and recorded[0] <= first.duration.total_seconds()


def test_a_budget_that_fits_no_candidate_stops_early_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FSDD at 60 s: encoding the audio alone needs more than the budget. The search stops
    after a few declines (not one per sampled candidate until the deadline) and its error says
    what the cheapest candidate needed and what to change."""
    import optuna
    from conftest import cheap_search, tiny_suite

    from mmbench.data import load_table
    from mmbench.errors import MMBenchError
    from mmbench.evaluation import cv_folds
    from mmbench.search import SearchSettings, SearchSpace, run_search
    from mmbench.search import study as study_module

    suite = tiny_suite(tmp_path, n_rows=60, folds=2)
    table = load_table(suite.datasets[0], suite.root, seed=0)
    folds = cv_folds(table.labels, 2, 1, seed=0)
    monkeypatch.setattr(study_module, "encode_seconds", lambda *a, **k: 1e6)
    settings = SearchSettings(
        study_name="t.none",
        storage=f"sqlite:///{tmp_path / 'optuna.db'}",
        n_trials=100,
        deadline=Deadline.after(600),
    )
    space = SearchSpace.model_validate(cheap_search({"fusion": ["linear", "early"]}))
    with pytest.raises(MMBenchError) as err:
        run_search(table, folds, space, settings)
    message = str(err.value)
    assert "the time budget fits no candidate" in message
    assert "encoding would take ~1000000 s" in message and "raise budget.timeout_s" in message
    study = optuna.load_study(study_name="t.none", storage=settings.storage)
    assert len(study.trials) == study_module.MAX_DECLINED_IN_A_ROW

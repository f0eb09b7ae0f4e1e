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
    from mmbench.results.build import search_history
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
    from mmbench.search import objective as objective_module

    suite = tiny_suite(tmp_path, n_rows=60, folds=2)
    table = load_table(suite.datasets[0], suite.root, seed=0)
    folds = cv_folds(table.labels, 2, 1, seed=0)
    monkeypatch.setattr(objective_module, "encode_seconds", lambda *a, **k: 1e6)
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
    assert len(study.trials) == objective_module.MAX_DECLINED_IN_A_ROW


def test_when_no_candidate_can_encode_every_row_the_job_searches_the_largest_subsample_that_fits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A budget too short for even the cheapest candidate to encode every training row still
    ends in a result, not an error: the job searches again on the largest stratified subsample
    whose encoding fits 40 % of the time left, says so, records it in the result files (rows,
    of how many, why), and scores the held-out rows in full."""
    import optuna
    from conftest import cheap_search, tiny_suite

    from mmbench.data.synthetic import generate
    from mmbench.report import render_report
    from mmbench.run import RunOptions, run_suite
    from mmbench.search import objective as objective_module
    from mmbench.suite import parse_suite

    generate(n_rows=90, n_classes=3, seed=5).to_parquet(str(tmp_path / "test.parquet"))
    suite = tiny_suite(tmp_path, n_rows=400, folds=2, trials=3, search=cheap_search({}))
    raw = suite.model_dump(mode="json", exclude={"path"})
    raw["datasets"][0]["test_source"] = {"kind": "parquet", "path": "test.parquet"}
    suite = parse_suite(raw, path=tmp_path / "suite.yaml")
    # measured-looking: 400 rows need ~40 s, the search has ~48 s of 60: that would fit, but
    # a first candidate may spend at most half the time left encoding
    per_row = 0.1
    monkeypatch.setattr(
        objective_module, "encode_seconds", lambda table, *a, **k: per_row * len(table)
    )
    options = RunOptions(results_dir=tmp_path / "res", track=False, timeout=60, ablate=False)
    search, ensemble = run_suite(suite, options)
    assert search.error is None and ensemble.error is None, search.error
    info = ensemble.result.dataset
    assert info.subsample is not None and info.subsample["of"] == 400
    rows = info.subsample["rows"]
    assert info.n_rows == rows and 170 <= rows <= 192  # ~0.4 * 48 s / 0.1 s per row
    assert "the time budget fits no candidate" in info.subsample["reason"]
    assert "a first result needs time to cross-validate too" in info.subsample["reason"]
    assert len(ensemble.result.chance) and info.n_classes == 3
    assert any(f"subsample of {rows:,} rows" in w for w in ensemble.warnings)
    assert ensemble.result.search.study.endswith("#2")  # a new study; the declined one is kept
    declined = optuna.load_study(
        study_name="tiny-suite.tiny", storage=ensemble.result.search.storage
    )
    # the portfolio's cheapest did not fit: no other candidate is sampled and probed in vain
    assert [t.user_attrs.get("declined") for t in declined.trials if t.state.name != "WAITING"] == [
        True
    ]
    history = ensemble.result.search.history
    assert sum(p.state == "complete" for p in history) >= 1, history
    assert not any("no reason recorded" in (p.outcome or "") for p in history), history
    assert ensemble.result.test_metrics is not None  # all 90 held-out rows scored
    assert search.result.dataset.subsample == info.subsample
    page = render_report(tmp_path / "res", suite.name)
    assert f"{rows} × 3 (a stratified subsample of 400: the time budget fits no" in page
    # finalizing (or resuming) that study works on the very same rows, not on all 400
    again = run_suite(suite, RunOptions(results_dir=tmp_path / "res", track=False, finalize="only"))
    assert [o.error for o in again] == [None, None]
    assert again[-1].result.dataset == info and again[-1].result.search.study.endswith("#2")


def test_no_result_because_the_deadline_cut_every_trial_says_so() -> None:
    """When the only trials were cut by the deadline, the error says which and why — not
    "see failures above" when there were none."""
    import optuna

    from mmbench.search.trials import no_trial_message

    study = optuna.create_study(study_name="t.cut")
    trial = study.ask()
    trial.set_user_attr("reason", "time budget reached during fold 2")
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    message = no_trial_message(study)
    assert "the search's deadline came first — trial 0 was cut" in message
    assert "time budget reached during fold 2" in message and "--timeout" in message

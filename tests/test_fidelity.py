"""Multi-fidelity search: the rung every candidate is first scored on, and the promotion rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from conftest import FAST_TRAINING, cheap_search, tiny_suite
from optuna.trial import TrialState

from mmbench.data import load_table
from mmbench.data.table import MultiModalTable
from mmbench.errors import MMBenchError
from mmbench.evaluation import cv_folds
from mmbench.results.build import search_history
from mmbench.search import SearchSettings, SearchSpace, fidelity, run_search
from mmbench.search.study import open_study


def table_of(n: int, n_classes: int = 3, seed: int = 0) -> MultiModalTable:
    import pandas as pd

    rng = np.random.default_rng(seed)
    labels = rng.choice(n_classes, size=n, p=[0.6, 0.3, 0.1][:n_classes])
    x = rng.normal(size=(n, 2)) + labels[:, None]
    tabular = pd.DataFrame({"a": x[:, 0], "b": x[:, 1]})
    classes = [f"c{i}" for i in range(n_classes)]
    return MultiModalTable(name="t", labels=labels, classes=classes, tabular=tabular)


def test_small_tables_get_no_rung() -> None:
    table = table_of(fidelity.MIN_TABLE_ROWS - 1)
    assert fidelity.make_rung(table, cv_folds(table.labels, 5, 1, seed=0)) is None


def test_rung_rows_come_from_the_first_fold_and_keep_its_split_and_classes() -> None:
    table = table_of(20_000)
    folds = cv_folds(table.labels, 5, 1, seed=0)
    rung = fidelity.make_rung(table, folds)
    assert rung is not None and rung.rows == 2500  # one eighth of the table
    sub = rung.table
    # rung rows are real rows: the training part from fold 0's training rows, the scored part
    # from its validation rows, so a candidate is never scored on rows it trained on
    train_values = set(map(tuple, sub.tabular.iloc[rung.fold.train].to_numpy()))
    valid_values = set(map(tuple, sub.tabular.iloc[rung.fold.valid].to_numpy()))
    first = folds[0]
    assert train_values <= set(map(tuple, table.tabular.iloc[first.train].to_numpy()))
    assert valid_values <= set(map(tuple, table.tabular.iloc[first.valid].to_numpy()))
    assert len(rung.fold.valid) == pytest.approx(rung.rows / 5, abs=1)
    for part in (rung.fold.train, rung.fold.valid):  # stratified: class shares kept
        shares = np.bincount(sub.labels[part], minlength=3) / len(part)
        assert shares == pytest.approx(np.bincount(table.labels) / len(table), abs=0.01)
    # its own fingerprint (its frozen features are cached apart), the same on every call
    again = fidelity.make_rung(table, folds)
    assert again is not None and again.table.fingerprint == sub.fingerprint
    assert sub.fingerprint != table.fingerprint


def test_grouped_folds_give_a_grouped_rung() -> None:
    table = table_of(6000)
    table.groups = np.arange(6000) // 10  # 600 groups of 10 rows
    folds = cv_folds(table.labels, 5, 1, seed=0, groups=table.groups)
    rung = fidelity.make_rung(table, folds)
    assert rung is not None and rung.table.groups is not None
    train_groups = set(rung.table.groups[rung.fold.train])
    assert not train_groups & set(rung.table.groups[rung.fold.valid])
    # every group of the fold's training rows keeps rows, so the rung's inner hold-out
    # (whole groups) has as many groups to draw from as the fold's
    assert train_groups == set(table.groups[folds[0].train])


def test_only_the_best_third_of_the_rung_is_promoted() -> None:
    assert fidelity.promotes(0.1, [0.9])  # too few scores to judge: promote
    others = [0.5, 0.6, 0.7, 0.8, 0.9]
    assert fidelity.promotes(0.85, others)  # second of six: within the best third
    assert not fidelity.promotes(0.75, others)  # third of six: not
    assert not fidelity.promotes(float("nan"), others)
    assert fidelity.promotes(0.55, others, higher_is_better=False)  # a loss: lower is better
    assert not fidelity.promotes(0.75, others, higher_is_better=False)


TABULAR = {"tabular": ["num_0", "num_1", "num_2", "num_3", "cat_0", "cat_1"]}


def small_rungs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rungs on the tiny generated tables tests use (120 rows of 400)."""
    monkeypatch.setattr(fidelity, "MIN_TABLE_ROWS", 100)
    monkeypatch.setattr(fidelity, "MIN_RUNG_ROWS", 120)


def test_a_hopeless_candidate_is_pruned_on_the_rung_before_full_cv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_rungs(monkeypatch)
    suite = tiny_suite(tmp_path, n_rows=400, folds=4, modalities=TABULAR)
    table = load_table(suite.datasets[0], suite.root, seed=0)
    folds = cv_folds(table.labels, 4, 1, seed=0)
    rates = [1e-2, 5e-3, 1e-9]  # the last learns nothing: near chance on the rung
    training: dict[str, Any] = {**FAST_TRAINING, "epochs": 8, "lr": rates}
    space = SearchSpace.model_validate(cheap_search({"fusion": "early", "training": training}))
    kw: dict[str, Any] = {"study_name": "t.rung", "storage": f"sqlite:///{tmp_path / 'o.db'}"}
    study = open_study(SearchSettings(n_trials=3, pruner="none", **kw))
    for lr in rates:
        study.enqueue_trial({"lr": lr})
    outcome = run_search(
        table, folds, space, SearchSettings(n_trials=3, pruner="none", resume=True, **kw)
    )
    *good, bad = outcome.study.trials
    assert [t.state for t in good] == [TrialState.COMPLETE] * 2  # the first two always go on
    for t in good:  # the rung reports step 0, the folds steps 1..4; the value is the CV mean
        assert sorted(t.intermediate_values) == [0, 1, 2, 3, 4]
        assert t.user_attrs["rung"]["promoted"] is True
        assert t.value == pytest.approx(np.mean([t.intermediate_values[s] for s in range(1, 5)]))
    assert bad.state == TrialState.PRUNED and list(bad.intermediate_values) == [0]
    assert bad.user_attrs["rung"]["promoted"] is False
    assert bad.user_attrs["folds"] == []  # no fold of the full CV ran
    history = search_history(outcome.study, len(folds))
    assert [p.fidelity for p in history] == ["4 of 4 folds"] * 2 + ["120 rows, 1 fold"]
    assert history[-1].outcome is not None and history[-1].outcome.startswith("rung: f1_macro")
    assert history[-1].rung_score == pytest.approx(bad.user_attrs["rung"]["score"])


def test_rungs_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small_rungs(monkeypatch)
    suite = tiny_suite(tmp_path, n_rows=400, folds=4, modalities=TABULAR)
    table = load_table(suite.datasets[0], suite.root, seed=0)
    folds = cv_folds(table.labels, 4, 1, seed=0)
    space = SearchSpace.model_validate(
        cheap_search({"fusion": "linear", "rungs": False, "portfolio": False})
    )
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    settings = SearchSettings(study_name="t.off", storage=storage, n_trials=1, rungs=space.rungs)
    outcome = run_search(table, folds, space, settings)
    (trial,) = outcome.study.trials
    assert "rung" not in trial.user_attrs and sorted(trial.intermediate_values) == [0, 1, 2, 3]


def test_a_candidate_too_slow_for_the_full_table_is_still_judged_on_its_rung(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Encoding the whole table would not fit in the time left, encoding the rung rows would:
    every candidate gets a rung score; the ones the rule prunes are decided by it, and the
    promoted ones are declined only then, naming the full table's encoding cost."""
    from mmbench.budget import Deadline
    from mmbench.search import objective as objective_module

    small_rungs(monkeypatch)
    suite = tiny_suite(tmp_path, n_rows=400, folds=4, modalities=TABULAR)
    table = load_table(suite.datasets[0], suite.root, seed=0)
    folds = cv_folds(table.labels, 4, 1, seed=0)
    # 0.5 s a row: the rung's 120 rows ~60 s fit in the 100 s left, the table's 400 ~200 s do not
    monkeypatch.setattr(objective_module, "encode_seconds", lambda t, *a, **k: 0.5 * len(t))
    rates = [1e-2, 5e-3, 1e-9]
    training: dict[str, Any] = {**FAST_TRAINING, "epochs": 8, "lr": rates}
    space = SearchSpace.model_validate(cheap_search({"fusion": "early", "training": training}))
    kw: dict[str, Any] = {"study_name": "t.slow", "storage": f"sqlite:///{tmp_path / 'o.db'}"}
    study = open_study(SearchSettings(n_trials=3, pruner="none", **kw))
    for lr in rates:
        study.enqueue_trial({"lr": lr})
    settings = SearchSettings(
        n_trials=3, pruner="none", resume=True, deadline=Deadline.after(100), **kw
    )
    with pytest.raises(MMBenchError, match="no completed trial"):  # none could complete
        run_search(table, folds, space, settings)
    study = optuna.load_study(study_name="t.slow", storage=kw["storage"])
    *promoted, bad = study.trials
    assert all("rung" in t.user_attrs for t in study.trials)  # all judged on the rung
    for t in promoted:
        assert t.user_attrs["rung"]["promoted"] is True and t.user_attrs["declined"] is True
        assert "encoding would take" in t.user_attrs["reason"]
    assert bad.user_attrs["rung"]["promoted"] is False and "declined" not in bad.user_attrs
    history = search_history(study, len(folds))
    assert [p.state for p in history] == ["declined", "declined", "pruned"]

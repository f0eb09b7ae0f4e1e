from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import FAST_TRAINING, tiny_suite

from mmbench.config import PipelineSpec
from mmbench.data import load_table
from mmbench.evaluation import chance_level, cv_folds, inner_split
from mmbench.pipeline import FittedPipeline, evaluate_pipeline, fit_pipeline
from mmbench.pipeline.cache import FeatureCache


@pytest.fixture
def problem(tmp_path: Path):
    suite = tiny_suite(tmp_path, n_rows=150, folds=3)
    table = load_table(suite.datasets[0], suite.root, seed=0)
    return table, cv_folds(table.labels, 3, 1, seed=0)


def spec(**encoders: object) -> PipelineSpec:
    return PipelineSpec.model_validate(
        {"encoders": encoders or {"text": "tfidf", "tabular": "tabular"}, "training": FAST_TRAINING}
    )


def test_cv_is_deterministic_and_cached_features_are_reused(problem, tmp_path: Path) -> None:
    table, folds = problem
    cache = FeatureCache(tmp_path / "cache")
    first = evaluate_pipeline(table, spec(), folds, cache=cache)
    second = evaluate_pipeline(table, spec(), folds, cache=cache)
    assert first.ok and first.cache["misses"] == 6  # tfidf + tabular, fitted per fold
    assert second.cache == {"hits": 6, "misses": 0}
    np.testing.assert_array_equal(first.oof, second.oof)
    assert not np.isnan(first.oof).any()  # every row scored exactly once
    assert first.mean("f1_macro") > chance_level("f1_macro", table.labels, 3) + 0.05


def test_test_time_missing_scores_every_modality(problem) -> None:
    table, folds = problem
    cv = evaluate_pipeline(table, spec(), folds, test_time_missing=True)
    for fold in cv.folds:
        assert set(fold.missing_metrics) == {"text", "tabular"}
    # the model leans on tabular (signal 0.6) more than on text (0.35)
    drop = {
        m: cv.mean("f1_macro") - np.mean([f.missing_metrics[m]["f1_macro"] for f in cv.folds])
        for m in ("text", "tabular")
    }
    assert drop["tabular"] > drop["text"]


def test_failing_folds_are_recorded_not_raised(problem) -> None:
    table, folds = problem
    cv = evaluate_pipeline(table, spec(text="st/not-cached-anywhere", tabular="tabular"), folds)
    assert not cv.ok and len(cv.failures) == 3
    assert "not-cached-anywhere" in cv.failures[0]


def test_trainable_encoders_train_inside_each_fold(problem) -> None:
    table, folds = problem
    trainable = spec(
        text={"name": "embbag"},
        tabular={"name": "tabular", "options": {"categorical": "embedding"}},
    )
    cv = evaluate_pipeline(table, trainable, folds)
    assert cv.ok, cv.failures
    assert cv.mean("f1_macro") > 0.4


def test_fitted_pipeline_round_trip(problem, tmp_path: Path) -> None:
    table, _ = problem
    model = fit_pipeline(table, spec(), seed=0)
    path = model.save(tmp_path / "m.joblib")
    loaded = FittedPipeline.load(path)
    np.testing.assert_allclose(loaded.predict_proba(table), model.predict_proba(table))
    assert set(loaded.predict(table)) <= set(table.classes)


def test_inner_split_is_stratified_and_skipped_for_tiny_folds() -> None:
    labels = np.array([0] * 60 + [1] * 20)
    fit, stop = inner_split(labels, seed=0)
    assert not set(fit) & set(stop) and len(fit) + len(stop) == 80
    assert np.bincount(labels[stop]).tolist() == [9, 3]
    assert inner_split(labels[:30], seed=0) is None


def _leaky_copy(table, rows: np.ndarray):
    """``table`` with validation-only content planted in ``rows``: a word no training row has
    and a tabular value far outside the training range."""
    from dataclasses import replace

    text = list(table.text)
    for i in rows:
        text[i] = f"zzleak zzleak {text[i] or ''}"
    tabular = table.tabular.copy()
    tabular.loc[rows, "num_0"] = 1e6
    return replace(table, text=text, tabular=tabular, fingerprint="")


@pytest.mark.parametrize("keep_fitted", [False, True], ids=["cached", "kept"])
def test_validation_rows_never_reach_a_folds_fitted_encoders(
    problem, tmp_path: Path, keep_fitted: bool
) -> None:
    """README: encoders that learn from data are fitted inside each fold on the training rows
    only. So what only validation rows contain (a word, an extreme value) cannot change how the
    fold's training rows are encoded, nor give the validation rows a feature of their own."""
    from mmbench.pipeline import build_encoders, encode

    table, folds = problem
    fold = folds[0]
    leaky = _leaky_copy(table, fold.valid)
    pipeline = spec(text="tfidf", tabular="tabular")
    trainable = spec(text="embbag", tabular="tabular")
    for s in (pipeline, trainable):
        cache = FeatureCache(tmp_path / f"cache-{keep_fitted}")
        clean, _ = encode(
            table,
            build_encoders(s, ["text", "tabular"]),
            fold.train,
            cache,
            keep_fitted=keep_fitted,
        )
        seen, _ = encode(
            leaky,
            build_encoders(s, ["text", "tabular"]),
            fold.train,
            cache,
            keep_fitted=keep_fitted,
        )
        for m in ("text", "tabular"):
            assert seen.features[m].shape == clean.features[m].shape, (s.encoders[m].name, m)
            np.testing.assert_allclose(
                seen.features[m][fold.train], clean.features[m][fold.train], err_msg=m
            )


def test_each_fold_is_scored_with_its_tuned_threshold(problem) -> None:
    """With threshold tuning (binary), a fold's reported scores are those of its decisions:
    the probabilities thresholded at the threshold tuned on its inner hold-out."""
    from dataclasses import replace

    from mmbench.evaluation import compute_metrics

    table, _ = problem
    binary = replace(table, labels=(table.labels > 0).astype(np.int64), classes=["a", "b"])
    folds = cv_folds(binary.labels, 3, 1, seed=0)
    tuned = PipelineSpec.model_validate(
        {
            "encoders": {"text": "tfidf", "tabular": "tabular"},
            "training": {**FAST_TRAINING, "threshold_tuning": True},
        }
    )
    cv = evaluate_pipeline(binary, tuned, folds)
    assert cv.ok, cv.failures
    moved = 0
    for fold, result in zip(folds, cv.folds, strict=True):
        threshold = result.info["threshold"]
        assert threshold is not None
        y, proba = binary.labels[fold.valid], cv.oof[0, fold.valid]
        assert result.metrics == pytest.approx(compute_metrics(y, proba, threshold=threshold))
        moved += result.metrics != pytest.approx(compute_metrics(y, proba))
    assert moved > 0  # the threshold changed some fold's decisions (else this proves nothing)


def test_a_fold_without_a_class_has_undefined_ranking_metrics_counted(problem) -> None:
    """A fold whose validation rows lack a class (grouped folds can) has no AUC or PR-AUC: the
    summary's mean is over the other folds and counts the one left out, and the result file
    and its readers get the count; the label metrics are defined in every fold."""
    import math

    from mmbench.evaluation import Fold, decide
    from mmbench.results.build import build_result

    table, folds = problem
    f0 = folds[0]
    lacking = f0.valid[table.labels[f0.valid] == 2]
    first = Fold(0, 0, np.sort(np.r_[f0.train, lacking]), np.setdiff1d(f0.valid, lacking), f0.seed)
    cv = evaluate_pipeline(table, spec(), [first, *folds[1:]])
    cv = decide(cv, table.labels, [first, *folds[1:]], "f1_macro")
    assert cv.ok and math.isnan(cv.folds[0].metrics["pr_auc"])
    summary = cv.summary
    for name in ("pr_auc", "roc_auc"):
        others = [f.metrics[name] for f in cv.folds[1:]]
        assert summary[name]["undefined"] == 1
        assert summary[name]["mean"] == pytest.approx(np.mean(others))
    assert summary["f1_macro"]["undefined"] == 0

    suite = tiny_suite(Path("."), n_rows=150, folds=3)
    result = build_result(suite, suite.datasets[0], table, cv, "default", wall=1.0)
    assert result.metrics["pr_auc"]["undefined"] == 1
    assert result.undefined_folds("pr_auc") == 1 and result.undefined_folds() == 0


def _group_memory_table(n_groups: int = 40, rows: int = 10):
    """Rows whose only feature identifies their group (a one-hot group id), labels constant
    within a group and random across groups: nothing generalises to an unseen group, while a
    head that memorises the groups is perfect on rows of groups it has seen."""
    import pandas as pd

    from mmbench.data.table import MultiModalTable

    rng = np.random.default_rng(0)
    group = np.repeat(np.arange(n_groups), rows)
    labels = rng.permutation(np.arange(n_groups) % 2)[group]
    onehot = pd.DataFrame(np.eye(n_groups)[group], columns=[f"g{i}" for i in range(n_groups)])
    return MultiModalTable("groups", labels, ["a", "b"], tabular=onehot, groups=group.astype(str))


def _stopping_scores(table, folds, fusion: str) -> tuple[float, float]:
    """The inner hold-out's best score, the one early stopping picks its model by, and the
    outer validation score of the head it picked, each averaged over folds: macro-F1 for the
    torch head (its epoch reports), minus log-loss for xgboost (its early-stopping metric)."""
    from sklearn.metrics import f1_score, log_loss

    from mmbench.pipeline import build_encoders, encode, fit_head

    s = PipelineSpec.model_validate(
        {
            "encoders": {"tabular": "tabular"},
            "fusion": {"name": fusion},
            "training": {"epochs": 15, "batch_size": 32, "patience": 15, "lr": 1e-2},
        }
    )
    stop, outer = [], []
    for fold in folds:
        features, towers = encode(table, build_encoders(s, ["tabular"]), fold.train)
        epochs: list[float] = []
        head, _ = fit_head(
            s,
            features.take(fold.train),
            towers,
            2,
            fold.seed,
            lambda e, v, out=epochs: out.append(v),
        )
        y, proba = table.labels[fold.valid], head.predict_proba(features.take(fold.valid))
        if fusion == "xgboost":
            stop.append(-head.model.best_score)
            outer.append(-log_loss(y, proba, labels=[0, 1]))
        else:
            stop.append(max(epochs))
            outer.append(f1_score(y, proba.argmax(1), average="macro"))
    return float(np.mean(stop)), float(np.mean(outer))


@pytest.mark.parametrize("fusion", ["early", "xgboost"])
def test_the_inner_holdout_of_a_grouped_table_holds_out_whole_groups(fusion: str) -> None:
    """Early stopping and the threshold are tuned on the inner hold-out. Drawn as rows from
    groups the head trains on, it scores a head that memorises groups as near perfect while
    that head is at chance on the unseen groups the outer folds score it on; drawn as whole
    groups, it is as pessimistic as the outer folds."""
    from dataclasses import replace

    table = _group_memory_table()
    folds = cv_folds(table.labels, 4, 1, seed=0, groups=table.groups)[:2]
    ungrouped = replace(table, groups=None)  # the same rows, folds grouped, hold-out by row
    leaky_stop, leaky_outer = _stopping_scores(ungrouped, folds, fusion)
    stop, outer = _stopping_scores(table, folds, fusion)
    assert leaky_stop - leaky_outer > 0.3  # the row hold-out flatters
    assert stop - outer < 0.2  # the group hold-out does not


def test_a_grouped_inner_holdout_keeps_groups_whole_and_an_ungrouped_one_is_unchanged() -> None:
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(30), rng.integers(3, 8, 30)).astype(str)
    labels = rng.integers(0, 3, 30)[np.unique(groups, return_inverse=True)[1]]
    fit, stop = inner_split(labels, 5, groups)
    assert not set(groups[fit]) & set(groups[stop])
    assert 0.05 < len(stop) / len(labels) < 0.3
    plain = inner_split(labels, 5)
    expected = train_test_split(
        np.arange(len(labels)), test_size=0.15, random_state=5, stratify=labels
    )
    assert [p.tolist() for p in plain] == [np.sort(e).tolist() for e in expected]
    assert inner_split(labels, 5, np.zeros(len(labels)).astype(str)) is None  # one group: none


def test_a_fold_whose_training_rows_hold_one_group_trains_without_a_holdout() -> None:
    """Two groups, two folds: each fold trains on one group. A hold-out of its rows would be
    a hold-out of a seen group, so there is none, and the fold says why."""
    from dataclasses import replace

    import pandas as pd

    from mmbench.data.table import MultiModalTable

    rng = np.random.default_rng(0)
    labels = np.arange(120) % 2
    x = pd.DataFrame({"a": rng.normal(size=120) + labels, "b": rng.normal(size=120)})
    groups = np.repeat(["p", "q"], 60)
    table = MultiModalTable("two", labels, ["a", "b"], tabular=x, groups=groups)
    folds = cv_folds(table.labels, 2, 1, seed=0, groups=table.groups)
    s = PipelineSpec.model_validate(
        {
            "encoders": {"tabular": "tabular"},
            "training": {**FAST_TRAINING, "threshold_tuning": True},
        }
    )
    cv = evaluate_pipeline(table, s, folds)
    assert cv.ok, cv.failures
    for fold in cv.folds:
        assert "one group" in fold.info["no_holdout"] and fold.info["threshold"] is None
    ungrouped = evaluate_pipeline(replace(table, groups=None), s, folds)
    assert "no_holdout" not in ungrouped.folds[0].info  # rows from one group, drawn by row

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from mmbench.errors import UnknownNameError
from mmbench.evaluation import (
    METRICS,
    chance_level,
    compute_metrics,
    cv_folds,
    derive_seed,
    macro_f1,
    mean_std,
    metric_names,
    predict_labels,
    summarize,
    tune_binary_threshold,
    undefined_note,
)


def random_proba(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.arange(k), rng.integers(0, k, n - k)])
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, proba


def test_binary_metrics_match_sklearn() -> None:
    y, p = random_proba(200, 2, 0)
    got = compute_metrics(y, p)
    assert got["f1_macro"] == pytest.approx(skm.f1_score(y, p.argmax(1), average="macro"))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p[:, 1]))
    assert got["pr_auc"] == pytest.approx(skm.average_precision_score(y, p[:, 1]))
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, p.argmax(1)))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, p))


def test_multiclass_metrics_match_sklearn() -> None:
    y, p = random_proba(300, 4, 1)
    got = compute_metrics(y, p)
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr"))
    per_class = [skm.average_precision_score(y == c, p[:, c]) for c in range(4)]
    assert got["pr_auc"] == pytest.approx(np.mean(per_class))
    assert got["f1_macro"] == pytest.approx(skm.f1_score(y, p.argmax(1), average="macro"))


def test_threshold_changes_label_metrics_only() -> None:
    y, p = random_proba(200, 2, 2)
    base = compute_metrics(y, p)
    shifted = compute_metrics(y, p, threshold=0.9)
    assert shifted["roc_auc"] == base["roc_auc"]
    expected = skm.f1_score(y, (p[:, 1] >= 0.9).astype(int), average="macro")
    assert shifted["f1_macro"] == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(20))
def test_macro_f1_is_sklearns_bit_for_bit(seed: int) -> None:
    """The one F1 (folds and training epochs) equals sklearn's, classes absent or not."""
    rng = np.random.default_rng(seed)
    k, n = int(rng.integers(2, 6)), int(rng.integers(1, 60))
    y, pred = rng.integers(0, k - 1, n), rng.integers(0, k, n)  # class k-1 never true
    expected = skm.f1_score(y, pred, average="macro", labels=range(k), zero_division=0)
    assert macro_f1(y, pred, k) == expected
    onehot = np.eye(k)[pred]
    assert compute_metrics(y, onehot, ["f1_macro"])["f1_macro"] == expected


def test_macro_f1_counts_a_class_never_seen_nor_predicted_as_zero() -> None:
    assert macro_f1(np.array([0, 1]), np.array([0, 1]), 3) == pytest.approx(2 / 3)


def test_label_metrics_declare_it_and_get_thresholded_labels() -> None:
    labelled = {m for m in metric_names() if METRICS.get(m).needs_labels}
    assert labelled == {"f1_macro", "balanced_accuracy", "accuracy"}
    y = np.array([0, 1, 1, 1])
    p = np.array([[0.9, 0.1], [0.7, 0.3], [0.6, 0.4], [0.2, 0.8]])
    base = compute_metrics(y, p, threshold=None)
    low = compute_metrics(y, p, threshold=0.25)  # every row with P(1) >= 0.25 is class 1
    assert (base["accuracy"], low["accuracy"]) == (0.5, 1.0)
    assert base["log_loss"] == low["log_loss"] and base["roc_auc"] == low["roc_auc"]


def test_tune_binary_threshold_finds_the_best_cut() -> None:
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    p = np.array([0.05, 0.1, 0.2, 0.3, 0.32, 0.4, 0.6, 0.9])
    t = tune_binary_threshold(y, p)
    assert 0.2 < t <= 0.3  # everything from 0.3 up: F1 = 8/9, the best achievable
    assert tune_binary_threshold(np.zeros(4), np.linspace(0, 1, 4)) == 0.5


def test_a_row_exactly_at_the_threshold_is_predicted_positive() -> None:
    """tune_binary_threshold's contract: predict 1 iff P(class 1) >= t, in scoring too."""
    proba = np.array([[0.6, 0.4], [0.7, 0.3], [0.8, 0.2]])
    y = np.array([1, 0, 0])
    assert list(predict_labels(proba, threshold=0.4)) == [1, 0, 0]
    assert compute_metrics(y, proba, ["accuracy"], threshold=0.4)["accuracy"] == 1.0


def test_undefined_metric_is_nan_not_crash() -> None:
    y = np.zeros(5, dtype=int)
    p = np.tile([0.6, 0.4], (5, 1))
    assert np.isnan(compute_metrics(y, p, ["roc_auc"])["roc_auc"])


def test_directions_and_unknown_metric() -> None:
    assert METRICS.get("log_loss").higher_is_better is False
    assert METRICS.get("f1_macro").higher_is_better is True
    assert metric_names()[0] == "f1_macro"  # registration order, the suite's vocabulary
    with pytest.raises(UnknownNameError, match="did you mean 'roc_auc'"):
        METRICS.get("rocauc")


@pytest.mark.parametrize("majority", [0, 2])
def test_chance_level_is_majority_f1_and_half_auc(majority: int) -> None:
    """README: chance is the class prior predicted for every row; for macro-F1 that is always
    the majority class, whichever class it is (not class 0 by accident of an arg-max tie)."""
    y = np.array([0] * 70 + [1] * 20 + [2] * 10)
    y = np.where(y == 0, majority, np.where(y == majority, 0, y))
    majority_f1 = skm.f1_score(y, np.full_like(y, majority), average="macro")
    assert chance_level("f1_macro", y, 3) == pytest.approx(majority_f1)
    assert chance_level("accuracy", y, 3) == pytest.approx(0.7)
    assert chance_level("roc_auc", y, 3) == pytest.approx(0.5)


def test_cv_folds_stratified_disjoint_and_seeded() -> None:
    y = np.array([0] * 60 + [1] * 30 + [2] * 10)
    folds = cv_folds(y, folds=5, repeats=2, seed=7)
    assert len(folds) == 10
    for r in range(2):
        valid = np.concatenate([f.valid for f in folds if f.repeat == r])
        assert sorted(valid) == list(range(100))  # each row validated once per repeat
    for f in folds:
        assert not set(f.train) & set(f.valid)
        assert np.bincount(y[f.valid], minlength=3).tolist() == [12, 6, 2]
    again = cv_folds(y, folds=5, repeats=2, seed=7)
    assert all(
        np.array_equal(a.valid, b.valid) and a.seed == b.seed
        for a, b in zip(folds, again, strict=True)
    )
    assert not np.array_equal(folds[0].valid, folds[5].valid)  # repeats reshuffle
    other = cv_folds(y, folds=5, repeats=1, seed=8)
    assert not np.array_equal(folds[0].valid, other[0].valid)


def test_derive_seed_stable_and_distinct() -> None:
    assert derive_seed(0, "a", 1) == derive_seed(0, "a", 1)
    assert derive_seed(0, "a", 1) != derive_seed(0, "a", 2)
    assert 0 <= derive_seed("x") < 2**31


def test_summarize_mean_std_skips_nan() -> None:
    s = summarize([{"f1_macro": 0.5}, {"f1_macro": 0.7}, {"f1_macro": float("nan")}])
    assert s["f1_macro"]["mean"] == pytest.approx(0.6)
    assert s["f1_macro"]["std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))


def test_summarize_counts_the_folds_a_metric_is_undefined_in() -> None:
    s = summarize([{"pr_auc": 0.5}, {"pr_auc": float("nan")}, {"pr_auc": 0.7}, {"pr_auc": 0.6}])
    assert s["pr_auc"]["mean"] == pytest.approx(0.6) and s["pr_auc"]["undefined"] == 1
    assert summarize([{"f1_macro": 0.5}])["f1_macro"]["undefined"] == 0
    assert undefined_note(s["pr_auc"]) == " (1 fold undefined)"
    assert undefined_note({"undefined": 2}) == " (2 folds undefined)"
    assert undefined_note({"mean": 0.5}) == ""  # a summary older than the count
    assert mean_std([float("nan")] * 3) == {
        "mean": pytest.approx(float("nan"), nan_ok=True),
        "std": pytest.approx(float("nan"), nan_ok=True),
        "undefined": 3,
    }


def test_pr_auc_with_a_class_absent_is_undefined_not_zero() -> None:
    """sklearn scores an absent class's average precision 0 (and warns); its curve does not
    exist, so the macro over classes is undefined, as AUC is."""
    import math
    import warnings

    y, p = random_proba(300, 4, 3)
    keep = y != 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = compute_metrics(y[keep], p[keep], ["pr_auc", "roc_auc", "f1_macro"])
    assert math.isnan(got["pr_auc"]) and math.isnan(got["roc_auc"])
    assert not caught  # said by the NaN, not by sklearn's "No positive class found" warning
    assert math.isfinite(got["f1_macro"])
    yb, pb = random_proba(100, 2, 4)
    assert math.isnan(compute_metrics(np.zeros(50, dtype=int), pb[:50], ["pr_auc"])["pr_auc"])
    assert compute_metrics(yb, pb, ["pr_auc"])["pr_auc"] > 0.5


def test_log_loss_of_confident_predictions_is_finite_and_quiet() -> None:
    import warnings

    y = np.array([0, 1])
    proba = np.array([[1.0, 0.0, 0.0], [0.0, 1.0 - 1e-12, 1e-12]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "y_prob values do not sum to one" would raise
        value = compute_metrics(y, proba, ["log_loss"])["log_loss"]
    assert 0 < value < 1e-5


def test_class_weights_tuned_for_macro_f1_favour_the_rare_class() -> None:
    from mmbench.evaluation import compute_metrics, tune_class_weights

    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.1).astype(np.int64)  # 10 % minority
    p1 = np.clip(0.25 * y + rng.normal(0.15, 0.1, 2000), 0.001, 0.999)  # under-confident
    proba = np.stack([1 - p1, p1], axis=1)
    weights = tune_class_weights(y, proba, "f1_macro")
    assert weights is not None and weights[1] > weights[0]
    before = compute_metrics(y, proba, ["f1_macro", "roc_auc"])
    after = compute_metrics(y, proba, ["f1_macro", "roc_auc"], weights=weights)
    assert after["f1_macro"] > before["f1_macro"] + 0.05
    assert after["roc_auc"] == before["roc_auc"]  # ranking metrics ignore the decision rule
    assert tune_class_weights(y, proba, "log_loss") is None


def test_grouped_folds_never_split_a_group_and_stay_stratified() -> None:
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(60), rng.integers(2, 9, 60))  # 60 groups of 2-8 rows
    labels = rng.integers(0, 3, 60)[groups]  # a group's rows share a label, like a speaker's
    folds = cv_folds(labels, 5, 2, seed=7, groups=groups.astype(str))
    assert len(folds) == 10
    for r in (0, 1):
        valid = [f.valid for f in folds if f.repeat == r]
        assert sorted(np.concatenate(valid).tolist()) == list(range(len(labels)))  # a partition
        for f in (f for f in folds if f.repeat == r):
            assert not set(groups[f.train]) & set(groups[f.valid])  # no group on both sides
            share = np.bincount(labels[f.valid], minlength=3) / len(f.valid)
            assert np.all(np.abs(share - np.bincount(labels, minlength=3) / len(labels)) < 0.15)
    first = [tuple(f.valid) for f in folds if f.repeat == 0]
    second = [tuple(f.valid) for f in folds if f.repeat == 1]
    assert first != second  # each repeat reshuffles the groups
    again = cv_folds(labels, 5, 2, seed=7, groups=groups.astype(str))
    assert all(np.array_equal(a.valid, b.valid) for a, b in zip(folds, again, strict=True))


def test_a_failed_folds_rows_take_no_part_in_the_decision_rule() -> None:
    """A fold that failed after writing its probabilities is not scored: its rows neither
    tune the rule nor count in the gain that adopts it."""
    import dataclasses

    from mmbench.evaluation import decide
    from mmbench.pipeline import FoldResult

    @dataclasses.dataclass
    class CV:
        folds: list
        oof: np.ndarray
        decision: object = None

    rng = np.random.default_rng(0)
    labels = rng.choice(3, 600, p=[0.7, 0.2, 0.1])
    logits = rng.normal(size=(600, 3)) + 1.2 * np.eye(3)[labels] + [1.0, 0.0, 0.0]
    oof = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True))[None]
    folds = cv_folds(labels, 5, 1, seed=0)
    results = [FoldResult(f.key, compute_metrics(labels[f.valid], oof[0, f.valid])) for f in folds]
    results[0] = FoldResult(folds[0].key, error="RuntimeError: after predicting")
    garbage = oof.copy()
    garbage[0, folds[0].valid] = np.eye(3)[rng.integers(0, 3, len(folds[0].valid))]
    hidden = oof.copy()
    hidden[0, folds[0].valid] = np.nan
    got = decide(CV(results, garbage), labels, folds, "f1_macro").decision
    want = decide(CV(results, hidden), labels, folds, "f1_macro").decision
    assert got.gain == pytest.approx(want.gain) and set(got.fold_weights) == set(want.fold_weights)
    assert (got.weights is None) == (want.weights is None)
    if want.weights is not None:
        assert got.weights == pytest.approx(want.weights)


def test_a_large_table_is_scored_on_the_first_fold_of_the_same_split() -> None:
    from mmbench.evaluation import Protocol

    labels = np.random.default_rng(0).choice(3, 1000, p=[0.6, 0.3, 0.1])
    protocol = Protocol(folds=5, repeats=2, large_table_rows=1000)
    full = cv_folds(labels, 5, 2, seed=3)
    cut = protocol.folds_for(labels, seed=3)
    assert [f.key for f in cut] == ["r0f0", "r1f0"]  # the first fold of each repeat
    for got in cut:
        want = next(f for f in full if f.key == got.key)
        assert np.array_equal(got.valid, want.valid) and np.array_equal(got.train, want.train)
    assert len(protocol.folds_for(labels[:999], seed=3)) == 10  # below the size: every fold
    assert len(Protocol(large_table_rows=None).folds_for(labels, seed=3)) == 5
    assert len(Protocol(large_table_rows=500, large_table_folds=2).folds_for(labels, 3)) == 2
    assert "first 1 of 5 folds" in protocol.describe(1000)
    assert protocol.describe(999) == "stratified 5-fold x 2 CV"


def test_a_lone_folds_decision_rule_is_cross_fitted_between_its_halves() -> None:
    """One scored fold has no other folds to tune on: each half of its rows is scored with
    the weights tuned on the other half, so its rows never tune their own decision."""
    from sklearn.model_selection import StratifiedKFold

    from mmbench.evaluation import Protocol, fit_decision_rule, tune_class_weights

    rng = np.random.default_rng(0)
    labels = (rng.random(3000) < 0.2).astype(np.int64)
    p1 = np.clip(0.2 + 0.25 * labels + rng.normal(0, 0.12, 3000), 0.01, 0.99)  # under-confident
    [fold] = Protocol(large_table_rows=3000).folds_for(labels, seed=0)
    oof = np.full((1, 3000, 2), np.nan)
    oof[0, fold.valid] = np.stack([1 - p1, p1], axis=1)[fold.valid]
    rule = fit_decision_rule(oof, labels, [fold], "f1_macro")
    assert rule.weights is not None and rule.gain > 0.02  # adopted: arg-max misses the rare class
    per_row = rule.fold_weights[fold.key]
    assert per_row.shape == (len(fold.valid), 2)
    y, proba = labels[fold.valid], oof[0, fold.valid]
    halves = StratifiedKFold(2, shuffle=True, random_state=fold.seed % 2**32).split(proba, y)
    for tune, scored in halves:
        assert np.allclose(per_row[scored], tune_class_weights(y[tune], proba[tune], "f1_macro"))
    # a class with a single row in the fold: no half could tune for it, so no rule
    few = labels.copy()
    few[fold.valid] = 0
    few[fold.valid[0]] = 1
    assert fit_decision_rule(oof, few, [fold], "f1_macro").weights is None

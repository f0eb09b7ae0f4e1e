"""The paired bootstrap scores rows exactly as the metric registry does, and pairs them fairly."""

from __future__ import annotations

import numpy as np
import pytest

from mmbench.evaluation import METRICS, predict_labels
from mmbench.gate.paired import RowPredictions, holm, paired_bootstrap, resample_weights, score


def rows(seed: int = 0, n: int = 300, k: int = 3, folds: int = 3) -> RowPredictions:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    proba = rng.dirichlet(np.ones(k), n)
    proba[np.arange(n), labels] += rng.random(n)  # informative
    proba /= proba.sum(axis=1, keepdims=True)
    fold = (np.arange(n) % folds)[None]
    return RowPredictions(labels, fold, predict_labels(proba)[None], proba[None], k)


@pytest.mark.parametrize(
    "metric", ["f1_macro", "accuracy", "balanced_accuracy", "log_loss", "roc_auc"]
)
def test_unit_weights_reproduce_the_registry_metric(metric: str) -> None:
    """With every row weighted once, the score is the mean of the registry's fold metrics."""
    r = rows()
    ones = np.ones((1, len(r.labels)), dtype=np.float32)
    expected = np.mean(
        [
            METRICS.get(metric).fn(
                r.labels[r.folds[0] == f],
                np.eye(3)[r.pred[0, r.folds[0] == f]]
                if METRICS.get(metric).needs_labels
                else r.proba[0, r.folds[0] == f],  # type: ignore[index]
            )
            for f in range(3)
        ]
    )
    assert score(metric, r, ones)[0] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("k", [2, 3])
def test_vectorised_auc_is_the_registry_auc_of_the_resampled_rows(k: int) -> None:
    """Every resample's AUC, computed for all resamples at once, equals sklearn's on the rows
    the resample drew (ties in quantised probabilities included)."""
    from mmbench.gate.paired import weighted_auc

    r = rows(seed=3, n=120, k=k, folds=1)
    proba = np.round(r.proba[0] * 20) + 1  # type: ignore[index]
    proba /= proba.sum(axis=1, keepdims=True)  # sklearn wants rows that sum to 1
    assert len(np.unique(proba[:, 0])) < len(proba) / 2  # many tied scores
    weights = resample_weights(r.folds[0], 25, seed=1)
    fast = weighted_auc(weights, r.labels, proba)
    for b, counts in enumerate(weights.astype(np.int64)):
        idx = np.repeat(np.arange(len(r.labels)), counts)
        assert fast[b] == pytest.approx(METRICS.get("roc_auc").fn(r.labels[idx], proba[idx]))


def test_every_resample_keeps_every_folds_size() -> None:
    """README: the gate's bootstrap is resampled within each fold. Every resample draws each
    fold's rows from that fold only, as many as it has (folds of unequal sizes included)."""
    folds = np.repeat([0, 1, 2, 3], [50, 80, 20, 130])
    np.random.default_rng(0).shuffle(folds)
    weights = resample_weights(folds, resamples=500, seed=3)
    assert weights.shape == (500, len(folds))
    for f, size in zip(*np.unique(folds, return_counts=True), strict=True):
        np.testing.assert_array_equal(weights[:, folds == f].sum(axis=1), size)
    assert weights.std(axis=0).min() > 0  # every row is resampled, none pinned


def test_a_change_within_one_small_fold_counts_in_every_resample() -> None:
    """Resampled within each fold, no fold is ever emptied: a change confined to a one-row fold
    moves that fold's score, hence the mean over folds, by the same amount in every resample."""
    labels = np.zeros(100, dtype=np.int64)
    folds = np.where(np.arange(100) == 0, 0, 1)[None]
    base = RowPredictions(labels, folds, labels[None].copy(), None, 2)
    pred = labels.copy()
    pred[0] = 1  # the one row of fold 0, now wrong: its fold drops from 1 to 0
    test = paired_bootstrap("accuracy", base, RowPredictions(labels, folds, pred[None], None, 2))
    assert (test.delta, test.low, test.high) == (-0.5, -0.5, -0.5)


def test_resamples_pair_both_sides() -> None:
    base = rows()
    same = paired_bootstrap("f1_macro", base, base, resamples=200)
    assert (same.delta, same.low, same.high, same.p_value, same.rows_changed) == (0, 0, 0, 1, 0)
    other = rows(seed=1)
    other = RowPredictions(base.labels, base.folds, other.pred, None, 3)
    test = paired_bootstrap("f1_macro", base, other, resamples=200)
    assert test.low <= test.delta <= test.high
    assert test.p_drop + test.p_gain >= 1  # one-sided p-values of opposite tails


def test_mismatched_rows_are_refused() -> None:
    base = rows()
    shifted = RowPredictions(base.labels, (base.folds + 1) % 3, base.pred, None, 3)
    with pytest.raises(ValueError, match="same folds"):
        paired_bootstrap("f1_macro", base, shifted)


def test_holm_is_monotone_and_capped() -> None:
    assert holm([0.001, 0.5, 0.02]) == pytest.approx([0.003, 0.5, 0.04])
    assert holm([0.4, 0.4]) == pytest.approx([0.8, 0.8])
    assert holm([0.9, 0.8]) == [1.0, 1.0]


def rare_class_rows(folds: int, seed: int = 0) -> RowPredictions:
    """100 rows per fold, each fold holding a single row of class 2: about a third of the
    resamples draw none of it, and the fold's AUC is then undefined on that resample."""
    rng = np.random.default_rng(seed)
    fold = np.arange(100 * folds) % folds
    labels = rng.integers(0, 2, len(fold))
    labels[[np.flatnonzero(fold == f)[0] for f in range(folds)]] = 2
    proba = rng.dirichlet(np.ones(3), len(fold))
    proba[np.arange(len(fold)), labels] += 0.5
    proba /= proba.sum(axis=1, keepdims=True)
    return RowPredictions(labels, fold[None], predict_labels(proba)[None], proba[None], 3)


def test_resamples_where_the_metric_is_undefined_are_neither_drops_nor_gains() -> None:
    """Identical predictions: every kept resample's difference is 0, so both p-values are 1;
    a resample where a fold's AUC is undefined leaves that fold out of both sides (four
    folds: most resamples), and one where no fold is defined (one fold) is dropped."""
    r = rare_class_rows(4)
    same = paired_bootstrap("roc_auc", r, r, resamples=100)
    assert (same.p_drop, same.p_gain, same.low, same.high) == (1.0, 1.0, 0.0, 0.0)
    assert same.resamples_partial > 60 and same.kept == 100 - same.resamples_dropped
    assert same.undefined_folds == 0

    one = rare_class_rows(1)
    worse = RowPredictions(one.labels, one.folds, one.pred, one.proba[:, ::-1][:, :, [2, 1, 0]], 3)
    test = paired_bootstrap("roc_auc", one, worse, resamples=100)
    assert 15 < test.resamples_dropped < 60 and test.kept == 100 - test.resamples_dropped
    assert test.p_drop == pytest.approx(1 / (test.kept + 1)) and test.high < 0


def test_a_fold_undefined_in_the_data_is_left_out_of_the_score() -> None:
    """A fold lacking a class has no AUC: the score is the mean over the other folds, the
    result file's number, and the paired test says it left one out."""
    r = rows(folds=3)
    labels = r.labels.copy()
    labels[(r.folds[0] == 0) & (labels == 2)] = 1
    r = RowPredictions(labels, r.folds, r.pred, r.proba, 3)
    ones = np.ones((1, len(labels)), dtype=np.float32)
    per_fold = [METRICS.get("roc_auc").fn(labels[r.folds[0] == f], r.proba[0, r.folds[0] == f])
                for f in range(3)]  # fmt: skip
    assert np.isnan(per_fold[0])
    assert score("roc_auc", r, ones)[0] == pytest.approx(np.mean(per_fold[1:]))
    assert paired_bootstrap("roc_auc", r, r, resamples=50).undefined_folds == 1

"""Row-level paired statistics: is a rerun's score on the *same rows and folds* really different?

A regression gate sees two sets of out-of-fold predictions of one dataset, made on identical
folds: the baseline's and the rerun's. Fold means are too coarse to compare them (five numbers
whose spread is the task's fold-to-fold variation, not the change's), but every row is paired:
a change that matters moves many rows the same way, while run-to-run noise (another BLAS build,
thread count or CPU) flips a few rows both ways.

:func:`paired_bootstrap` resamples *rows* with replacement, separately within each fold (so
every fold keeps its size and its rows' difficulty), recomputes the primary metric of both
prediction sets on every resample with the *same* row weights, and returns the distribution of
the difference. Because the metric is recomputed, it works for metrics that are not a per-row
mean (macro-F1 is a ratio of counts; it is computed from weighted confusion counts, vectorised).
The score of a set of predictions is the mean over folds of the fold metric, exactly what a
result file reports: over the folds where it is defined. A fold's metric can be undefined (NaN:
AUC or PR-AUC on rows that lack a class, in the data or in a resample that drew none of a rare
class's rows); such a fold is left out of *both* sets' means on that resample, so the two stay
paired, and a resample where no fold is defined in both is dropped: the interval and the
p-values are over the resamples kept, and :class:`PairedTest` counts what was left out, instead
of a NaN comparison silently counting as neither a drop nor a gain. With repeated CV, a row's resampling weight is drawn once (stratified by
the first repeat's folds) and used in every repeat: the row, not its copy, is the sampled unit.

:func:`holm` controls the family-wise error over several datasets (Holm's step-down).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmbench.evaluation import METRICS

RESAMPLES = 2000
LABEL_METRICS = ("f1_macro", "accuracy", "balanced_accuracy")
"""Metrics of predicted labels computed from weighted confusion counts (fast path)."""
VECTORISED = (*LABEL_METRICS, "log_loss", "roc_auc")
"""Metrics computed for every resample at once; any other is recomputed one resample at a time."""


@dataclass(frozen=True)
class RowPredictions:
    """One pipeline's out-of-fold predictions of every row, for every CV repeat.

    ``folds[r, i]`` is the fold (within repeat ``r``) that validated row ``i`` (``-1``: none);
    ``pred`` the predicted labels after each fold's decision threshold; ``proba`` the class
    probabilities, kept only when the metric scores probabilities (log-loss, AUC).
    """

    labels: np.ndarray
    folds: np.ndarray
    pred: np.ndarray
    proba: np.ndarray | None
    n_classes: int

    def __post_init__(self) -> None:
        if self.folds.shape != self.pred.shape or self.folds.shape[1:] != self.labels.shape:
            raise ValueError("labels, folds and pred must describe the same rows and repeats")


@dataclass(frozen=True)
class PairedTest:
    """The bootstrap comparison of a rerun with its baseline on one dataset.

    ``delta`` and the interval are ``current − baseline`` in metric units; ``p_drop`` and
    ``p_gain`` are one-sided bootstrap p-values for "worse" and "better" (orientation follows
    the metric's ``higher_is_better``), the ones the gate uses; ``p_value`` is the two-sided one.
    """

    delta: float
    low: float
    high: float
    p_drop: float
    p_gain: float
    resamples: int
    rows_changed: int
    undefined_folds: int = 0
    """Folds left out of ``delta`` because the metric is undefined there in either set."""
    resamples_partial: int = 0
    """Resamples whose means left out a fold that ``delta`` kept (a class drawn out of it)."""
    resamples_dropped: int = 0
    """Resamples with no fold defined in both sets: not in the interval or the p-values."""

    @property
    def kept(self) -> int:
        """Resamples the interval and the p-values are computed over."""
        return self.resamples - self.resamples_dropped

    @property
    def p_value(self) -> float:
        return min(1.0, 2.0 * min(self.p_drop, self.p_gain))


def paired_bootstrap(
    metric: str,
    baseline: RowPredictions,
    current: RowPredictions,
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> PairedTest:
    """Paired bootstrap of ``metric(current) − metric(baseline)`` over rows, stratified by fold."""
    why = unpaired(baseline, current)
    if why:
        raise ValueError(f"the two prediction sets {why}")
    weights = resample_weights(baseline.folds[0], resamples, seed)
    ones = np.ones((1, len(baseline.labels)), dtype=np.float32)
    observed, left_out = paired_difference(metric, baseline, current, ones)
    diffs, partial = paired_difference(metric, baseline, current, weights)
    defined = np.isfinite(diffs)
    gain = (1.0 if METRICS.get(metric).higher_is_better else -1.0) * diffs[defined]
    kept = len(gain)
    low, high = np.quantile(diffs[defined], [0.025, 0.975]) if kept else (np.nan, np.nan)
    changed = int(np.any(baseline.pred != current.pred, axis=0).sum())
    return PairedTest(
        delta=float(observed[0]),
        low=float(low),
        high=float(high),
        p_drop=float((1 + np.sum(gain >= 0)) / (kept + 1)),
        p_gain=float((1 + np.sum(gain <= 0)) / (kept + 1)),
        resamples=resamples,
        rows_changed=changed,
        undefined_folds=int(left_out[0]),
        resamples_partial=int(np.sum(defined & (partial > left_out[0]))),
        resamples_dropped=int(resamples - kept),
    )


def unpaired(baseline: RowPredictions, current: RowPredictions) -> str:
    """Why two prediction sets cannot be compared row by row; empty when they can (the same
    rows, labels and folds)."""
    if baseline.folds.shape != current.folds.shape or baseline.n_classes != current.n_classes:
        return "were not made on the same rows"
    if not np.array_equal(baseline.folds, current.folds):
        return "were not made on the same folds"
    if not np.array_equal(baseline.labels, current.labels):
        return "score different labels"
    return ""


def paired_difference(
    metric: str, baseline: RowPredictions, current: RowPredictions, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``score(current) − score(baseline)`` under each row weighting, both over the folds where
    the metric is defined in both sets (NaN where there is none), and how many folds each
    weighting left out: two arrays of shape ``(B,)``."""
    a, b = fold_scores(metric, current, weights), fold_scores(metric, baseline, weights)
    both = np.isfinite(a) & np.isfinite(b)
    return _mean_defined(a, both) - _mean_defined(b, both), (~both).sum(axis=1)


def resample_weights(strata: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """``(resamples, n)`` row counts of a bootstrap that keeps every stratum's size."""
    rng = np.random.default_rng(seed)
    weights = np.zeros((resamples, len(strata)), dtype=np.float32)
    for s in np.unique(strata):
        idx = np.flatnonzero(strata == s)
        weights[:, idx] = rng.multinomial(len(idx), np.full(len(idx), 1.0 / len(idx)), resamples)
    return weights


def score(metric: str, rows: RowPredictions, weights: np.ndarray) -> np.ndarray:
    """The metric (mean over the folds and repeats where it is defined, as a result file
    reports it; NaN where none is) under each row weighting: shape ``(B,)``."""
    scores = fold_scores(metric, rows, weights)
    return _mean_defined(scores, np.isfinite(scores))


def fold_scores(metric: str, rows: RowPredictions, weights: np.ndarray) -> np.ndarray:
    """Every fold's metric (repeats one after another) under each row weighting: ``(B, folds)``."""
    columns = []
    for r in range(rows.folds.shape[0]):
        for f in np.unique(rows.folds[r][rows.folds[r] >= 0]):
            idx = np.flatnonzero(rows.folds[r] == f)
            proba = None if rows.proba is None else rows.proba[r, idx]
            labels, pred = rows.labels[idx], rows.pred[r, idx]
            columns.append(fold_score(metric, weights[:, idx], labels, pred, proba, rows.n_classes))
    return np.stack(columns, axis=1) if columns else np.empty((len(weights), 0))


def _mean_defined(scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Row means of ``scores`` over the entries ``mask`` keeps (NaN for a row it keeps none of)."""
    count = mask.sum(axis=1)
    total = np.where(mask, scores, 0.0).sum(axis=1)
    return np.divide(total, count, out=np.full(len(scores), np.nan), where=count > 0)


def fold_score(
    metric: str,
    w: np.ndarray,
    y: np.ndarray,
    pred: np.ndarray,
    proba: np.ndarray | None,
    n_classes: int,
) -> np.ndarray:
    """One fold's metric under row weights ``w`` (``(B, m)``), as the metric registry defines it."""
    if metric in LABEL_METRICS:
        eye = np.eye(n_classes, dtype=np.float32)
        n_true = w @ eye[y]
        n_pred = w @ eye[pred]
        tp = w @ (eye[y] * (y == pred)[:, None])
        if metric == "accuracy":
            return tp.sum(axis=1) / np.maximum(w.sum(axis=1), 1e-12)
        if metric == "f1_macro":
            denom = n_true + n_pred
            f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
            return f1.mean(axis=1)
        recall = np.divide(tp, n_true, out=np.zeros_like(tp), where=n_true > 0)
        return recall.sum(axis=1) / np.maximum((n_true > 0).sum(axis=1), 1)
    if proba is None:
        raise ValueError(f"metric {metric!r} needs the stored class probabilities")
    if metric == "log_loss":
        clipped = np.clip(proba, 1e-7, 1.0)
        clipped /= clipped.sum(axis=1, keepdims=True)
        loss = -np.log(clipped[np.arange(len(y)), y])
        return (w @ loss) / np.maximum(w.sum(axis=1), 1e-12)
    if metric == "roc_auc":
        return weighted_auc(w, y, proba)
    return _generic(metric, w, y, proba)


def weighted_auc(w: np.ndarray, y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """ROC-AUC as the registry defines it (binary on class 1, else macro one-vs-rest; NaN when
    a class has no row), under every row weighting at once: the weighted share of
    (positive, negative) pairs ranked the right way, ties counting half: ``(B,)``."""
    n_classes = proba.shape[1]
    classes = [1] if n_classes == 2 else range(n_classes)
    present = np.stack([w[:, y == c].sum(axis=1) > 0 for c in range(n_classes)], axis=1)
    aucs = [_auc_one(w, y == c, proba[:, c]) for c in classes]
    return np.where(present.all(axis=1), np.mean(aucs, axis=0), np.nan)


def _auc_one(w: np.ndarray, positive: np.ndarray, s: np.ndarray) -> np.ndarray:
    order = np.argsort(s, kind="stable")
    sorted_s, sorted_pos, ws = s[order], positive[order], w[:, order]
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])  # groups of tied scores
    pos = np.add.reduceat(ws * sorted_pos, starts, axis=1)
    neg = np.add.reduceat(ws * ~sorted_pos, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg  # negative weight scored strictly lower
    pairs = pos.sum(axis=1) * neg.sum(axis=1)
    right = (pos * (below + 0.5 * neg)).sum(axis=1)
    return np.divide(right, pairs, out=np.full(len(w), np.nan), where=pairs > 0)


def _generic(metric: str, w: np.ndarray, y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Any registered metric, one resample at a time (slow; PR-AUC)."""
    fn = METRICS.get(metric).fn
    out = np.empty(len(w))
    for b, counts in enumerate(w.astype(np.int64)):
        idx = np.repeat(np.arange(len(y)), counts)
        try:
            out[b] = fn(y[idx], proba[idx])
        except ValueError:
            out[b] = np.nan
    return out


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values: reject those ``<= alpha`` to keep the family-wise error
    rate at ``alpha`` over all the datasets gated together, whatever their dependence."""
    m = len(p_values)
    order = np.argsort(p_values, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[i])))
        adjusted[i] = running
    return [float(a) for a in adjusted]

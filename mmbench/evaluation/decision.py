"""The decision rule that turns a candidate's probabilities into labels.

One rule for every row of a comparison (:func:`fit_decision_rule`, :func:`decide`) — mmbench's
pipelines, the final model, reference pipelines and peers alike — fitted on each candidate's
own out-of-fold probabilities, so that no row wins a decision-dependent metric by its rule alone.
The label tuners (:func:`tune_class_weights`, :func:`tune_binary_threshold`) are here too.
"""

from __future__ import annotations

import dataclasses
import math
import typing
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np

from mmbench.evaluation.metrics import METRICS, compute_metrics
from mmbench.evaluation.splits import Fold


def tune_class_weights(
    y: np.ndarray,
    proba: np.ndarray,
    metric: str,
    *,
    passes: int = 2,
    grid: Sequence[float] = (0.67, 0.8, 0.9, 1.1, 1.25, 1.5),
) -> np.ndarray | None:
    """Per-class weights ``w`` so that ``argmax(proba * w)`` maximizes label metric ``metric``.

    Decision-dependent metrics (macro-F1, balanced accuracy) reward predicting rare classes
    more often than the arg-max of calibrated probabilities does. Coordinate ascent over a small
    multiplicative grid, on out-of-fold predictions, keeps the rule to ``n_classes`` numbers;
    a weight moves only when that strictly improves the score. For two classes it amounts to a
    threshold on P(class 1). Returns None for metrics that score probabilities.
    """
    scorer = METRICS.get(metric)
    if not scorer.needs_labels:
        return None
    y = np.asarray(y, dtype=np.int64)
    eye = np.eye(proba.shape[1])

    def score(w: np.ndarray) -> float:
        return float(scorer.fn(y, eye[np.argmax(proba * w, axis=1)]))

    weights = np.ones(proba.shape[1])
    best = score(weights)
    for _ in range(passes):
        improved = False
        for c in range(len(weights)):
            for factor in grid:
                trial = weights.copy()
                trial[c] *= factor
                value = score(trial)
                if value > best + 1e-12:
                    best, weights, improved = value, trial, True
        if not improved:
            break
    return weights / weights.max()


def tune_binary_threshold(y_true: np.ndarray, proba_pos: np.ndarray) -> float:
    """The probability threshold maximising F1 of the positive class (predict 1 iff p >= t).

    Only cuts between distinct scores are considered, and the threshold returned is the midpoint
    between the two neighbouring scores, so it generalises better than an observed score. Ties
    go to the higher threshold; with no positive labels the default 0.5 is returned.
    """
    y = np.asarray(y_true).astype(bool)
    p = np.asarray(proba_pos, dtype=np.float64)
    if len(y) == 0 or not y.any():
        return 0.5
    order = np.argsort(-p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    tp = np.cumsum(y_sorted)
    k = np.arange(1, len(p) + 1)
    cut = np.r_[p_sorted[1:] < p_sorted[:-1], True]  # predicting the top k is achievable
    f1 = np.where(cut, 2 * tp / (k + y.sum()), -1.0)
    best = int(np.argmax(f1))
    lower = p_sorted[best + 1] if best + 1 < len(p) else min(0.0, p_sorted[best])
    return float((p_sorted[best] + lower) / 2)


MIN_DECISION_GAIN = 0.002
"""Cross-fitted gain in the primary metric a tuned rule needs over the candidate's own
decisions: below it the simpler rule is kept (the tuned one has ``n_classes`` parameters)."""


DecisionName = Literal[
    "arg-max",
    "binary threshold tuned on each fold's inner hold-out",
    "class weights tuned on out-of-fold rows",
]
"""What a result file says its labels were decided by (:attr:`DecisionRule.name`)."""


ARG_MAX, OWN_THRESHOLD, TUNED_WEIGHTS = typing.get_args(DecisionName)


@dataclass(frozen=True)
class DecisionRule:
    """The rule that turned a candidate's probabilities into the labels its scores count.

    ``weights`` (None: the candidate's own decision, :attr:`own`) are per-class decision
    weights tuned on every out-of-fold row: what the candidate's model applies to new rows.
    ``fold_weights`` are the weights each fold's rows were scored with, tuned on the *other*
    folds' rows (a lone fold's: one row of weights per row, tuned on the other half); ``gain`` is the cross-fitted gain in the primary metric over :attr:`own` that
    adopted (or refused) the tuned rule, NaN when the metric scores probabilities.
    """

    weights: np.ndarray | None = None
    fold_weights: dict[str, np.ndarray] = field(default_factory=dict)
    gain: float = math.nan
    own: DecisionName = ARG_MAX

    @property
    def name(self) -> DecisionName:
        return TUNED_WEIGHTS if self.weights is not None else self.own


def fit_decision_rule(
    oof: np.ndarray,
    labels: np.ndarray,
    folds: Sequence[Fold],
    primary: str,
    own_scores: Sequence[float] | None = None,
    own: DecisionName = ARG_MAX,
) -> DecisionRule:
    """The decision rule of a candidate, from its ``(repeats, n, classes)`` OOF probabilities.

    Weights tuned on every out-of-fold row always look better on those rows. So each fold's
    rows are scored with weights tuned on the other folds' rows (cross-fitted; a lone fold, as
    a large table's hold-out protocol leaves, is cross-fitted between its two halves:
    :func:`_cross_fitted`), and the tuned
    rule is adopted only when that score beats the candidate's own decisions (``own_scores``
    per fold, default arg-max) by :data:`MIN_DECISION_GAIN`; the adopted weights are then
    tuned on every row. Folds without finite probabilities (a failed fold) are left out.
    """
    metric = METRICS.get(primary)
    if not metric.needs_labels:
        return DecisionRule(own=own)
    labels = np.asarray(labels, dtype=np.int64)
    fold_weights: dict[str, np.ndarray] = {}
    plain, tuned = [], []
    for i, fold in enumerate(folds):
        proba = oof[fold.repeat, fold.valid]
        if len(proba) == 0 or not np.isfinite(proba).all():
            continue
        weights = _cross_fitted(oof, labels, fold, primary)
        if weights is None:
            continue
        y = labels[fold.valid]
        base = own_scores[i] if own_scores is not None else math.nan
        if not math.isfinite(base):  # the arg-max decision
            base = compute_metrics(y, proba, [primary])[primary]
        plain.append(base)
        tuned.append(compute_metrics(y, proba, [primary], weights=weights)[primary])
        fold_weights[fold.key] = weights
    if not tuned:
        return DecisionRule(own=own)
    sign = 1.0 if metric.higher_is_better else -1.0
    gain = float(sign * (np.mean(tuned) - np.mean(plain)))
    if gain < MIN_DECISION_GAIN:
        return DecisionRule(gain=gain, own=own)
    with warnings.catch_warnings():  # rows no fold predicted stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        proba = np.nanmean(oof, axis=0)
    rows = np.isfinite(proba).all(axis=1)
    weights = tune_class_weights(labels[rows], proba[rows], primary)
    return DecisionRule(weights, fold_weights, gain, own)


def _cross_fitted(
    oof: np.ndarray, labels: np.ndarray, fold: Fold, primary: str
) -> np.ndarray | None:
    """The decision weights ``fold``'s rows are scored with, never tuned on those rows: tuned
    on the other folds' scored rows of its repeat, or, when it is the only scored fold (a large
    table's hold-out), one row of weights per row, each half of its rows (stratified, seeded by
    the fold) scored with the weights tuned on the other half. None: too few rows to tune."""
    scored = np.flatnonzero(np.isfinite(oof[fold.repeat]).all(axis=1))
    rest = np.setdiff1d(scored, fold.valid)
    if len(rest) > 0:
        return tune_class_weights(labels[rest], oof[fold.repeat, rest], primary)
    from sklearn.model_selection import StratifiedKFold

    y = labels[fold.valid]
    if len(y) < 4 or np.bincount(y)[np.unique(y)].min() < 2:
        return None
    proba = oof[fold.repeat, fold.valid]
    n_classes = oof.shape[2]
    out = np.ones((len(y), n_classes), dtype=np.float64)
    halves = StratifiedKFold(n_splits=2, shuffle=True, random_state=fold.seed % (2**32))
    for tune, score in halves.split(np.zeros(len(y)), y):
        out[score] = tune_class_weights(y[tune], proba[tune], primary)
    return out


Decided = TypeVar("Decided")


def decide(cv: Decided, labels: np.ndarray, folds: Sequence[Fold], primary: str) -> Decided:
    """``cv`` scored with the decision rule fitted on its own out-of-fold probabilities.

    The one place a candidate's decision rule is chosen: a pipeline's, a reference's, a
    peer's and the final model's CV (:class:`~mmbench.pipeline.CVResult`,
    :class:`~mmbench.peers.PeerCV`: dataclasses with ``folds``, ``oof`` and ``decision``) all
    pass here before they become result files, so every row of a comparison is scored by the
    same rule; the rows of a failed fold take no part in it. With a tuned rule adopted, each
    scored fold's metrics are recomputed with the weights tuned on the *other* folds' rows (its
    ``info["decision_weights"]``): the CV score is cross-fitted, never scored with weights
    tuned on its own rows. (Which of the two rules is
    adopted is decided on these folds: one choice, with a margin of :data:`MIN_DECISION_GAIN`.)
    Otherwise the folds keep their own scores. The rule is ``cv.decision`` of the copy returned.
    """
    oof: np.ndarray = cv.oof  # type: ignore[attr-defined]
    results = list(cv.folds)  # type: ignore[attr-defined]
    if len(results) != len(folds):
        raise ValueError(f"{len(results)} fold results for {len(folds)} folds")
    thresholded = any(r.info.get("threshold") is not None for r in results)
    scored = oof
    if not all(r.ok for r in results):  # a fold may fail after writing its probabilities
        scored = oof.copy()
        for r, f in zip(results, folds, strict=True):
            if not r.ok:
                scored[f.repeat, f.valid] = math.nan
    rule = fit_decision_rule(
        scored,
        labels,
        folds,
        primary,
        own_scores=[r.metrics.get(primary, math.nan) if r.ok else math.nan for r in results],
        own=OWN_THRESHOLD if thresholded else ARG_MAX,
    )
    if rule.weights is not None:
        results = [_rescored(r, f, oof, labels, rule) for r, f in zip(results, folds, strict=True)]
    return dataclasses.replace(cv, folds=results, decision=rule)  # type: ignore[type-var]


def _rescored(
    result: Any, fold: Fold, oof: np.ndarray, labels: np.ndarray, rule: DecisionRule
) -> Any:
    """A fold's result scored with its cross-fitted weights (unchanged when it has none)."""
    weights = rule.fold_weights.get(fold.key)
    if not result.ok or weights is None:
        return result
    proba = oof[fold.repeat, fold.valid]
    metrics = compute_metrics(
        labels[fold.valid], proba, list(result.metrics) or None, weights=weights
    )
    info = {**result.info, "decision_weights": np.asarray(weights, dtype=float).tolist()}
    return dataclasses.replace(result, metrics=metrics, info=info)

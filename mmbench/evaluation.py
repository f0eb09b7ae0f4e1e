"""The evaluation protocol: stratified repeated k-fold splits and every metric, in one place.

Candidates only produce out-of-fold probabilities; this module turns them into scores. Each
metric declares ``higher_is_better`` so that search, leaderboards and regression gates never
guess a direction, and ``needs_labels`` when it scores hard labels (arg-max, or a tuned binary
threshold) rather than probabilities. The label helpers (:func:`macro_f1`,
:func:`tune_binary_threshold`) are here too, so that training loops report and tune with the
same F1 that scores folds.

The decision rule that turns a candidate's probabilities into labels is here too
(:func:`fit_decision_rule`, :func:`decide`): one rule for every row of a comparison — mmbench's
pipelines, the final model, reference pipelines and peers alike — fitted on each candidate's
own out-of-fold probabilities, so that no row wins a decision-dependent metric by its rule alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import typing
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
from pydantic import Field

from mmbench.config import StrictModel
from mmbench.registry import Registry


@dataclass(frozen=True)
class Metric:
    """A registered metric: ``fn(labels, proba)`` and what callers must know about it.

    ``needs_labels``: the metric scores hard predictions, so :func:`compute_metrics` hands it
    thresholded probabilities when a binary threshold was tuned.
    """

    name: str
    fn: Callable[[np.ndarray, np.ndarray], float]
    higher_is_better: bool
    label: str
    needs_labels: bool = False


METRICS: Registry[Metric] = Registry("metric")
"""Every metric by name; registration order is the order suites list them in messages."""


def _metric(
    name: str, label: str, *, higher_is_better: bool = True, needs_labels: bool = False
) -> Callable[..., Metric]:
    def decorator(fn: Callable[[np.ndarray, np.ndarray], float]) -> Metric:
        metric = Metric(name, fn, higher_is_better, label, needs_labels)
        METRICS.register(name)(metric)
        return metric

    return decorator


def metric_names() -> list[str]:
    """Every metric name in registration order (the vocabulary of ``primary_metric``)."""
    return [e.name for e in METRICS.entries()]


def predict_labels(
    proba: np.ndarray,
    threshold: float | None = None,
    weights: Sequence[float] | np.ndarray | None = None,
) -> np.ndarray:
    """Arg-max labels; for binary problems an optional tuned threshold on P(class 1); or the
    arg-max of ``proba * weights`` with per-class decision weights (:func:`tune_class_weights`)."""
    if weights is not None:
        return np.argmax(proba * np.asarray(weights, dtype=np.float64), axis=1)
    if threshold is not None and proba.shape[1] == 2:
        return (proba[:, 1] >= threshold).astype(np.int64)
    return proba.argmax(axis=1)


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


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Macro-F1 of predicted labels over classes ``0..n_classes-1``: the one F1 of mmbench.

    As sklearn's ``f1_score(..., average="macro", labels=range(n_classes))`` (bit for bit: the
    same ``2·tp / (n_true + n_pred)`` per class), a class neither present nor predicted scoring 0,
    but without sklearn's input checks and warnings: it also scores every training epoch.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    tp = np.bincount(y_true[y_true == y_pred], minlength=n_classes).astype(np.float64)
    denom = (
        np.bincount(y_true, minlength=n_classes) + np.bincount(y_pred, minlength=n_classes)
    ).astype(np.float64)
    scores = np.divide(2.0 * tp, denom, out=np.zeros(n_classes), where=denom > 0)
    return float(scores.mean())


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


@_metric("f1_macro", "macro-F1", needs_labels=True)
def f1_macro(y: np.ndarray, proba: np.ndarray) -> float:
    return macro_f1(y, proba.argmax(axis=1), proba.shape[1])


@_metric("roc_auc", "ROC-AUC")
def roc_auc(y: np.ndarray, proba: np.ndarray) -> float:
    """Binary ROC-AUC on P(class 1); macro one-vs-rest for multiclass. Undefined (NaN) when a
    class has no row in ``y``, whatever the installed sklearn does then (raise or warn)."""
    from sklearn.metrics import roc_auc_score

    if not (np.bincount(y, minlength=proba.shape[1]) > 0).all():
        return float("nan")
    if proba.shape[1] == 2:
        return float(roc_auc_score(y, proba[:, 1]))
    return float(
        roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=range(proba.shape[1]))
    )


@_metric("pr_auc", "PR-AUC")
def pr_auc(y: np.ndarray, proba: np.ndarray) -> float:
    """Average precision: of class 1 for binary, macro over one-vs-rest classes otherwise.

    Undefined (NaN) when a class it averages over has no row in ``y`` (a grouped fold can lack
    one): that class has no precision-recall curve, and sklearn's 0 for it would lower the macro
    as if the model had failed on it, where AUC says "undefined" for the same fold.
    """
    from sklearn.metrics import average_precision_score

    present = np.bincount(y, minlength=proba.shape[1]) > 0
    if proba.shape[1] == 2:
        return float(average_precision_score(y, proba[:, 1])) if present[1] else float("nan")
    if not present.all():
        return float("nan")
    onehot = np.eye(proba.shape[1], dtype=np.int64)[y]
    return float(average_precision_score(onehot, proba, average="macro"))


@_metric("balanced_accuracy", "balanced accuracy", needs_labels=True)
def balanced_accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    from sklearn.metrics import balanced_accuracy_score

    return float(balanced_accuracy_score(y, proba.argmax(axis=1)))


@_metric("accuracy", "accuracy", needs_labels=True)
def accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    return float(np.mean(proba.argmax(axis=1) == y))


@_metric("log_loss", "log-loss", higher_is_better=False)
def log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    from sklearn.metrics import log_loss as sk_log_loss

    clipped = np.clip(proba, 1e-7, 1.0)
    clipped /= clipped.sum(axis=1, keepdims=True)  # clipping alone breaks the sum-to-one
    return float(sk_log_loss(y, clipped, labels=range(proba.shape[1])))


def compute_metrics(
    y: np.ndarray,
    proba: np.ndarray,
    names: Sequence[str] | None = None,
    threshold: float | None = None,
    weights: Sequence[float] | np.ndarray | None = None,
) -> dict[str, float]:
    """Every requested metric (default: all) of probabilities ``proba`` against labels ``y``.

    A ``threshold`` (binary only) or per-class decision ``weights`` change the label-based
    metrics (F1, accuracies), not the ranking metrics. A metric undefined on the input (e.g.
    AUC with one class present) is NaN.
    """
    y = np.asarray(y, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    if weights is not None or (threshold is not None and proba.shape[1] == 2):
        hard = np.eye(proba.shape[1])[predict_labels(proba, threshold, weights)]
    else:
        hard = proba
    out: dict[str, float] = {}
    for name in names or METRICS.names():
        metric = METRICS.get(name)
        try:
            out[name] = metric.fn(y, hard if metric.needs_labels else proba)
        except ValueError:
            out[name] = float("nan")
    return out


def chance_level(name: str, y: np.ndarray, n_classes: int) -> float:
    """Score of an uninformed predictor that outputs the class prior for every row."""
    prior = np.bincount(y, minlength=n_classes) / len(y)
    proba = np.tile(prior, (len(y), 1))
    return compute_metrics(y, proba, [name])[name]


def derive_seed(*parts: object) -> int:
    """A stable 31-bit seed from any parts (suite seed, dataset, repeat, fold...)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@dataclass(frozen=True)
class Fold:
    repeat: int
    fold: int
    train: np.ndarray
    valid: np.ndarray
    seed: int

    @property
    def key(self) -> str:
        return f"r{self.repeat}f{self.fold}"


def cv_folds(
    labels: np.ndarray, folds: int, repeats: int, seed: int, groups: np.ndarray | None = None
) -> list[Fold]:
    """Stratified k-fold, repeated with a fresh shuffle per repeat; seeds derived from ``seed``.

    With ``groups`` (one value per row: a speaker, a patient, a device) the folds are
    stratified *group* k-fold: the rows of one group are all in the same fold, so a model
    cannot score by recognising a group it has seen in training (which plain stratified folds
    allow, and which overstates every score on data whose rows share a source).
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    labels = np.asarray(labels)
    out: list[Fold] = []
    for r in range(repeats):
        split_seed = derive_seed(seed, "split", r)
        if groups is None:
            splitter: Any = StratifiedKFold(n_splits=folds, shuffle=True, random_state=split_seed)
        else:
            splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=split_seed)
        splits = splitter.split(np.zeros(len(labels)), labels, groups)
        for k, (train, valid) in enumerate(splits):
            out.append(Fold(r, k, train, valid, derive_seed(seed, "fit", r, k)))
    return out


def summarize(fold_scores: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Every metric's :func:`mean_std` over folds: ``{"f1_macro": {"mean", "std", "undefined"}}``.

    A metric undefined in a fold (NaN: AUC or PR-AUC where a grouped fold lacks a class) is left
    out of the mean and counted in ``undefined``, so a mean over fewer folds says so.
    """
    names = sorted({k for s in fold_scores for k in s})
    return {name: mean_std([s[name] for s in fold_scores if name in s]) for name in names}


def undefined_note(stats: Mapping[str, float]) -> str:
    """`` (1 fold undefined)`` after a score whose mean left out folds, else ``""``: what every
    table prints beside a :func:`mean_std` so that a mean over fewer folds is never silent."""
    k = int(stats.get("undefined", 0) or 0)
    return f" ({k} fold{'s' if k > 1 else ''} undefined)" if k else ""


class ScoredFold(typing.Protocol):
    """One fold's outcome as :class:`FoldScores` reads it (:class:`mmbench.pipeline.FoldResult`)."""

    key: str
    metrics: dict[str, float]
    error: str | None

    @property
    def ok(self) -> bool: ...


class FoldScores:
    """What every cross-validation result says about its ``folds``, pipeline or peer alike.

    A mixin for the dataclasses that hold ``folds`` (:class:`mmbench.pipeline.CVResult`,
    :class:`mmbench.peers.PeerCV`), so that search, leaderboards and tracking read both the same way.
    """

    folds: Sequence[ScoredFold]

    @property
    def ok(self) -> bool:
        return bool(self.folds) and all(f.ok for f in self.folds)

    @property
    def failures(self) -> list[str]:
        return [f"{f.key}: {f.error}" for f in self.folds if not f.ok]

    @property
    def summary(self) -> dict[str, dict[str, float]]:
        return summarize([f.metrics for f in self.folds if f.ok])

    def mean(self, metric: str) -> float:
        return self.summary.get(metric, {}).get("mean", float("nan"))

    def fold_scores(self, metric: str) -> list[float]:
        return [f.metrics.get(metric, float("nan")) for f in self.folds]


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
    folds' rows; ``gain`` is the cross-fitted gain in the primary metric over :attr:`own` that
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
    rows are scored with weights tuned on the other folds' rows (cross-fitted), and the tuned
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
        scored = np.flatnonzero(np.isfinite(oof[fold.repeat]).all(axis=1))
        rest = np.setdiff1d(scored, fold.valid)
        if len(rest) == 0 or len(proba) == 0 or not np.isfinite(proba).all():
            continue
        weights = tune_class_weights(labels[rest], oof[fold.repeat, rest], primary)
        assert weights is not None  # a metric of labels
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
    info = {**result.info, "decision_weights": [float(w) for w in weights]}
    return dataclasses.replace(result, metrics=metrics, info=info)


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """Mean and sample std over the finite values (NaN when there are none, std 0 for one), and
    ``undefined``: how many values were not finite and left out.

    The one spread statistic of fold scores (CV summaries, ablation drops, regression gate), so
    that an undefined or failed fold (NaN) is skipped, and counted, the same way everywhere.
    """
    arr = np.asarray(values, dtype=float)
    finite = arr[np.isfinite(arr)]
    undefined = int(len(arr) - len(finite))
    if len(finite) == 0:
        return {"mean": float("nan"), "std": float("nan"), "undefined": undefined}
    std = float(finite.std(ddof=1)) if len(finite) > 1 else 0.0
    return {"mean": float(finite.mean()), "std": std, "undefined": undefined}


if TYPE_CHECKING:
    MetricName = str
else:  # the vocabulary is the metric registry: a new metric is valid in suites at once
    MetricName = Literal[tuple(metric_names())]


class Protocol(StrictModel):
    """Evaluation protocol: repeated stratified k-fold CV."""

    folds: int = Field(5, ge=2)
    repeats: int = Field(1, ge=1)
    primary_metric: MetricName = "f1_macro"
    group_column: str | None = Field(
        None,
        description="rows sharing this column's value (a speaker, a patient, a device) are "
        "never split across folds: stratified group k-fold",
    )

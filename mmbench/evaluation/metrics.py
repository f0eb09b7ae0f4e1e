"""Every metric, in one place: candidates only produce out-of-fold probabilities, and this
module turns them into scores.

Each metric declares ``higher_is_better`` so that search, leaderboards and regression gates never
guess a direction, and ``needs_labels`` when it scores hard labels (arg-max, or a tuned binary
threshold) rather than probabilities. :func:`macro_f1` is here too, so that training loops report
with the same F1 that scores folds, and :func:`predict_labels`, the one way probabilities become
labels (arg-max, a binary threshold or per-class decision weights).
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

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


def format_score(mean: float, std: float, folds: int, digits: int = 3) -> str:
    """A CV score as tables show it: ``0.812 ± 0.003``, or ``0.812 (1 fold)`` when one fold
    was scored (a large table's hold-out: no spread to show); ``—`` when undefined."""
    if not math.isfinite(mean):
        return "—"
    if folds == 1:
        return f"{mean:.{digits}f} (1 fold)"
    spread = f"{std:.{digits}f}" if math.isfinite(std) else "—"
    return f"{mean:.{digits}f} ± {spread}"


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

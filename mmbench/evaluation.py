"""The evaluation protocol: stratified repeated k-fold splits and every metric, in one place.

Candidates only produce out-of-fold probabilities; this module turns them into scores. Each
metric declares ``higher_is_better`` so that search, leaderboards and regression gates never
guess a direction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mmbench.registry import Registry


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[np.ndarray, np.ndarray], float]
    higher_is_better: bool
    label: str


METRICS: Registry[Metric] = Registry("metric")


def _metric(name: str, label: str, higher_is_better: bool = True) -> Callable[..., Metric]:
    def decorator(fn: Callable[[np.ndarray, np.ndarray], float]) -> Metric:
        metric = Metric(name, fn, higher_is_better, label)
        METRICS.register(name)(metric)
        return metric

    return decorator


def predict_labels(proba: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Arg-max labels; for binary problems an optional tuned threshold on P(class 1)."""
    if threshold is not None and proba.shape[1] == 2:
        return (proba[:, 1] >= threshold).astype(np.int64)
    return proba.argmax(axis=1)


@_metric("f1_macro", "macro-F1")
def f1_macro(y: np.ndarray, proba: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, proba.argmax(axis=1), average="macro", labels=range(proba.shape[1])))


@_metric("roc_auc", "ROC-AUC")
def roc_auc(y: np.ndarray, proba: np.ndarray) -> float:
    """Binary ROC-AUC on P(class 1); macro one-vs-rest for multiclass."""
    from sklearn.metrics import roc_auc_score

    if proba.shape[1] == 2:
        return float(roc_auc_score(y, proba[:, 1]))
    return float(
        roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=range(proba.shape[1]))
    )


@_metric("pr_auc", "PR-AUC")
def pr_auc(y: np.ndarray, proba: np.ndarray) -> float:
    """Average precision: of class 1 for binary, macro over one-vs-rest classes otherwise."""
    from sklearn.metrics import average_precision_score

    if proba.shape[1] == 2:
        return float(average_precision_score(y, proba[:, 1]))
    onehot = np.eye(proba.shape[1], dtype=np.int64)[y]
    return float(average_precision_score(onehot, proba, average="macro"))


@_metric("balanced_accuracy", "balanced accuracy")
def balanced_accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    from sklearn.metrics import balanced_accuracy_score

    return float(balanced_accuracy_score(y, proba.argmax(axis=1)))


@_metric("accuracy", "accuracy")
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
) -> dict[str, float]:
    """Every requested metric (default: all) of probabilities ``proba`` against labels ``y``.

    A ``threshold`` (binary only) changes the label-based metrics (F1, accuracies), not the
    ranking metrics. A metric undefined on the input (e.g. AUC with one class present) is NaN.
    """
    y = np.asarray(y, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    if threshold is not None and proba.shape[1] == 2:
        hard = np.eye(2)[predict_labels(proba, threshold)]
    else:
        hard = proba
    out: dict[str, float] = {}
    for name in names or METRICS.names():
        metric = METRICS.get(name)
        uses_labels = name in ("f1_macro", "balanced_accuracy", "accuracy")
        try:
            out[name] = metric.fn(y, hard if uses_labels else proba)
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


def cv_folds(labels: np.ndarray, folds: int, repeats: int, seed: int) -> list[Fold]:
    """Stratified k-fold, repeated with a fresh shuffle per repeat; seeds derived from ``seed``."""
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels)
    out: list[Fold] = []
    for r in range(repeats):
        split_seed = derive_seed(seed, "split", r)
        skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=split_seed)
        for k, (train, valid) in enumerate(skf.split(np.zeros(len(labels)), labels)):
            out.append(Fold(r, k, train, valid, derive_seed(seed, "fit", r, k)))
    return out


def summarize(fold_scores: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and sample std over folds for every metric: ``{"f1_macro": {"mean":..,"std":..}}``."""
    names = sorted({k for s in fold_scores for k in s})
    out: dict[str, dict[str, float]] = {}
    for name in names:
        values = np.array([s[name] for s in fold_scores if name in s], dtype=float)
        values = values[~np.isnan(values)]
        if len(values) == 0:
            out[name] = {"mean": float("nan"), "std": float("nan")}
            continue
        std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out[name] = {"mean": float(values.mean()), "std": std}
    return out


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """Mean and sample std over the finite values (NaN when there are none, std 0 for one).

    The one spread statistic of paired fold comparisons (ablation drops, regression gate), so
    that a failed fold (NaN) is skipped the same way everywhere.
    """
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    if len(arr) == 0:
        return {"mean": float("nan"), "std": float("nan")}
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0}

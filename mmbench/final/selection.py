"""Greedy ensemble selection over out-of-fold predictions (Caruana et al., 2004).

After a search every completed trial has out-of-fold (OOF) class probabilities for the same
rows and folds. Averaging a few good, different models usually beats the single best one, and
choosing which to average needs no extra training: start from the best trial, then repeatedly add
(with replacement) the trial whose addition most improves the blend's score on the OOF rows, and
stop when no addition helps. Picking a model several times is how weights arise.

The blend is chosen on the rows it is scored on, so its OOF score is optimistic, like the best
trial's; only a held-out test source gives an unbiased figure, and the runner reports both.
Ties in the (often step-wise) primary metric are broken by log-loss, which keeps the climb
moving towards better-calibrated blends instead of stalling on plateaus. With ``objective``
the climb follows another score (log-loss, when a decision rule is tuned afterwards) while the
primary metric is still what the selection reports.

This module is numpy only: it knows nothing of Optuna, trials or MLflow.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

Scorer = Callable[[np.ndarray, np.ndarray], float]
"""``score(y, proba)``, higher is better."""


@dataclass
class EnsembleSelection:
    """Which candidates the blend uses and how often (weights are counts / size)."""

    counts: dict[int, int]
    score: float
    best_single: int
    best_single_score: float
    history: list[float] = field(default_factory=list)

    @property
    def weights(self) -> dict[int, float]:
        total = sum(self.counts.values())
        return {i: c / total for i, c in sorted(self.counts.items())}

    @property
    def size(self) -> int:
        return sum(self.counts.values())

    def blend(self, probas: Sequence[np.ndarray]) -> np.ndarray:
        """Weighted average of ``probas[i]`` for the selected candidates."""
        return blend({i: probas[i] for i in self.counts}, self.weights)


def blend(probas: dict[int, np.ndarray], weights: dict[int, float]) -> np.ndarray:
    out = sum(weights[i] * np.asarray(probas[i], dtype=np.float64) for i in weights)
    out = np.asarray(out)
    return out / out.sum(axis=1, keepdims=True)


def _log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    p = np.clip(proba[np.arange(len(y)), y], 1e-15, 1.0)
    return float(-np.mean(np.log(p)))


def select_ensemble(
    probas: Sequence[np.ndarray],
    y: np.ndarray,
    score: Scorer,
    *,
    max_size: int = 20,
    tolerance: float = 1e-9,
    objective: Scorer | None = None,
) -> EnsembleSelection:
    """Caruana's forward selection with replacement over candidate OOF ``probas``.

    Every ``probas[i]`` is ``(n, n_classes)`` for the same rows as ``y`` (rows with no OOF
    prediction must be removed by the caller). Returns the counts of each chosen candidate.
    The climb maximizes ``objective`` when given (ties broken by ``score``), else ``score``
    (ties broken by log-loss); ``score`` is what the selection reports either way.
    """
    if not probas:
        raise ValueError("ensemble selection needs at least one candidate")
    y = np.asarray(y, dtype=np.int64)
    probas = [np.asarray(p, dtype=np.float64) for p in probas]

    def key(p: np.ndarray) -> tuple[float, float]:
        if objective is not None:
            return (objective(y, p), score(y, p))
        return (score(y, p), -_log_loss(y, p))

    singles = [key(p) for p in probas]
    best = max(range(len(probas)), key=lambda i: singles[i])
    reported = [score(y, p) for p in probas] if objective is not None else [k[0] for k in singles]
    counts = {best: 1}
    total = probas[best].copy()
    current = singles[best]
    history = [reported[best]]
    while sum(counts.values()) < max_size:
        size = sum(counts.values())
        trials = [key((total + p) / (size + 1)) for p in probas]
        pick = max(range(len(probas)), key=lambda i: trials[i])
        if not _better(trials[pick], current, tolerance):
            break
        counts[pick] = counts.get(pick, 0) + 1
        total += probas[pick]
        current = trials[pick]
        history.append(current[1] if objective is not None else current[0])
    top = max(range(len(probas)), key=lambda i: (reported[i], singles[i]))
    return EnsembleSelection(
        counts=counts,
        score=history[-1],
        best_single=top,
        best_single_score=reported[top],
        history=history,
    )


def neg_log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    """Minus the log-loss: a higher-is-better :data:`Scorer` of probabilities."""
    return -_log_loss(np.asarray(y, dtype=np.int64), np.asarray(proba, dtype=np.float64))


def _better(new: tuple[float, float], old: tuple[float, float], tolerance: float) -> bool:
    if new[0] > old[0] + tolerance:
        return True
    return abs(new[0] - old[0]) <= tolerance and new[1] > old[1] + tolerance


def oof_rows(oof: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average a ``(repeats, n, classes)`` OOF array over repeats; also the rows it covers."""
    if oof.ndim == 3:
        with warnings.catch_warnings():  # rows no fold predicted stay NaN, silently
            warnings.simplefilter("ignore", RuntimeWarning)
            proba = np.nanmean(oof, axis=0)
    else:
        proba = oof
    mask = ~np.isnan(proba).any(axis=1)
    return proba, mask

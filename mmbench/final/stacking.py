"""A stacked linear model over the members' out-of-fold probabilities, and the nested comparison
that decides whether it or the greedy blend combines the final model's members.

Greedy selection (:mod:`mmbench.final.selection`) averages its members with fixed weights. A
stacker — a class-balanced multinomial logistic regression on the members' log-probabilities —
can also re-weight per class and recalibrate, which helps when members are good at different
classes (different heads, different modalities), and hurts when it overfits few rows. Which one
to use is measured, not assumed: both procedures are run *nested* inside the search's folds —
for each fold, on the other folds' out-of-fold rows, choose the blend, choose the stacker's
inputs from that blend (:func:`stack_inputs`), fit the stacker and tune each one's decision
rule, then score that fold — so neither combination is scored on rows it was chosen or fitted
on. The stacker is adopted only when its nested score beats the blend's by
:data:`MIN_STACK_GAIN`. Both combine the same candidate trials, which the search chose and
ranked on every fold: the comparison between them is fair, but neither score is free of that
optimism.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mmbench.evaluation import Fold
from mmbench.final.selection import select_ensemble

MIN_STACK_GAIN = 0.002
"""Nested gain in the primary metric the stacker needs over the blend (its extra parameters are
not free: below this the simpler blend is kept)."""
STACK_C = 1.0
MAX_STACK = 5
"""Most members a stacker combines: the blend's, then the best trial of each other head."""


def stack_inputs(blend: Sequence[int], heads: Sequence[str]) -> list[int]:
    """Candidates the stacker combines: the blend's members, then the best candidate of each
    head the blend lacks (``heads[i]`` of candidate ``i``, candidates best first), so a head
    that is good on some classes can contribute even if averaging it in does not help."""
    chosen = list(dict.fromkeys(sorted(blend)))
    have = {heads[i] for i in chosen}
    for i, head in enumerate(heads):
        if len(chosen) >= MAX_STACK:
            break
        if head not in have:
            chosen.append(i)
            have.add(head)
    return chosen[:MAX_STACK]


class Stacker:
    """Class-balanced multinomial logistic regression on members' log-probabilities."""

    def __init__(self, n_classes: int, seed: int = 0) -> None:
        self.n_classes, self.seed = n_classes, seed
        self.model: object | None = None
        self.constant: int | None = None

    @staticmethod
    def features(probas: Sequence[np.ndarray]) -> np.ndarray:
        return np.hstack(
            [np.log(np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1.0)) for p in probas]
        )

    def fit(self, probas: Sequence[np.ndarray], y: np.ndarray) -> Stacker:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        y = np.asarray(y)
        if len(np.unique(y)) < 2:  # a fold with one class: predict it
            self.constant = int(y[0])
            return self
        model = LogisticRegression(C=STACK_C, class_weight="balanced", max_iter=500)
        with warnings.catch_warnings():
            # near-separable members (log-probabilities of confident heads) keep lbfgs going
            # past its iterations; the stacker is judged nested as fitted here, so a fit that
            # stopped early is scored as such, not trusted blindly (and a user's console is not
            # filled with one warning per fold)
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model = model.fit(self.features(probas), y)
        return self

    def predict_proba(self, probas: Sequence[np.ndarray]) -> np.ndarray:
        n = len(probas[0])
        out = np.zeros((n, self.n_classes))
        if self.model is None:
            out[:, self.constant or 0] = 1.0
            return out
        proba = self.model.predict_proba(self.features(probas))  # type: ignore[attr-defined]
        out[:, self.model.classes_] = proba  # type: ignore[attr-defined]
        return out


@dataclass
class NestedComparison:
    """Blend and stacker scored on rows neither was chosen or fitted on."""

    blend: float
    stack: float
    stack_oof: np.ndarray
    """``(repeats, n, classes)``: every row predicted by a stacker whose inputs were chosen and
    which was fitted without its fold."""
    undefined: int = 0
    """Folds left out of both means because either score is undefined there (NaN: AUC in a
    fold that lacks a class), so both combiners are compared on the same folds."""

    @property
    def stack_wins(self) -> bool:
        """The stacker beats the blend by :data:`MIN_STACK_GAIN`; never when either score is
        undefined on every fold (the simpler blend is kept, not by a NaN comparison)."""
        if not (np.isfinite(self.stack) and np.isfinite(self.blend)):
            return False
        return self.stack >= self.blend + MIN_STACK_GAIN


def compare_nested(
    candidates: Sequence[np.ndarray],
    labels: np.ndarray,
    folds: list[Fold],
    score: Callable[[np.ndarray, np.ndarray], float],
    heads: Sequence[str],
    seed: int = 0,
    objective: Callable[[np.ndarray, np.ndarray], float] | None = None,
    decide: Callable[[np.ndarray, np.ndarray], np.ndarray | None] | None = None,
) -> NestedComparison:
    """Nested scores of the greedy blend and of the stacker over the candidates' OOF arrays.

    ``candidates[i]`` is ``(repeats, n, classes)`` (a trial's out-of-fold probabilities) and
    ``heads[i]`` its fusion head; in each fold the blend selects among all of them on the
    other folds' rows, and the stacker combines the inputs :func:`stack_inputs` picks from
    *that* blend, so nothing about a fold's rows chooses what scores them. ``score(y, proba)``
    is higher-is-better; the blend's climb maximizes ``objective`` when given (as
    :func:`~mmbench.final.selection.select_ensemble`). ``decide(y, proba)`` -> per-class
    decision weights (or None) is, for metrics of decisions, the final model's rule: tuned on
    the other folds' rows for each combiner (the stacker's on its own fit of those rows) and
    applied to the fold's, so each is scored as it would predict.
    """
    n_classes = candidates[0].shape[-1]
    stack_oof = np.full(candidates[0].shape, np.nan)
    blend_scores, stack_scores = [], []
    for fold in folds:
        r = fold.repeat
        covered = ~np.logical_or.reduce([np.isnan(c[r]).any(axis=1) for c in candidates])
        rest = np.setdiff1d(np.flatnonzero(covered), fold.valid)
        valid = fold.valid[covered[fold.valid]]
        if len(rest) == 0 or len(valid) == 0:
            continue
        y_rest, y_valid = labels[rest], labels[valid]
        selection = select_ensemble(
            [c[r, rest] for c in candidates], y_rest, score, objective=objective
        )
        blend = selection.blend([c[r, valid] for c in candidates])
        rule = decide(y_rest, selection.blend([c[r, rest] for c in candidates])) if decide else None
        blend_scores.append(score(y_valid, _weighted(blend, rule)))
        stack = stack_inputs(list(selection.counts), heads)
        stacker = Stacker(n_classes, seed).fit([candidates[i][r, rest] for i in stack], y_rest)
        proba = stacker.predict_proba([candidates[i][r, valid] for i in stack])
        stack_oof[r, valid] = proba
        fitted = stacker.predict_proba([candidates[i][r, rest] for i in stack])
        rule = decide(y_rest, fitted) if decide else None
        stack_scores.append(score(y_valid, _weighted(proba, rule)))
    blend, stack_score, undefined = _paired_means(blend_scores, stack_scores)
    return NestedComparison(blend, stack_score, stack_oof, undefined)


def _paired_means(blend: list[float], stack: list[float]) -> tuple[float, float, int]:
    """Both combiners' means over the folds where both scores are defined, and how many folds
    that left out (NaN means when none is left)."""
    a, b = np.asarray(blend, dtype=float), np.asarray(stack, dtype=float)
    both = np.isfinite(a) & np.isfinite(b)
    if not both.any():
        return float("nan"), float("nan"), len(a)
    return float(a[both].mean()), float(b[both].mean()), int((~both).sum())


def _weighted(proba: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Probabilities whose arg-max is the decision rule's (rows renormalized)."""
    if weights is None:
        return proba
    out = proba * weights
    return out / np.clip(out.sum(axis=1, keepdims=True), 1e-12, None)

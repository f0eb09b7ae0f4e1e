"""Attribution of subset scores to modalities: per-fold Shapley values, leave-one-out drops and
robustness to a modality missing at test time, into an :class:`AblationReport`."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mmbench.config import PipelineSpec
from mmbench.evaluation import Fold, mean_std
from mmbench.results import AblationKind, AblationReport, AblationRow

if TYPE_CHECKING:
    from mmbench.pipeline import CVResult


def shapley_values(
    players: Sequence[str], value: Callable[[frozenset[str]], float]
) -> dict[str, float]:
    """Exact Shapley value of every player of the game ``value`` (called on every coalition).

    ``phi_i = sum over S ⊆ N∖{i} of |S|! (n−|S|−1)! / n! · (v(S ∪ {i}) − v(S))``. Exponential in
    the number of players, which is fine for at most a handful of modalities.
    """
    n = len(players)
    weight = [math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)]
    out: dict[str, float] = {}
    for p in players:
        others = [q for q in players if q != p]
        total = 0.0
        for size in range(n):
            for coalition in itertools.combinations(others, size):
                s = frozenset(coalition)
                total += weight[size] * (value(s | {p}) - value(s))
        out[p] = total
    return out


def fold_shapley(
    modalities: Sequence[str],
    scores: Mapping[frozenset[str], Sequence[float]],
    chance: Sequence[float],
) -> dict[str, list[float]]:
    """Shapley values per fold from per-fold subset scores; ``v(∅)`` is the fold's chance level.

    ``scores[subset][i]`` is fold ``i``'s score of that subset. A fold where any subset failed
    (NaN) gives NaN values for that fold, which the summary then ignores.
    """
    per_fold: dict[str, list[float]] = {m: [] for m in modalities}
    for i, empty in enumerate(chance):

        def value(s: frozenset[str], i: int = i, empty: float = empty) -> float:
            return empty if not s else float(scores[s][i])

        for m, v in shapley_values(list(modalities), value).items():
            per_fold[m].append(v)
    return per_fold


def row_from_cv(subset: tuple[str, ...], kind: AblationKind, cv: CVResult) -> AblationRow:
    return AblationRow(
        modalities=subset,
        kind=kind,
        metrics=cv.summary,
        folds=[dict(f.metrics) if f.ok else {} for f in cv.folds],
        failures=cv.failures,
        seconds=float(cv.seconds.get("total", 0.0)),
        cache={k: float(v) for k, v in cv.cache.items()},
    )


def build_report(
    dataset: str,
    spec: PipelineSpec,
    metric: Any,
    modalities: list[str],
    folds: list[Fold],
    chance: list[float],
    rows: list[AblationRow],
    full_cv: CVResult,
) -> AblationReport:
    """Attribute the subset scores: Shapley (all subsets run), leave-one-out drops, robustness."""
    by_set = {frozenset(r.modalities): r.fold_scores(metric.name) for r in rows}
    n_subsets = 2 ** len(modalities) - 1
    shapley, per_fold = None, None
    if len(by_set) == n_subsets:
        per_fold = fold_shapley(modalities, by_set, chance)
        shapley = {m: mean_std(v) for m, v in per_fold.items()}
    sign = 1.0 if metric.higher_is_better else -1.0
    full = np.asarray(by_set[frozenset(modalities)], dtype=float)
    leave_one_out = {}
    if len(modalities) > 1:
        for m in modalities:
            left_out = by_set.get(frozenset(modalities) - {m})
            if left_out is not None:  # None: cut by the deadline
                leave_one_out[m] = mean_std(sign * (full - np.asarray(left_out, dtype=float)))
    return AblationReport(
        dataset=dataset,
        primary=metric.name,
        higher_is_better=metric.higher_is_better,
        modalities=list(modalities),
        fold_keys=[f.key for f in folds],
        chance=chance,
        rows=rows,
        shapley=shapley,
        shapley_folds=per_fold,
        leave_one_out=leave_one_out,
        robustness=robustness(full_cv, metric.name, sign),
        pipeline=spec,
    )


def robustness(full_cv: CVResult, primary: str, sign: float) -> dict[str, dict[str, float]]:
    """Per removed modality: the primary score at test time without it, and the paired drop."""
    out: dict[str, dict[str, float]] = {}
    for m in full_cv.modalities if len(full_cv.modalities) > 1 else []:
        scores, drops = [], []
        for f in full_cv.folds:
            if not f.ok or m not in f.missing_metrics:
                continue
            value = f.missing_metrics[m].get(primary, math.nan)
            scores.append(value)
            drops.append(sign * (f.metrics.get(primary, math.nan) - value))
        s, d = mean_std(scores), mean_std(drops)
        out[m] = {"mean": s["mean"], "std": s["std"], "drop": d["mean"], "drop_std": d["std"]}
    return out

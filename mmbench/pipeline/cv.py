"""One candidate pipeline scored by cross-validation.

This is where encoders, the feature cache, fusion heads and the evaluation protocol meet; it knows
nothing of Optuna, MLflow or the CLI. Inside every fold, encoders that learn from data are fitted
on that fold's training rows only, and an inner stratified hold-out of the training rows drives
early stopping, per-epoch reports and binary threshold tuning (whole groups on a grouped table),
so the outer validation rows are used for scoring and nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmbench.budget import NO_DEADLINE, Deadline, DeadlineReached
from mmbench.config import PipelineSpec
from mmbench.data.table import MultiModalTable
from mmbench.evaluation import DecisionRule, Fold, FoldScores, compute_metrics, no_holdout_reason
from mmbench.pipeline.cache import FeatureCache
from mmbench.pipeline.fold import train_fold


@dataclass
class FoldResult:
    """Scores of one fold, or the error that stopped it."""

    key: str
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    missing_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    """Scores of the trained head with one modality removed at test time only (no retraining)."""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class CVResult(FoldScores):
    """Out-of-fold probabilities (``oof[repeat, row]``), fold scores and their summary."""

    spec: PipelineSpec
    modalities: list[str]
    folds: list[FoldResult]
    oof: np.ndarray
    seconds: dict[str, float]
    cache: dict[str, int]
    decision: DecisionRule | None = None
    """The decision rule its scores were counted with (:func:`mmbench.evaluation.decide`);
    None: not decided yet (the candidate's own decisions, as a search ranks its trials)."""


def evaluate_pipeline(
    table: MultiModalTable,
    spec: PipelineSpec,
    folds: list[Fold],
    *,
    modalities: list[str] | None = None,
    cache: FeatureCache | None = None,
    on_epoch: Callable[[Fold, int, float], None] | None = None,
    on_fold: Callable[[FoldResult, int], None] | None = None,
    reraise: tuple[type[BaseException], ...] = (),
    test_time_missing: bool = False,
    deadline: Deadline = NO_DEADLINE,
) -> CVResult:
    """Cross-validate ``spec`` on ``table`` (restricted to ``modalities`` when given).

    ``deadline`` is checked before every fold and by the heads between epochs or boosting
    rounds; :class:`~mmbench.budget.DeadlineReached` propagates (the CV is incomplete).

    With ``test_time_missing``, each fold's trained head is also scored with every modality in
    turn marked missing on the validation rows (``FoldResult.missing_metrics``), which shows how
    gracefully the model degrades when a modality is absent at inference.

    A fold that raises becomes a :class:`FoldResult` with its error and the other folds still run,
    except for exception types in ``reraise`` (e.g. Optuna's pruning signal), which propagate.
    """
    modalities = modalities or [m for m in table.modalities if m in spec.encoders]
    cache = cache or FeatureCache(None)
    hits0, misses0 = cache.hits, cache.misses
    repeats = max(f.repeat for f in folds) + 1
    oof = np.full((repeats, len(table), table.n_classes), np.nan, dtype=np.float64)
    results: list[FoldResult] = []
    timing = {"encode": 0.0, "fit": 0.0}
    reraise = (*reraise, DeadlineReached)
    for i, fold in enumerate(folds):
        deadline.check(f"fold {fold.key}")
        result = _run_fold(
            table,
            spec,
            modalities,
            fold,
            cache,
            oof,
            timing,
            on_epoch,
            reraise,
            test_time_missing,
            deadline,
        )
        results.append(result)
        if on_fold is not None:
            on_fold(result, i)
    cache_stats = {"hits": cache.hits - hits0, "misses": cache.misses - misses0}
    timing["total"] = timing["encode"] + timing["fit"]
    return CVResult(spec, modalities, results, oof, timing, cache_stats)


def _run_fold(
    table: MultiModalTable,
    spec: PipelineSpec,
    modalities: list[str],
    fold: Fold,
    cache: FeatureCache,
    oof: np.ndarray,
    timing: dict[str, float],
    on_epoch: Callable[[Fold, int, float], None] | None,
    reraise: tuple[type[BaseException], ...],
    test_time_missing: bool = False,
    deadline: Deadline = NO_DEADLINE,
) -> FoldResult:
    start = time.perf_counter()
    result = FoldResult(key=fold.key)
    try:
        callback = None if on_epoch is None else (lambda e, s: on_epoch(fold, e, s))
        trained = train_fold(
            table,
            spec,
            modalities,
            fold,
            cache,
            on_epoch=callback,
            deadline=deadline,
            encoding_deadline=deadline,
            timing=timing,
        )
        head, threshold, train = trained.head, trained.threshold, trained.train
        encoded = trained.encoded_at
        valid = trained.features.take(fold.valid)
        predict_start = time.perf_counter()
        proba = head.predict_proba(valid)
        predict_ms = (time.perf_counter() - predict_start) * 1000 / max(1, len(fold.valid))
        fit_s = time.perf_counter() - encoded
        timing["fit"] += fit_s
        oof[fold.repeat, fold.valid] = proba
        result.metrics = compute_metrics(table.labels[fold.valid], proba, threshold=threshold)
        if test_time_missing and len(modalities) > 1:
            result.missing_metrics = {
                m: compute_metrics(
                    table.labels[fold.valid],
                    head.predict_proba(valid.drop({m})),
                    threshold=threshold,
                )
                for m in modalities
            }
        result.info = {
            **head.info(),
            "threshold": threshold,
            "predict_ms_per_row": predict_ms,
            "fit_s": fit_s,
        }
        assert train.labels is not None
        no_holdout = no_holdout_reason(train.labels, train.groups)
        if no_holdout is not None:  # trained without early stopping: say why
            result.info["no_holdout"] = no_holdout
    except reraise:
        raise
    except Exception as exc:  # a failed fold is a recorded result, not a crash
        result.error = f"{type(exc).__name__}: {exc}"
    result.seconds = time.perf_counter() - start
    return result

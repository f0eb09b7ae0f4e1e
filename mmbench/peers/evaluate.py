"""Peers scored by the harness: cross-validation on mmbench's folds and held-out scoring.

Candidates predict, the harness scores: folds, out-of-fold arrays and every metric come from the
code that scores mmbench's own pipelines (:func:`mmbench.evaluation.compute_metrics`,
:class:`mmbench.pipeline.FoldResult`), so a peer's result reads exactly like a pipeline's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mmbench.config import PeerSpec
from mmbench.errors import MMBenchError
from mmbench.evaluation import (
    ARG_MAX,
    DecisionRule,
    Fold,
    FoldScores,
    compute_metrics,
    decide,
)
from mmbench.peers.base import Peer, PeerModel, get_peer
from mmbench.peers.frame import peer_frame

if TYPE_CHECKING:
    from mmbench.data.table import MultiModalTable
    from mmbench.pipeline import FoldResult


@dataclass
class PeerCV(FoldScores):
    """A peer's cross-validation, with the attributes of :class:`mmbench.pipeline.CVResult`."""

    spec: PeerSpec
    modalities: list[str]
    folds: list[FoldResult]
    oof: np.ndarray
    seconds: dict[str, float]
    cache: dict[str, int] = field(default_factory=lambda: {"hits": 0, "misses": 0})
    decision: DecisionRule | None = None
    """The decision rule its scores were counted with (:func:`mmbench.evaluation.decide`)."""


def cross_validate_peer(
    name: str,
    table: MultiModalTable,
    folds: list[Fold],
    *,
    time_limit_s: float | None = None,
    metric: str = "f1_macro",
    frame: pd.DataFrame | None = None,
    on_fold: Callable[[FoldResult, int], None] | None = None,
) -> PeerCV:
    """Fit peer ``name`` on each fold's training rows and score its validation rows.

    Each fit gets ``time_limit_s`` (per fold, not for the whole CV) and the fold's own seed, as
    pipelines do. A fold that raises becomes a recorded failure and the other folds still run.
    ``frame`` is :func:`peer_frame` of ``table`` when the caller already has it.

    The scores are counted with the decision rule :func:`mmbench.evaluation.decide` fits on
    the peer's own out-of-fold probabilities for ``metric`` (the rule mmbench's pipelines get;
    ``PeerCV.decision``), cross-fitted; pass that rule to :func:`holdout_peer`.
    """
    peer = get_peer(name)
    start = time.perf_counter()
    frame = peer_frame(table) if frame is None else frame
    prepared = time.perf_counter() - start
    repeats = max(f.repeat for f in folds) + 1
    oof = np.full((repeats, len(table), table.n_classes), np.nan, dtype=np.float64)
    results = []
    for i, fold in enumerate(folds):
        results.append(_run_fold(peer, table, frame, fold, oof, time_limit_s, metric))
        if on_fold is not None:
            on_fold(results[-1], i)
    fit = sum(r.seconds for r in results)
    spec = PeerSpec(peer=name, options={"time_limit_s": time_limit_s, "metric": metric})
    seconds = {"encode": prepared, "fit": fit, "total": prepared + fit}
    cv = PeerCV(spec, list(table.modalities), results, oof, seconds)
    return decide(cv, table.labels, folds, metric)


def _run_fold(
    peer: Peer,
    table: MultiModalTable,
    frame: pd.DataFrame,
    fold: Fold,
    oof: np.ndarray,
    time_limit_s: float | None,
    metric: str,
) -> FoldResult:
    from mmbench.pipeline import FoldResult

    start = time.perf_counter()
    result = FoldResult(key=fold.key)
    try:
        train = frame.iloc[fold.train].reset_index(drop=True)
        model = peer.fit(
            train,
            table.labels[fold.train],
            table.n_classes,
            seed=fold.seed,
            time_limit_s=time_limit_s,
            metric=metric,
        )
        fitted = time.perf_counter()
        proba = model.predict_proba(frame.iloc[fold.valid].reset_index(drop=True))
        predict_ms = (time.perf_counter() - fitted) * 1000 / max(1, len(fold.valid))
        oof[fold.repeat, fold.valid] = proba
        result.metrics = compute_metrics(table.labels[fold.valid], proba)
        result.info = {"fit_seconds": fitted - start, "predict_ms_per_row": predict_ms}
    except Exception as exc:  # a failed fold is a recorded result, not a crash
        result.error = f"{type(exc).__name__}: {exc}"
    result.seconds = time.perf_counter() - start
    return result


def fit_peer(
    name: str,
    table: MultiModalTable,
    *,
    seed: int,
    time_limit_s: float | None = None,
    metric: str = "f1_macro",
    frame: pd.DataFrame | None = None,
) -> PeerModel:
    """Fit peer ``name`` on every row of ``table`` (the refit before held-out scoring).

    Predict with ``model.predict_proba(peer_frame(test_table))``.
    """
    frame = peer_frame(table) if frame is None else frame
    return get_peer(name).fit(
        frame, table.labels, table.n_classes, seed=seed, time_limit_s=time_limit_s, metric=metric
    )


@dataclass
class HoldoutScore:
    """Held-out metrics of a peer refitted on all training rows, and what it cost."""

    metrics: dict[str, float]
    fit_seconds: float
    predict_seconds: float
    frame_seconds: float
    rule: str = ARG_MAX
    """The decision rule the label metrics were counted with (:attr:`DecisionRule.name`)."""


def holdout_peer(
    name: str,
    train: MultiModalTable,
    test: MultiModalTable,
    *,
    seed: int,
    time_limit_s: float | None = None,
    metric: str = "f1_macro",
    decision: DecisionRule | None = None,
) -> HoldoutScore:
    """Fit on ``train``, score ``test`` (its classes in ``train``'s order) with every metric.

    ``decision`` is the rule fitted on the peer's own out-of-fold probabilities
    (``cross_validate_peer(...).decision``): its weights decide the held-out labels, as the
    final model's and every pipeline's own rule decide theirs. Without it: arg-max.
    """

    if list(test.classes) != list(train.classes):
        raise MMBenchError("test rows must use the training classes, in the same order")
    start = time.perf_counter()
    train_frame, test_frame = peer_frame(train), peer_frame(test)
    framed = time.perf_counter()
    model = fit_peer(
        name, train, seed=seed, time_limit_s=time_limit_s, metric=metric, frame=train_frame
    )
    fitted = time.perf_counter()
    proba = model.predict_proba(test_frame)
    done = time.perf_counter()
    rule = decision or DecisionRule()
    metrics = compute_metrics(test.labels, proba, weights=rule.weights)
    return HoldoutScore(metrics, fitted - framed, done - fitted, framed - start, rule.name)

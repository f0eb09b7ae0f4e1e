"""One fold's training path: encoders fitted on the fold's training rows and a head trained
on them, with an inner hold-out of those rows for early stopping and the binary threshold.

Cross-validation (:func:`~mmbench.pipeline.cv.evaluate_pipeline`) scores the fold it trains, and
:func:`~mmbench.pipeline.fitted.fit_fold_models` keeps it: both train through :func:`train_fold`,
so the kept fold models are the models whose out-of-fold predictions were scored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from mmbench.budget import NO_DEADLINE, Deadline
from mmbench.config import PipelineSpec
from mmbench.data.table import MultiModalTable
from mmbench.encoders.base import Encoder
from mmbench.evaluation import Fold, inner_split, tune_binary_threshold
from mmbench.fusion.base import EpochCallback, FeatureSet, Head
from mmbench.pipeline.cache import FeatureCache
from mmbench.pipeline.encode import build_encoders, encode, input_dims


@dataclass
class TrainedFold:
    """What :func:`train_fold` leaves: the fold's encoders, every row's features, the training
    rows' features, the trained head and its binary threshold (None: arg-max)."""

    encoders: dict[str, Encoder]
    features: FeatureSet
    train: FeatureSet
    head: Head
    threshold: float | None
    encoded_at: float
    """``time.perf_counter()`` when encoding ended and training the head began."""


def train_fold(
    table: MultiModalTable,
    spec: PipelineSpec,
    modalities: list[str],
    fold: Fold,
    cache: FeatureCache | None = None,
    *,
    keep_fitted: bool = False,
    on_epoch: EpochCallback | None = None,
    deadline: Deadline = NO_DEADLINE,
    encoding_deadline: Deadline = NO_DEADLINE,
    timing: dict[str, float] | None = None,
) -> TrainedFold:
    """Encoders fitted on ``fold.train`` (see :func:`~mmbench.pipeline.encode.encode` for
    ``keep_fitted``) and a head trained on those rows (:func:`fit_head`).

    The head checks ``deadline``; frozen encoding checks ``encoding_deadline`` between chunks
    of rows. ``timing["encode"]`` gains the seconds spent encoding, even when the head fails.
    """
    start = time.perf_counter()
    encoders = build_encoders(spec, modalities)
    features, towers = encode(
        table, encoders, fold.train, cache, keep_fitted=keep_fitted, deadline=encoding_deadline
    )
    encoded_at = time.perf_counter()
    if timing is not None:
        timing["encode"] += encoded_at - start
    train = features.take(fold.train)
    head, threshold = fit_head(spec, train, towers, table.n_classes, fold.seed, on_epoch, deadline)
    return TrainedFold(encoders, features, train, head, threshold, encoded_at)


def fit_head(
    spec: PipelineSpec,
    train: FeatureSet,
    towers: dict[str, Any],
    n_classes: int,
    seed: int,
    on_epoch: EpochCallback | None = None,
    deadline: Deadline = NO_DEADLINE,
) -> tuple[Head, float | None]:
    """Train a head on ``train`` (inner hold-out for early stopping); returns it and a threshold.

    The head checks ``deadline`` between epochs or boosting rounds.
    """
    from mmbench.fusion import create_head

    assert train.labels is not None
    head = create_head(
        spec.fusion, spec.training, input_dims(train, towers), n_classes, seed=seed, towers=towers
    )
    head.deadline = deadline
    split = inner_split(train.labels, seed, train.groups)
    if split is None:
        head.fit(train, None, on_epoch=on_epoch)
        return head, None
    fit_part, stop_part = train.take(split[0]), train.take(split[1])
    head.fit(fit_part, stop_part, on_epoch=on_epoch)
    threshold = None
    if spec.training.threshold_tuning and n_classes == 2:
        assert stop_part.labels is not None
        threshold = tune_binary_threshold(stop_part.labels, head.predict_proba(stop_part)[:, 1])
    return head, threshold

"""One fold's training path: encoders fitted on the fold's training rows and a head trained
on them, with an inner hold-out of those rows for early stopping and the binary threshold.

Cross-validation (:func:`~mmbench.pipeline.cv.evaluate_pipeline`) scores the fold it trains, and
:func:`~mmbench.pipeline.fitted.fit_fold_models` keeps it: both train through :func:`train_fold`,
so the kept fold models are the models whose out-of-fold predictions were scored.
"""

from __future__ import annotations

from typing import Any

from mmbench.budget import NO_DEADLINE, Deadline
from mmbench.config import PipelineSpec
from mmbench.evaluation import inner_split, tune_binary_threshold
from mmbench.fusion.base import EpochCallback, FeatureSet, Head
from mmbench.pipeline.encode import input_dims


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

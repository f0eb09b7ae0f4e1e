"""One candidate pipeline: encoders, feature cache and a fusion head, scored by cross-validation.

- :mod:`~mmbench.pipeline.cache`: the on-disk feature cache between encoders and heads.
- :mod:`~mmbench.pipeline.encode`: a table's rows as features (:func:`encode`).
- :mod:`~mmbench.pipeline.fold`: one fold's training path (:func:`train_fold`), the one that
  cross-validation scores and :func:`fit_fold_models` keeps.
- :mod:`~mmbench.pipeline.cv`: the cross-validation loop (:func:`evaluate_pipeline`).
- :mod:`~mmbench.pipeline.fitted`: models kept to predict new rows (:class:`FittedPipeline`,
  :class:`FoldModels`) and their pickles.
- :mod:`~mmbench.pipeline.references`: named reference pipelines built from a table's
  modalities alone (``--pipeline early-fusion-mlp``), the yardsticks of every leaderboard.
"""

from __future__ import annotations

from mmbench.pipeline.cv import CVResult, FoldResult, evaluate_pipeline
from mmbench.pipeline.encode import (
    build_encoders,
    encode,
    encode_seconds,
    frozen_features,
    take,
    transform,
)
from mmbench.pipeline.fitted import (
    FittedPipeline,
    FoldModels,
    dump,
    fit_fold_models,
    fit_pipeline,
)
from mmbench.pipeline.fold import TrainedFold, fit_head, train_fold

__all__ = [
    "CVResult",
    "FittedPipeline",
    "FoldModels",
    "FoldResult",
    "TrainedFold",
    "build_encoders",
    "dump",
    "encode",
    "encode_seconds",
    "evaluate_pipeline",
    "fit_fold_models",
    "fit_head",
    "fit_pipeline",
    "frozen_features",
    "take",
    "train_fold",
    "transform",
]

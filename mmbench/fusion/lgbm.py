"""LightGBM on the same concatenated features as the xgboost head: the cheap boosted-tree head.

It sees exactly :func:`~mmbench.fusion.trees.feature_matrix` (NaN for a missing modality's rows,
a presence column per modality, CSR when the n-grams are sparse) and splits natively on the
category codes an encoder declares. On sparse n-grams beside tabular columns it trains several
times faster than histogram XGBoost at the same score (``benchmarks/trees.py``): LightGBM bundles
mutually exclusive sparse columns, XGBoost builds a histogram for each of them. lightgbm is
imported when the head is fitted.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from mmbench.budget import Deadline
from mmbench.config import Range, TrainSpec
from mmbench.fusion.base import FUSIONS, FeatureSet, Head
from mmbench.fusion.trees import BoostedTreeHead, EvalSet


class LightGBMHead(BoostedTreeHead):
    """``lightgbm.LGBMClassifier`` on :func:`~mmbench.fusion.trees.feature_matrix`."""

    def _fit_model(
        self, x: Any, y: np.ndarray, weights: np.ndarray | None, evaluation: EvalSet | None
    ) -> Any:
        import lightgbm

        cats = [i for i, kind in enumerate(self._feature_types()) if kind == "c"]
        callbacks: list[Any] = [_deadline_callback(self.deadline)]
        kwargs: dict[str, Any] = {"sample_weight": weights}
        if evaluation is not None:
            kwargs["eval_set"] = [(evaluation.x, evaluation.y)]
            if evaluation.weights is not None:
                kwargs["eval_sample_weight"] = [evaluation.weights]
            callbacks.append(lightgbm.early_stopping(self.early_stopping_rounds, verbose=False))
        params = {**self.params, "n_jobs": self._n_jobs(x, every_core=-1)}
        model = lightgbm.LGBMClassifier(**params, random_state=self.seed, verbose=-1)
        with warnings.catch_warnings():  # eval_set: renamed eval_X/eval_y in 4.7, kept for older
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            model.fit(x, y, categorical_feature=cats or "auto", callbacks=callbacks, **kwargs)
        return model

    def _matrix(self, data: FeatureSet) -> Any:
        x = super()._matrix(data)
        return x.astype(np.float64) if hasattr(x, "tocsr") else x  # LightGBM's CSR needs float64

    def _trees(self) -> tuple[int, int | None]:
        best = self.model.best_iteration_
        return int(self.model.booster_.current_iteration()), int(best) if best else None

    def _column_gains(self) -> np.ndarray:
        gains = self.model.booster_.feature_importance(importance_type="gain")
        return np.asarray(gains, dtype=np.float64)


def _deadline_callback(deadline: Deadline) -> Any:
    """A LightGBM callback that stops a fit between boosting rounds once the budget is spent."""

    def check(env: Any) -> None:
        deadline.check(f"boosting round {env.iteration}")

    return check


@FUSIONS.register(
    "lightgbm",
    torch=False,
    sparse=True,
    search_space={
        "n_estimators": [100, 200, 400],
        "num_leaves": [7, 15, 31, 63],
        "learning_rate": Range(low=0.03, high=0.3, log=True),
    },
)
def build_lightgbm(
    n_classes: int,
    seed: int,
    training: TrainSpec,
    n_estimators: int = 200,
    num_leaves: int = 15,
    learning_rate: float = 0.1,
    min_child_samples: int = 2,
    subsample: float = 1.0,
    colsample_bytree: float = 1.0,
    reg_lambda: float = 0.0,
    n_jobs: int | None = None,
    early_stopping_rounds: int = 20,
    categorical: bool = True,
) -> Head:
    """LightGBM on concatenated features; ``n_jobs=None``: one thread for small matrices
    (under 2M stored cells), every core otherwise. ``min_child_samples`` is 2, not LightGBM's
    20: an n-gram in fewer training rows than that can never split, which cost 0.09 macro-F1 on
    emoji names and nothing measurable on adult or synthetic (``benchmarks/README.md`` §10). ``categorical``: split natively on declared
    category codes (``tabular`` with ``categorical: ordinal``)."""
    return LightGBMHead(
        n_classes,
        seed,
        training,
        n_estimators=n_estimators,
        num_leaves=num_leaves,
        learning_rate=learning_rate,
        min_child_samples=min_child_samples,
        subsample=subsample,
        subsample_freq=1 if subsample < 1.0 else 0,
        colsample_bytree=colsample_bytree,
        reg_lambda=reg_lambda,
        n_jobs=n_jobs,
        early_stopping_rounds=early_stopping_rounds,
        categorical=bool(categorical),
    )

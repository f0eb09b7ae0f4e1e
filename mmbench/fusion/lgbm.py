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
from mmbench.errors import MMBenchError
from mmbench.fusion.base import FUSIONS, EpochCallback, FeatureSet, Head
from mmbench.fusion.trees import SINGLE_THREAD_CELLS, BoostedTreeHead, feature_matrix


class LightGBMHead(BoostedTreeHead):
    """``lightgbm.LGBMClassifier`` on :func:`feature_matrix`, early-stopped on ``valid``."""

    def fit(
        self,
        train: FeatureSet,
        valid: FeatureSet | None = None,
        on_epoch: EpochCallback | None = None,
    ) -> LightGBMHead:
        """Boost on ``train``; ``on_epoch`` is not called (there are no epochs to prune)."""
        import lightgbm

        self._learn_layout(train)
        x = self._matrix(train)
        y = np.asarray(train.labels, dtype=np.int64)
        cats = [i for i, kind in enumerate(self._feature_types()) if kind == "c"]
        callbacks: list[Any] = [_deadline_callback(self.deadline)]
        kwargs: dict[str, Any] = {"sample_weight": self._weights(y, y)}
        if valid is not None and valid.labels is not None and len(valid) > 0:
            yv = np.asarray(valid.labels, dtype=np.int64)
            kwargs["eval_set"] = [(self._matrix(valid), yv)]
            weights = self._weights(y, yv)
            if weights is not None:
                kwargs["eval_sample_weight"] = [weights]
            callbacks.append(lightgbm.early_stopping(self.early_stopping_rounds, verbose=False))
        params = dict(self.params)
        if params.get("n_jobs") is None:  # as the xgboost head: one thread for small matrices
            params["n_jobs"] = 1 if _cells(x) < SINGLE_THREAD_CELLS else -1
        self.model = lightgbm.LGBMClassifier(**params, random_state=self.seed, verbose=-1)
        with warnings.catch_warnings():  # eval_set: renamed eval_X/eval_y in 4.7, kept for older
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            self.model.fit(x, y, categorical_feature=cats or "auto", callbacks=callbacks, **kwargs)
        return self

    def _matrix(self, data: FeatureSet) -> Any:
        x = feature_matrix(data, self.modalities, self.codes)
        return x.astype(np.float64) if hasattr(x, "tocsr") else x  # LightGBM's CSR needs float64

    def predict_proba(self, data: FeatureSet) -> np.ndarray:
        if self.model is None:
            raise MMBenchError("predict_proba called before fit")
        seen = self.model.predict_proba(self._matrix(data))
        proba = np.zeros((seen.shape[0], self.n_classes), dtype=np.float64)
        proba[:, np.asarray(self.model.classes_, dtype=np.int64)] = seen
        return proba / proba.sum(axis=1, keepdims=True)

    def info(self) -> dict[str, Any]:
        if self.model is None:
            return {}
        booster = self.model.booster_
        out: dict[str, Any] = {"n_trees": int(booster.current_iteration())}
        if self.model.best_iteration_:
            out["best_iteration"] = int(self.model.best_iteration_)
        gains = booster.feature_importance(importance_type="gain")
        out["modality_importance"] = self._shares(np.asarray(gains, dtype=np.float64))
        return out

    def _shares(self, gains: np.ndarray) -> dict[str, float]:
        """Share of total split gain per modality (its features and its presence column)."""
        totals = dict.fromkeys(self.modalities, 0.0)
        start = 0
        for m, width in zip(self.modalities, self.widths, strict=True):
            totals[m] += float(gains[start : start + width].sum())
            start += width
        for i, m in enumerate(self.modalities):
            totals[m] += float(gains[start + i])
        total = sum(totals.values()) or 1.0
        return {m: v / total for m, v in totals.items()}


def _cells(x: Any) -> int:
    return int(x.nnz) if hasattr(x, "nnz") else int(x.size)


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

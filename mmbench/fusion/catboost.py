"""CatBoost on the same concatenated features as the xgboost and lightgbm heads.

It sees :func:`~mmbench.fusion.trees.feature_matrix` (NaN for a missing modality's rows, a
presence column per modality) and hands the category codes an encoder declares to CatBoost as
categorical features, which it encodes by ordered target statistics rather than by splitting on
code sets; an unseen code and a missing modality's code are the category ``-1``. Early stopping
uses the inner hold-out the pipeline gives every head (whole groups when the table has them).
CatBoost takes no sparse input with categorical features, so the head is dense-only
(``sparse=False``): n-grams reach it SVD-reduced or as capped count columns. It runs on
``n_jobs`` threads, else one thread for a small matrix, else the run's share of the machine
(``OMP_NUM_THREADS``, which a worker is given; CatBoost's own thread pool does not read it).
catboost is an optional dependency (the ``catboost`` extra), imported when the head is fitted;
without it the default search space leaves this head out.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import numpy as np

from mmbench.budget import Deadline, DeadlineReached
from mmbench.config import Range, TrainSpec
from mmbench.errors import MMBenchError
from mmbench.fusion.base import FUSIONS, FeatureSet, Head
from mmbench.fusion.trees import BoostedTreeHead, EvalSet


def run_threads() -> int:
    """The run's threads: ``OMP_NUM_THREADS`` when set (a worker's share), else every core."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return -1


class CatBoostHead(BoostedTreeHead):
    """``catboost.CatBoostClassifier`` on :func:`~mmbench.fusion.trees.feature_matrix`."""

    def _matrix(self, data: FeatureSet) -> Any:
        x = super()._matrix(data)
        return np.asarray(x.todense(), dtype=np.float32) if hasattr(x, "tocsr") else x

    def _fit_model(
        self, x: Any, y: np.ndarray, weights: np.ndarray | None, evaluation: EvalSet | None
    ) -> Any:
        try:
            import catboost
        except ImportError:
            raise MMBenchError(
                "fusion 'catboost' needs the catboost package: pip install 'mmbench[catboost]'"
            ) from None
        params = {k: v for k, v in self.params.items() if k != "n_jobs"}
        model = catboost.CatBoostClassifier(
            **params,
            thread_count=self._n_jobs(x, every_core=run_threads()),
            random_seed=self.seed,
            loss_function="Logloss" if self.n_classes == 2 else "MultiClass",
            verbose=False,
            allow_writing_files=False,  # no catboost_info/ folder in the working directory
        )
        deadline = _DeadlineCallback(self.deadline)
        kwargs: dict[str, Any] = {"callbacks": [deadline]}
        if evaluation is not None:
            kwargs["eval_set"] = self._pool(evaluation.x, evaluation.y, evaluation.weights)
            kwargs["early_stopping_rounds"] = self.early_stopping_rounds
        model.fit(self._pool(x, y, weights), **kwargs)
        if deadline.reached is not None:
            raise deadline.reached
        return model

    def _model_proba(self, x: Any) -> np.ndarray:
        return np.asarray(self.model.predict_proba(self._pool(x)))

    def _pool(self, x: np.ndarray, y: np.ndarray | None = None, weights: Any = None) -> Any:
        """Numeric columns as numbers, declared code columns as category names."""
        import catboost

        numeric, codes = self._columns()
        cats = None
        if codes.size:
            values = x[:, codes]
            cats = np.where(np.isnan(values), -1, values).astype(np.int64).astype(str)
        data = catboost.FeaturesData(
            num_feature_data=np.ascontiguousarray(x[:, numeric], dtype=np.float32),
            cat_feature_data=None if cats is None else cats.astype(object),
        )
        return catboost.Pool(data, label=y, weight=weights)

    def _columns(self) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the numeric and of the category-code columns; CatBoost's
        ``FeaturesData`` orders them numeric first."""
        kinds = np.asarray(self._feature_types())
        return np.flatnonzero(kinds == "q"), np.flatnonzero(kinds == "c")

    def _trees(self) -> tuple[int, int | None]:
        best = self.model.get_best_iteration()
        return int(self.model.tree_count_), None if best is None else int(best)

    def _column_gains(self) -> np.ndarray:
        numeric, codes = self._columns()
        importance = np.asarray(self.model.get_feature_importance(), dtype=np.float64)
        gains = np.zeros(len(numeric) + len(codes))
        gains[numeric] = importance[: len(numeric)]
        gains[codes] = importance[len(numeric) :]
        return gains


class _DeadlineCallback:
    """A CatBoost callback that stops a fit between boosting rounds once the budget is spent.

    CatBoost wraps an exception raised in a callback in its own error, so the callback stops
    the fit and keeps the :class:`~mmbench.budget.DeadlineReached` for the head to raise."""

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline
        self.reached: DeadlineReached | None = None

    def after_iteration(self, info: Any) -> bool:
        try:
            self.deadline.check(f"boosting round {info.iteration - 1}")  # 1-based
        except DeadlineReached as exc:
            self.reached = exc
            return False  # stop
        return True  # go on


@FUSIONS.register(
    "catboost",
    torch=False,
    sparse=False,
    default_search=importlib.util.find_spec("catboost") is not None,
    search_space={
        "n_estimators": [200, 400, 800],
        "depth": Range(low=4, high=8),
        "learning_rate": Range(low=0.03, high=0.3, log=True),
        "l2_leaf_reg": Range(low=1.0, high=10.0, log=True),
        "one_hot_max_size": [2, 10],
    },
)
def build_catboost(
    n_classes: int,
    seed: int,
    training: TrainSpec,
    n_estimators: int = 400,
    depth: int = 6,
    learning_rate: float = 0.1,
    l2_leaf_reg: float = 3.0,
    border_count: int = 254,
    one_hot_max_size: int = 2,
    n_jobs: int | None = None,
    early_stopping_rounds: int = 20,
    categorical: bool = True,
) -> Head:
    """CatBoost on concatenated features; ``n_jobs=None``: one thread for small matrices
    (under 2M cells), the run's share of the cores otherwise. ``depth``, ``l2_leaf_reg``,
    ``border_count`` and ``one_hot_max_size`` are CatBoost's, at its defaults.
    It trains on CPU whatever ``training.device`` says. ``categorical``: declared category codes (``tabular`` with ``categorical: ordinal``) as
    CatBoost categorical features rather than numbers."""
    return CatBoostHead(
        n_classes,
        seed,
        training,
        n_estimators=n_estimators,
        depth=depth,
        learning_rate=learning_rate,
        l2_leaf_reg=l2_leaf_reg,
        border_count=border_count,
        one_hot_max_size=one_hot_max_size,
        early_stopping_rounds=early_stopping_rounds,
        categorical=bool(categorical),
        n_jobs=n_jobs,
    )

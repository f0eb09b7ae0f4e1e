"""Gradient-boosted trees on concatenated features: the strong tabular-style baseline.

XGBoost on :func:`~mmbench.fusion.trees.feature_matrix` (NaN for a missing modality's rows, so
that XGBoost's learned default directions handle them instead of treating zero vectors as real
data). xgboost is imported when the head is fitted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmbench.budget import Deadline
from mmbench.config import Range, TrainSpec
from mmbench.device import resolve_device
from mmbench.fusion.base import FUSIONS, Head
from mmbench.fusion.trees import BoostedTreeHead, EvalSet


def _deadline_callback(deadline: Deadline) -> Any:
    """An XGBoost callback that stops a fit between boosting rounds once the budget is spent."""
    import xgboost

    class _CheckDeadline(xgboost.callback.TrainingCallback):  # type: ignore[misc]
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            deadline.check(f"boosting round {epoch}")
            return False

    return _CheckDeadline()


class XGBoostHead(BoostedTreeHead):
    """``xgboost.XGBClassifier`` on :func:`~mmbench.fusion.trees.feature_matrix`."""

    def _fit_model(
        self, x: Any, y: np.ndarray, weights: np.ndarray | None, evaluation: EvalSet | None
    ) -> Any:
        import xgboost

        params = dict(self.params)
        if self.codes:
            params.update(enable_categorical=True, feature_types=self._feature_types())
        params["n_jobs"] = self._n_jobs(x, every_core=None)
        model = xgboost.XGBClassifier(
            **params,
            random_state=self.seed,
            device=resolve_device(self.training.device, option="training.device"),
            eval_metric="logloss" if self.n_classes == 2 else "mlogloss",
            early_stopping_rounds=self.early_stopping_rounds if evaluation else None,
            callbacks=[_deadline_callback(self.deadline)],
        )
        kwargs: dict[str, Any] = {"sample_weight": weights, "verbose": False}
        if evaluation is not None:
            kwargs["eval_set"] = [(evaluation.x, evaluation.y)]
            if evaluation.weights is not None:
                kwargs["sample_weight_eval_set"] = [evaluation.weights]
        model.fit(x, y, **kwargs)
        model.set_params(callbacks=None)  # a fitted model must pickle (saved pipelines)
        # Predict on CPU: inputs are numpy, and a GPU booster would warn about the copy.
        model.get_booster().set_param({"device": "cpu"})
        return model

    def _trees(self) -> tuple[int, int | None]:
        best = getattr(self.model, "best_iteration", None)
        stopped = self.early_stopping_rounds and best is not None
        return int(self.model.get_booster().num_boosted_rounds()), int(best) if stopped else None

    def _column_gains(self) -> np.ndarray:
        gains = np.zeros(sum(self.widths) + len(self.modalities))
        scores = self.model.get_booster().get_score(importance_type="total_gain")
        for key, gain in scores.items():  # keys are "f<column>"
            gains[int(key[1:])] += float(gain)
        return gains


@FUSIONS.register(
    "xgboost",
    torch=False,
    sparse=True,
    search_space={
        "n_estimators": [100, 200, 400],
        "max_depth": Range(low=2, high=6),
        "learning_rate": Range(low=0.03, high=0.3, log=True),
    },
)
def build_xgboost(
    n_classes: int,
    seed: int,
    training: TrainSpec,
    n_estimators: int = 200,
    max_depth: int = 4,
    learning_rate: float = 0.1,
    subsample: float = 1.0,
    colsample_bytree: float = 1.0,
    min_child_weight: float = 1.0,
    reg_lambda: float = 1.0,
    tree_method: str = "hist",
    n_jobs: int | None = None,
    early_stopping_rounds: int = 20,
    categorical: bool = True,
) -> Head:
    """XGBoost on concatenated features; ``n_jobs=None``: one thread for small matrices
    (under 2M cells), every core otherwise. ``categorical``: split natively on the category
    codes an encoder declares (``tabular`` with ``categorical: ordinal``) rather than on their
    order."""
    return XGBoostHead(
        n_classes,
        seed,
        training,
        n_estimators=n_estimators,
        max_depth=max_depth,
        learning_rate=learning_rate,
        subsample=subsample,
        colsample_bytree=colsample_bytree,
        min_child_weight=min_child_weight,
        reg_lambda=reg_lambda,
        tree_method=tree_method,
        n_jobs=n_jobs,
        early_stopping_rounds=early_stopping_rounds,
        categorical=bool(categorical),
    )

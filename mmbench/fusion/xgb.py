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
from mmbench.errors import MMBenchError
from mmbench.fusion.base import FUSIONS, EpochCallback, FeatureSet, Head
from mmbench.fusion.trees import SINGLE_THREAD_CELLS, BoostedTreeHead, feature_matrix


def _deadline_callback(deadline: Deadline) -> Any:
    """An XGBoost callback that stops a fit between boosting rounds once the budget is spent."""
    import xgboost

    class _CheckDeadline(xgboost.callback.TrainingCallback):  # type: ignore[misc]
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            deadline.check(f"boosting round {epoch}")
            return False

    return _CheckDeadline()


class XGBoostHead(BoostedTreeHead):
    """``xgboost.XGBClassifier`` on :func:`feature_matrix`, early-stopped on ``valid``."""

    def _classifier(self, early_stopping: bool, n_cells: int) -> Any:
        import xgboost

        params = dict(self.params)
        if self.codes:
            params.update(enable_categorical=True, feature_types=self._feature_types())
        if params.get("n_jobs") is None and n_cells < SINGLE_THREAD_CELLS:
            # small matrices: OpenMP threads cost more than they bring, and they spin-wait
            # badly when another process shares the cores (seen: 100x slower trials)
            params["n_jobs"] = 1
        return xgboost.XGBClassifier(
            **params,
            random_state=self.seed,
            device=resolve_device(self.training.device, option="training.device"),
            eval_metric="logloss" if self.n_classes == 2 else "mlogloss",
            early_stopping_rounds=self.early_stopping_rounds if early_stopping else None,
            callbacks=[_deadline_callback(self.deadline)],
        )

    def fit(
        self,
        train: FeatureSet,
        valid: FeatureSet | None = None,
        on_epoch: EpochCallback | None = None,
    ) -> XGBoostHead:
        """Boost on ``train``; ``on_epoch`` is not called (there are no epochs to prune)."""
        self._learn_layout(train)
        x = feature_matrix(train, self.modalities, self.codes)
        y = np.asarray(train.labels, dtype=np.int64)
        fit_kwargs: dict[str, Any] = {"sample_weight": self._weights(y, y), "verbose": False}
        use_valid = valid is not None and valid.labels is not None and len(valid) > 0
        if use_valid:
            assert valid is not None and valid.labels is not None
            yv = np.asarray(valid.labels, dtype=np.int64)
            fit_kwargs["eval_set"] = [(feature_matrix(valid, self.modalities, self.codes), yv)]
            weights = self._weights(y, yv)
            if weights is not None:
                fit_kwargs["sample_weight_eval_set"] = [weights]
        self.model = self._classifier(early_stopping=use_valid, n_cells=x.size)
        self.model.fit(x, y, **fit_kwargs)
        self.model.set_params(callbacks=None)  # a fitted model must pickle (saved pipelines)
        # Predict on CPU: inputs are numpy, and a GPU booster would warn about the copy.
        self.model.get_booster().set_param({"device": "cpu"})
        return self

    def predict_proba(self, data: FeatureSet) -> np.ndarray:
        if self.model is None:
            raise MMBenchError("predict_proba called before fit")
        proba = np.asarray(
            self.model.predict_proba(feature_matrix(data, self.modalities, self.codes)),
            dtype=np.float64,
        )
        return proba / proba.sum(axis=1, keepdims=True)  # float32 sums drift from one

    def info(self) -> dict[str, Any]:
        if self.model is None:
            return {}
        out: dict[str, Any] = {"n_trees": int(self.model.get_booster().num_boosted_rounds())}
        best = getattr(self.model, "best_iteration", None)
        if self.early_stopping_rounds and best is not None:
            out["best_iteration"] = int(best)
        out["modality_importance"] = self._modality_importance()
        return out

    def _modality_importance(self) -> dict[str, float]:
        """Share of total split gain per modality (its features and its presence column)."""
        owner: list[str] = []
        for m, width in zip(self.modalities, self.widths, strict=True):
            owner += [m] * width
        owner += self.modalities  # the presence columns
        totals = dict.fromkeys(self.modalities, 0.0)
        gains = self.model.get_booster().get_score(importance_type="total_gain")
        for key, gain in gains.items():  # keys are "f<column>"
            totals[owner[int(key[1:])]] += float(gain)
        total = sum(totals.values()) or 1.0
        return {m: v / total for m, v in totals.items()}


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

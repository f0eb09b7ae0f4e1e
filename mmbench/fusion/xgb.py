"""Gradient-boosted trees on concatenated features: the strong tabular-style baseline.

Early fusion by concatenation, with one presence column per modality; a missing modality's
features become NaN so that XGBoost's learned default directions handle them instead of treating
zero vectors as real data. xgboost is imported when the head is fitted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmbench.budget import Deadline
from mmbench.config import Range, TrainSpec
from mmbench.device import resolve_device
from mmbench.errors import MMBenchError
from mmbench.fusion.base import FUSIONS, EpochCallback, FeatureSet, Head, is_sparse
from mmbench.fusion.regularisers import class_weights


def feature_matrix(
    data: FeatureSet, modalities: list[str], codes: dict[str, int] | None = None
) -> Any:
    """``[x_1 | ... | x_M | present_1 ... present_M]`` with missing rows of ``x_m`` as NaN.

    When any block is sparse (n-gram TF-IDF) the result is a CSR matrix; XGBoost then treats
    absent entries as missing, as it would in a hand-written sparse pipeline. ``codes[m]``
    trailing columns of block ``m`` are category codes: unseen codes (-1) become missing, and
    in a CSR result their zeros are stored (code 0 is a category, not a missing value).
    """
    codes = codes or {}
    blocks: list[Any] = []
    flags = []
    for m in modalities:
        if m not in data.features:
            raise MMBenchError(
                f"the xgboost head was trained with modality {m!r}; the data lack it"
            )
        present = np.asarray(data.present[m], dtype=bool)
        blocks.append(_block(data.features[m], present, m, codes.get(m, 0)))
        flags.append(present.astype(np.float32)[:, None])
    if any(is_sparse(b) for b in blocks):
        from scipy import sparse

        csr = [
            _csr(b, keep_zeros=codes.get(m, 0) > 0) for m, b in zip(modalities, blocks, strict=True)
        ]
        return sparse.hstack(csr + [sparse.csr_matrix(f) for f in flags], format="csr")
    return np.concatenate(blocks + flags, axis=1)


def _csr(x: Any, keep_zeros: bool) -> Any:
    """CSR of a block; with ``keep_zeros`` a dense block's zeros stay stored and NaNs absent."""
    from scipy import sparse

    if is_sparse(x) or not keep_zeros:
        return sparse.csr_matrix(x)
    rows, cols = np.nonzero(~np.isnan(x))
    return sparse.csr_matrix((x[rows, cols], (rows, cols)), shape=x.shape)


def _block(x: Any, present: np.ndarray, modality: str, codes: int = 0) -> Any:
    if is_sparse(x):
        return x.tocsr().multiply(present[:, None].astype(np.float32)).tocsr()
    x = np.asarray(x)
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.number):
        raise MMBenchError(
            f"the xgboost head needs a numeric (rows, dim) feature matrix per modality; "
            f"{modality!r} has shape {x.shape} and dtype {x.dtype} (a trainable encoder?)"
        )
    x = x.astype(np.float32, copy=True)
    if codes:
        tail = x[:, -codes:]
        tail[tail < 0] = np.nan
    x[~present] = np.nan
    return x


SINGLE_THREAD_CELLS = 2_000_000


def _deadline_callback(deadline: Deadline) -> Any:
    """An XGBoost callback that stops a fit between boosting rounds once the budget is spent."""
    import xgboost

    class _CheckDeadline(xgboost.callback.TrainingCallback):  # type: ignore[misc]
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            deadline.check(f"boosting round {epoch}")
            return False

    return _CheckDeadline()


class XGBoostHead(Head):
    """``xgboost.XGBClassifier`` on :func:`feature_matrix`, early-stopped on ``valid``."""

    def __init__(self, n_classes: int, seed: int, training: TrainSpec, **params: Any) -> None:
        self.n_classes = n_classes
        self.seed = seed
        self.training = training
        self.early_stopping_rounds = params.pop("early_stopping_rounds")
        self.native_categorical = params.pop("categorical", True)
        self.params = params
        self.codes: dict[str, int] = {}
        self.modalities: list[str] = []
        self.widths: list[int] = []
        self.model: Any = None

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

    def _learn_layout(self, train: FeatureSet) -> None:
        """What ``predict_proba`` rebuilds the matrix from: modalities, widths, category codes."""
        if train.labels is None:
            raise MMBenchError("training data has no labels")
        self.modalities = list(train.features)
        self.widths = [int(train.features[m].shape[1]) for m in self.modalities]
        self.codes = self._code_columns(train) if self.native_categorical else {}

    def _weights(self, train_labels: np.ndarray, labels: np.ndarray) -> np.ndarray | None:
        if not self.training.class_weight:
            return None
        return class_weights(train_labels, self.n_classes)[labels]

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

    def _code_columns(self, train: FeatureSet) -> dict[str, int]:
        """Trailing category-code columns per dense block, as the encoders declared them."""
        declared = train.meta.get("categorical", {})
        return {
            m: int(k)
            for m, k in declared.items()
            if m in train.features
            and not is_sparse(train.features[m])
            and 0 < k <= train.features[m].shape[1]
        }

    def _feature_types(self) -> list[str]:
        """XGBoost's ``"q"`` (quantitative) or ``"c"`` (categorical) per column."""
        types: list[str] = []
        for m, width in zip(self.modalities, self.widths, strict=True):
            k = self.codes.get(m, 0)
            types += ["q"] * (width - k) + ["c"] * k
        return types + ["q"] * len(self.modalities)  # presence columns

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

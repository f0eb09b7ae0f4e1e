"""What every boosted-tree head shares: the feature matrix of concatenated blocks and a base
class that learns its layout (modalities, widths, declared category codes) and class weights,
fits on the matrix, predicts a column per class and reports each modality's share of the gain.

Early fusion by concatenation, with one presence column per modality; a missing modality's
features become NaN so that the trees' learned default directions handle them instead of
treating zero vectors as real data. The xgboost (:mod:`~mmbench.fusion.xgb`) and lightgbm
(:mod:`~mmbench.fusion.lgbm`) heads are subclasses of :class:`BoostedTreeHead` holding only
their library's calls.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmbench.config import TrainSpec
from mmbench.errors import MMBenchError
from mmbench.fusion.base import EpochCallback, FeatureSet, Head, is_sparse
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
            raise MMBenchError(f"the tree head was trained with modality {m!r}; the data lack it")
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
            f"a tree head needs a numeric (rows, dim) feature matrix per modality; "
            f"{modality!r} has shape {x.shape} and dtype {x.dtype} (a trainable encoder?)"
        )
    x = x.astype(np.float32, copy=True)
    if codes:
        tail = x[:, -codes:]
        tail[tail < 0] = np.nan
    x[~present] = np.nan
    return x


SINGLE_THREAD_CELLS = 2_000_000
"""Below this many stored cells a head without ``n_jobs`` fits on one thread: OpenMP threads
cost more than they bring on small matrices, and they spin-wait badly when another process
shares the cores (seen: 100x slower trials)."""


def stored_cells(x: Any) -> int:
    """Stored entries of a dense or CSR matrix."""
    return int(x.nnz) if is_sparse(x) else int(x.size)


class BoostedTreeHead(Head):
    """A boosted-tree head on :func:`feature_matrix`: its options, layout, class weights, the
    fit and predict steps and the report of what it learned.

    A subclass holds only its library's calls: :meth:`_fit_model` (fit a classifier on the
    matrix, early-stopped on the evaluation set when there is one), :meth:`_trees` and
    :meth:`_column_gains`; :meth:`_matrix` when its library wants the matrix in another form.
    """

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

    def fit(
        self,
        train: FeatureSet,
        valid: FeatureSet | None = None,
        on_epoch: EpochCallback | None = None,
    ) -> BoostedTreeHead:
        """Boost on ``train``, early-stopped on ``valid``; ``on_epoch`` is not called (there
        are no epochs to prune)."""
        self._learn_layout(train)
        x = self._matrix(train)
        y = np.asarray(train.labels, dtype=np.int64)
        evaluation = None
        if valid is not None and valid.labels is not None and len(valid) > 0:
            yv = np.asarray(valid.labels, dtype=np.int64)
            evaluation = EvalSet(self._matrix(valid), yv, self._weights(y, yv))
        self.model = self._fit_model(x, y, self._weights(y, y), evaluation)
        return self

    def predict_proba(self, data: FeatureSet) -> np.ndarray:
        if self.model is None:
            raise MMBenchError("predict_proba called before fit")
        seen = self._model_proba(self._matrix(data))
        proba = np.zeros((seen.shape[0], self.n_classes), dtype=np.float64)
        proba[:, np.asarray(self.model.classes_, dtype=np.int64)] = seen
        return proba / proba.sum(axis=1, keepdims=True)  # float32 sums drift from one

    def info(self) -> dict[str, Any]:
        if self.model is None:
            return {}
        n_trees, best = self._trees()
        out: dict[str, Any] = {"n_trees": n_trees}
        if best is not None:
            out["best_iteration"] = best
        out["modality_importance"] = self._modality_importance(self._column_gains())
        return out

    @abstractmethod
    def _fit_model(
        self, x: Any, y: np.ndarray, weights: np.ndarray | None, evaluation: EvalSet | None
    ) -> Any:
        """The library's fitted classifier (``predict_proba``, ``classes_``) on ``x``."""

    @abstractmethod
    def _trees(self) -> tuple[int, int | None]:
        """Trees boosted, and the best iteration when early stopping chose one."""

    @abstractmethod
    def _column_gains(self) -> np.ndarray:
        """Total split gain per column of :func:`feature_matrix`."""

    def _matrix(self, data: FeatureSet) -> Any:
        return feature_matrix(data, self.modalities, self.codes)

    def _model_proba(self, x: Any) -> np.ndarray:
        """The fitted classifier's probabilities of the classes it saw, on a matrix."""
        return np.asarray(self.model.predict_proba(x))

    def _n_jobs(self, x: Any, every_core: int | None) -> int | None:
        """The ``n_jobs`` option, else one thread for a small matrix, else ``every_core``."""
        n_jobs = self.params.get("n_jobs")
        if n_jobs is not None:
            return int(n_jobs)
        return 1 if stored_cells(x) < SINGLE_THREAD_CELLS else every_core

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

    def _modality_importance(self, gains: np.ndarray) -> dict[str, float]:
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


@dataclass(frozen=True)
class EvalSet:
    """The early-stopping hold-out as a head's library takes it: matrix, labels, weights."""

    x: Any
    y: np.ndarray
    weights: np.ndarray | None

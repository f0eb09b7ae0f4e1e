"""What every boosted-tree head shares: the feature matrix of concatenated blocks and a base
class that learns its layout (modalities, widths, declared category codes) and class weights.

Early fusion by concatenation, with one presence column per modality; a missing modality's
features become NaN so that the trees' learned default directions handle them instead of
treating zero vectors as real data. The xgboost (:mod:`~mmbench.fusion.xgb`) and lightgbm
(:mod:`~mmbench.fusion.lgbm`) heads are subclasses of :class:`BoostedTreeHead`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmbench.config import TrainSpec
from mmbench.errors import MMBenchError
from mmbench.fusion.base import FeatureSet, Head, is_sparse
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


class BoostedTreeHead(Head):
    """A boosted-tree head on :func:`feature_matrix`: its options, layout and class weights.

    Subclasses fit their library's classifier on the matrix, early-stopped on ``valid``.
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

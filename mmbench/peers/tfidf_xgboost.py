"""``tfidf-xgboost``: the script a practitioner writes first, as a fixed reference.

Sparse TF-IDF 1–2-grams (up to 20k features) on the text, one-hot categoricals, raw numbers and
media columns, XGBoost (400 trees, depth 6, hist) with class-balanced sample weights. No tuning:
it answers "does the search beat the obvious script?".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mmbench.peers.base import PeerModel, register_peer
from mmbench.peers.frame import TEXT_COLUMN, categorical_columns

TFIDF_MAX_FEATURES = 20_000
XGB_TREES = 400
XGB_DEPTH = 6
XGB_JOBS = 1
"""One thread: on the 2 shared cores, 40 trees on the emoji matrix (2,741 × 3,116) took 68–69 s
with ``n_jobs=2`` against 5.5–8.4 s with 1 (OpenMP threads spin-wait when another process holds
a core); mmbench's own XGBoost head makes the same choice for small matrices."""


@register_peer(
    "tfidf-xgboost",
    "TF-IDF 1-2-grams + one-hot categoricals + raw numbers -> XGBoost (400 trees, depth 6), "
    "class-balanced sample weights",
    requires=("sklearn", "scipy", "xgboost"),
)
def _fit_tfidf_xgboost(
    frame: pd.DataFrame,
    y: np.ndarray,
    n_classes: int,
    seed: int,
    time_limit_s: float | None,
    metric: str,
) -> PeerModel:
    """The fixed script: no tuning, so ``time_limit_s`` and ``metric`` do not change it."""
    import xgboost
    from sklearn.utils.class_weight import compute_sample_weight

    features = _SparseFeatures().fit(frame)
    x = features.transform(frame)
    model = xgboost.XGBClassifier(
        n_estimators=XGB_TREES,
        max_depth=XGB_DEPTH,
        tree_method="hist",
        n_jobs=XGB_JOBS,
        random_state=seed,
    )
    model.fit(x, y, sample_weight=compute_sample_weight("balanced", y))
    return _TfidfXGBoost(features, model)


@dataclass
class _TfidfXGBoost:
    features: _SparseFeatures
    model: Any

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model.predict_proba(self.features.transform(frame)))


class _SparseFeatures:
    """``[tfidf(text) | onehot(categoricals) | numbers]`` as one CSR matrix.

    As in the script, numbers go into the sparse matrix as they are, so XGBoost reads a stored
    NaN *and* an exact 0 as missing (CSR does not store zeros); trees learn a default direction
    for both, which is the script's behaviour, not a tuned one.
    """

    def fit(self, frame: pd.DataFrame) -> _SparseFeatures:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.preprocessing import OneHotEncoder

        self.categorical = categorical_columns(frame)
        skip = {TEXT_COLUMN, *self.categorical}
        self.numeric = [str(c) for c in frame.columns if str(c) not in skip]
        self.tfidf = None
        if TEXT_COLUMN in frame.columns:
            self.tfidf = TfidfVectorizer(
                ngram_range=(1, 2), max_features=TFIDF_MAX_FEATURES, sublinear_tf=True
            ).fit(_texts(frame))
        self.onehot = None
        if self.categorical:
            self.onehot = OneHotEncoder(handle_unknown="ignore").fit(
                _categories(frame, self.categorical)
            )
        return self

    def transform(self, frame: pd.DataFrame) -> Any:
        from scipy import sparse

        blocks = [sparse.csr_matrix((len(frame), 0), dtype=np.float32)]
        if self.tfidf is not None:
            blocks.append(self.tfidf.transform(_texts(frame)))
        if self.onehot is not None:
            blocks.append(self.onehot.transform(_categories(frame, self.categorical)))
        if self.numeric:
            numbers = frame[self.numeric].to_numpy(dtype=np.float32, na_value=np.nan)
            blocks.append(sparse.csr_matrix(numbers))
        return sparse.hstack(blocks, format="csr", dtype=np.float32)


def _texts(frame: pd.DataFrame) -> list[str]:
    return ["" if pd.isna(t) else str(t) for t in frame[TEXT_COLUMN].tolist()]


def _categories(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Strings, with missing cells as their own category (the encoder rejects mixed types)."""
    cells = frame[columns].astype(object).to_numpy()
    return np.array(
        [["<missing>" if pd.isna(v) else str(v) for v in row] for row in cells], dtype=object
    ).reshape(len(frame), len(columns))

"""Row-level out-of-fold predictions, stored compactly: in a result file (``out_of_fold``, so a
leaderboard can test whether two rows of a dataset really differ) and in the regression gate's
baseline file.

Labels, fold indices and predicted labels are base64 of byte (or int16) arrays; probabilities,
kept only for metrics that score them, are quantised to 1/65535. A predicted label is the one
each fold was scored with (its cross-fitted decision weights, else its threshold), so the
comparison recomputes exactly the metric the file reports.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from mmbench.errors import MMBenchError


class OutOfFold(BaseModel):
    """Every row's out-of-fold prediction, for every CV repeat (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    n_rows: int
    repeats: int
    n_classes: int
    labels: str
    folds: str
    pred: str
    proba: str | None = None

    @classmethod
    def of(
        cls,
        labels: np.ndarray,
        folds: np.ndarray,
        pred: np.ndarray,
        proba: np.ndarray | None,
        n_classes: int,
    ) -> OutOfFold:
        """The record of ``folds[r, i]`` (fold of row ``i`` in repeat ``r``, -1: none),
        ``pred[r, i]`` and ``proba[r, i, c]``."""
        packed = None
        if proba is not None:
            quantised = np.round(np.clip(proba, 0.0, 1.0) * 65535).astype("<u2")
            packed = base64.b64encode(quantised.tobytes()).decode("ascii")
        return cls(
            n_rows=len(labels),
            repeats=folds.shape[0],
            n_classes=n_classes,
            labels=pack(labels),
            folds=pack(folds),
            pred=pack(pred),
            proba=packed,
        )

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """``(labels, folds, pred, proba)`` as :meth:`of` took them (proba rows sum to 1)."""
        shape = (self.repeats, self.n_rows)
        proba = None
        if self.proba is not None:
            raw = base64.b64decode(self.proba)
            proba = np.frombuffer(raw, dtype="<u2").reshape((*shape, self.n_classes)) / 65535.0
            # rounding to 16 bits moves a row's sum off 1 by up to ~1e-5: enough for sklearn's
            # multi-class AUC to refuse it (every fold undefined), so each row sums to 1 again
            proba /= np.clip(proba.sum(axis=-1, keepdims=True), 1e-12, None)
        labels = unpack(self.labels, (self.n_rows,))
        return labels, unpack(self.folds, shape), unpack(self.pred, shape), proba


def pack(values: np.ndarray) -> str:
    """Base64 of the smallest little-endian integer type that holds ``values``."""
    values = np.asarray(values)
    dtype = "<i1" if values.min(initial=0) >= -128 and values.max(initial=0) < 128 else "<i2"
    return base64.b64encode(values.astype(dtype).tobytes()).decode("ascii")


def unpack(text: str, shape: tuple[int, ...]) -> np.ndarray:
    raw = base64.b64decode(text)
    n = int(np.prod(shape))
    dtype = {n: "<i1", 2 * n: "<i2"}.get(len(raw))
    if dtype is None:
        raise MMBenchError(f"packed array of {len(raw)} bytes does not hold shape {shape}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(np.int64)


def decided_rows(
    cv: Any, folds: list[Any], labels: np.ndarray, metric: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int]:
    """``(folds, pred, proba, n_classes)`` of a CV result (``cv.oof``, ``cv.folds``) made on
    ``folds``: each row's out-of-fold decision (its fold's cross-fitted decision weights, else
    its fold's threshold, as the fold was scored) and, when ``metric`` scores probabilities,
    its probabilities."""
    from mmbench.evaluation import METRICS, predict_labels

    repeats, n, n_classes = cv.oof.shape
    fold_of = np.full((repeats, n), -1, dtype=np.int64)
    pred = np.zeros((repeats, n), dtype=np.int64)
    for fold, scored in zip(folds, cv.folds, strict=True):
        fold_of[fold.repeat, fold.valid] = fold.fold
        if scored.ok:
            proba = cv.oof[fold.repeat, fold.valid]
            info = scored.info
            pred[fold.repeat, fold.valid] = predict_labels(
                proba, info.get("threshold"), info.get("decision_weights")
            )
    keep = not METRICS.get(metric).needs_labels
    return fold_of, pred, np.nan_to_num(cv.oof) if keep else None, n_classes

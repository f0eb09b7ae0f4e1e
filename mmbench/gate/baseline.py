"""The regression gate's baseline file: a versioned, compact record of row-level predictions.

The file is committed next to the suite it gates, so it must stay small and diff as one blob
when refreshed: labels, fold indices and predicted labels are base64 of byte (or int16) arrays,
and probabilities, stored only for metrics that score them, are quantised to 1/65535. Its
``schema_version`` changes whenever the gate needs something the file lacks; an older file is
a clear error that says to regenerate it with ``mmbench regress ... --update``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from mmbench.errors import MMBenchError
from mmbench.gate.paired import RowPredictions

BASELINE_SCHEMA_VERSION = 2


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BaselineRows(_Model):
    """Row-level out-of-fold predictions, as base64 of little-endian integer arrays.

    Compact on purpose (the file is committed): labels, fold indices and predicted labels are
    bytes; probabilities, kept only for metrics that score them, are quantised to 1/65535.
    """

    n_rows: int
    repeats: int
    n_classes: int
    labels: str
    folds: str
    pred: str
    proba: str | None = None


class BaselineDataset(_Model):
    """The reference predictions, fold scores and fit timing of one dataset's fixed config."""

    metric: str
    higher_is_better: bool
    fold_keys: list[str]
    fold_scores: list[float]
    mean: float
    std: float
    fingerprint: str
    seed: int
    n_rows: int
    pipeline_name: str
    pipeline: dict[str, Any]
    rows: BaselineRows
    fit_seconds: float
    reference_seconds: float
    time_ratio: float


class Baseline(_Model):
    """A versioned baseline file: what the gate compares against, and where it came from."""

    schema_version: int = BASELINE_SCHEMA_VERSION
    suite: str
    created_at: str
    mmbench_version: str
    git_commit: str | None
    seed: int
    rule: dict[str, float]
    datasets: dict[str, BaselineDataset]
    packages: dict[str, str] = {}
    """Versions of :data:`mmbench.results.SCORE_PACKAGES` that produced the predictions."""


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
        raise MMBenchError(f"baseline array of {len(raw)} bytes does not hold shape {shape}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(np.int64)


def rows_record(rows: RowPredictions) -> BaselineRows:
    proba = None
    if rows.proba is not None:
        quantised = np.round(rows.proba * 65535).astype("<u2")
        proba = base64.b64encode(quantised.tobytes()).decode("ascii")
    return BaselineRows(
        n_rows=len(rows.labels),
        repeats=rows.folds.shape[0],
        n_classes=rows.n_classes,
        labels=pack(rows.labels),
        folds=pack(rows.folds),
        pred=pack(rows.pred),
        proba=proba,
    )


def rows_of(record: BaselineRows) -> RowPredictions:
    shape = (record.repeats, record.n_rows)
    proba = None
    if record.proba is not None:
        raw = base64.b64decode(record.proba)
        proba = np.frombuffer(raw, dtype="<u2").reshape((*shape, record.n_classes)) / 65535.0
        # rounding to 16 bits moves a row's sum off 1 by up to ~1e-5: enough for sklearn's
        # multi-class AUC to refuse it (every fold undefined), so each row sums to 1 again
        proba /= np.clip(proba.sum(axis=-1, keepdims=True), 1e-12, None)
    return RowPredictions(
        labels=unpack(record.labels, (record.n_rows,)),
        folds=unpack(record.folds, shape),
        pred=unpack(record.pred, shape),
        proba=proba,
        n_classes=record.n_classes,
    )


def read_baseline(path: Path) -> Baseline:
    """Load and validate a baseline; every problem is an error that names the file."""
    path = Path(path)
    if not path.is_file():
        raise MMBenchError(f"{path}: baseline file not found; create it with --update")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise MMBenchError(f"{path}: cannot read baseline file: {exc}") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version != BASELINE_SCHEMA_VERSION:
        old = " (fold scores only, no row-level predictions)" if version == 1 else ""
        raise MMBenchError(
            f"{path}: baseline schema version {version!r}{old}, this mmbench reads "
            f"{BASELINE_SCHEMA_VERSION}; regenerate it with --update"
        )
    try:
        return Baseline.model_validate(data)
    except ValidationError as exc:
        raise MMBenchError(f"{path}: invalid baseline file: {exc}") from None


def write_baseline(baseline: Baseline, path: Path) -> Path:
    from mmbench._io import write_json_atomic

    write_json_atomic(Path(path), baseline.model_dump(mode="json"))
    return Path(path)

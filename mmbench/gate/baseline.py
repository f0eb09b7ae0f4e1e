"""The regression gate's baseline file: a versioned, compact record of row-level predictions.

The file is committed next to the suite it gates, so it must stay small and diff as one blob
when refreshed: its rows are :class:`~mmbench.results.rows.OutOfFold` records (base64 of small
integer arrays, probabilities quantised to 1/65535), as result files store them. Its
``schema_version`` changes whenever the gate needs something the file lacks; an older file is
a clear error that says to regenerate it with ``mmbench regress ... --update``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from mmbench.errors import MMBenchError
from mmbench.gate.paired import RowPredictions
from mmbench.results.rows import OutOfFold

BASELINE_SCHEMA_VERSION = 2


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    rows: OutOfFold
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


def rows_record(rows: RowPredictions) -> OutOfFold:
    return OutOfFold.of(rows.labels, rows.folds, rows.pred, rows.proba, rows.n_classes)


def rows_of(record: OutOfFold) -> RowPredictions:
    labels, folds, pred, proba = record.arrays()
    return RowPredictions(labels, folds, pred, proba, record.n_classes)


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

"""Raw results out: one row per (suite, dataset, pipeline, fold, metric), as Parquet or CSV.

What a reader needs to redo any aggregate with their own tools (pandas, R, DuckDB): every fold's
score of every metric, with the fold's seconds, the result's fit and predict cost, the commit
and version that produced it and the hardware it ran on. A failed fold is a row too, its value
missing and its error given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmbench.errors import MMBenchError
from mmbench.evaluation import METRICS
from mmbench.leaderboard.aggregate import hardware_label
from mmbench.results import RunResult

if TYPE_CHECKING:
    import pandas as pd

LONG_COLUMNS = (
    "suite",
    "dataset",
    "pipeline",
    "fold",
    "metric",
    "value",
    "higher_is_better",
    "primary",
    "fold_seconds",
    "fit_s",
    "predict_ms_per_row",
    "error",
    "fingerprint",
    "git_commit",
    "mmbench_version",
    "created_at",
    "cpu_count",
    "gpu",
    "hardware",
)
LONG_FORMATS = ("parquet", "csv")


def long_rows(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    """The long table's rows, sorted by suite, dataset, pipeline, fold and metric."""
    rows = []
    for r in results:
        metrics = sorted(r.metrics) or [r.protocol.primary_metric]
        hw = r.provenance.hardware or {}
        shared = {
            "suite": r.suite,
            "dataset": r.dataset.name,
            "pipeline": r.pipeline_name,
            "fit_s": r.durations.get("total", math.nan),  # encoding and fitting, as the tables
            "predict_ms_per_row": r.durations.get("predict_ms_per_row", math.nan),
            "fingerprint": r.dataset.fingerprint,
            "git_commit": r.provenance.git_commit or "",
            "mmbench_version": r.provenance.mmbench_version,
            "created_at": r.provenance.created_at,
            "cpu_count": int(hw.get("cpu_count") or 0),
            "gpu": str(hw.get("gpu") or ""),
            "hardware": hardware_label(r),
        }
        for f in r.folds:
            for m in metrics:
                rows.append(
                    {
                        **shared,
                        "fold": f.key,
                        "metric": m,
                        "value": float(f.metrics.get(m, math.nan)),
                        "higher_is_better": _direction(m),
                        "primary": m == r.protocol.primary_metric,
                        "fold_seconds": f.seconds,
                        "error": f.error or "",
                    }
                )
    rows.sort(
        key=lambda x: tuple(str(x[k]) for k in ("suite", "dataset", "pipeline", "fold", "metric"))
    )
    return rows


def long_frame(results: Sequence[RunResult]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(long_rows(results), columns=list(LONG_COLUMNS))


def write_long(results: Sequence[RunResult], path: Path, fmt: str) -> Path:
    """Write the long table to ``path`` as ``parquet`` or ``csv``."""
    if fmt not in LONG_FORMATS:
        raise MMBenchError(f"--long writes {' or '.join(LONG_FORMATS)}, not {fmt!r}")
    frame = long_frame(results)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def _direction(metric: str) -> bool | None:
    try:
        return METRICS.get(metric).higher_is_better
    except MMBenchError:  # a metric this registry lacks: direction unknown
        return None

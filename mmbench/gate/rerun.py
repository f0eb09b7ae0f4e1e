"""The gate's rerun: each dataset's fixed pipeline cross-validated once, rows and fit timing kept.

The rerun calls the same pieces as :func:`mmbench.run.runner.run_dataset` (``load_table``,
``Protocol.folds_for``, :func:`~mmbench.run.fixed.evaluate_fixed` and
:func:`~mmbench.results.build.build_result`), so that tests and benchmarks can inject a
``table_transform`` or a pipeline change through exactly the code path CI runs.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mmbench.errors import MMBenchError
from mmbench.gate.paired import RowPredictions

if TYPE_CHECKING:
    from mmbench.data.table import MultiModalTable
    from mmbench.evaluation import Fold
    from mmbench.pipeline import CVResult
    from mmbench.pipeline.cache import FeatureCache
    from mmbench.progress import Reporter
    from mmbench.results import RunResult
    from mmbench.suite import DatasetSpec, Suite

PIPELINE_NAME = "regress"
TableTransform = Callable[["MultiModalTable"], "MultiModalTable"]


@dataclass
class Rerun:
    """One dataset's rerun: its result record, row-level predictions and fit timing.

    ``time_ratio`` is the median over folds of (the fold's fit seconds / the reference
    seconds timed right after that fold): pairing each fold with its own reference cancels
    load that comes and goes during the CV, which one reference for the whole run did not.
    """

    result: RunResult
    rows: RowPredictions
    fit_seconds: float
    reference_seconds: float
    time_ratio: float


def rerun(
    suite: Suite,
    results_dir: Path,
    *,
    datasets: list[str] | None = None,
    table_transform: TableTransform | None = None,
    cache: FeatureCache | None = None,
    reporter: Reporter | None = None,
) -> tuple[list[Rerun], dict[str, str]]:
    """Cross-validate each dataset's fixed pipeline once; returns reruns and per-dataset errors.

    Result files go to ``results_dir`` (pipeline name ``regress``, so they never overwrite a
    real run's files). A dataset that fails is recorded and the others still run.
    """
    from mmbench.results import ResultLayout

    layout = ResultLayout(results_dir, suite.name)
    specs = [suite.dataset(n) for n in datasets] if datasets else suite.datasets
    reruns, errors = [], {}
    for spec in specs:
        try:
            run = evaluate_dataset(suite, spec, table_transform=table_transform, cache=cache)
        except MMBenchError as exc:
            errors[spec.name] = str(exc)
            if reporter is not None:
                reporter.error(f"{spec.name}: {exc}")
            continue
        path = layout.write(run.result)
        if reporter is not None:
            metric, mean, _ = run.result.primary()
            reporter.info(
                f"{spec.name}: {metric} {mean:.4f}; fit {run.fit_seconds:.1f} s "
                f"(reference {run.reference_seconds:.3f} s); {path}"
            )
        reruns.append(run)
    return reruns, errors


def evaluate_dataset(
    suite: Suite,
    spec: DatasetSpec,
    *,
    table_transform: TableTransform | None = None,
    cache: FeatureCache | None = None,
) -> Rerun:
    """The fixed configuration of one dataset: its result, row predictions and fit timing.

    ``table_transform`` is applied to the loaded table before evaluation only: the result still
    describes (and fingerprints) the data as loaded, and rows are scored against the loaded
    labels, as if the transform were a bug in the pipeline (a transform that corrupts labels
    is a training-label bug). The transformed table keeps its own fingerprint, so cached
    features of the real data are never served for it.
    """
    from mmbench.data import load_table
    from mmbench.gate.speed import reference_seconds
    from mmbench.results.build import build_result
    from mmbench.run.fixed import evaluate_fixed

    start = time.perf_counter()
    table = load_table(spec, suite.root, seed=suite.seed)
    used = table_transform(table) if table_transform is not None else table
    folds = spec.protocol.folds_for(table.labels, suite.seed, table.groups)
    references: list[float] = []
    cv = evaluate_fixed(
        spec, used, folds, cache=cache, on_fold=lambda *_: references.append(reference_seconds())
    )
    wall = time.perf_counter() - start
    result = build_result(suite, spec, table, cv, PIPELINE_NAME, wall=wall - sum(references))
    rows = row_predictions(cv, folds, table.labels, spec.protocol.primary_metric)
    ratios = [f.info["fit_s"] / r for f, r in zip(cv.folds, references, strict=True) if f.ok]
    return Rerun(
        result,
        rows,
        cv.seconds["fit"],
        statistics.median(references),
        statistics.median(ratios) if ratios else math.nan,
    )


def row_predictions(
    cv: CVResult, folds: list[Fold], labels: np.ndarray, metric: str
) -> RowPredictions:
    """Each row's out-of-fold decision and, when the metric scores probabilities, its
    probabilities (:func:`mmbench.results.rows.decided_rows`)."""
    from mmbench.results.rows import decided_rows

    fold_of, pred, proba, n_classes = decided_rows(cv, folds, labels, metric)
    return RowPredictions(np.asarray(labels, dtype=np.int64), fold_of, pred, proba, n_classes)

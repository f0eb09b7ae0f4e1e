"""A dataset's fixed pipeline cross-validated: the step that ``mmbench run`` and ``mmbench regress``
share.

Both cross-validate a dataset's fixed pipeline with :func:`evaluate_fixed` and turn the CV result
into a :class:`~mmbench.results.RunResult` with :func:`mmbench.results.build.build_result`, so
that the regression gate checks exactly what a run does. The runner adds search, refit, ablation
and tracking around them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmbench.errors import MMBenchError

if TYPE_CHECKING:
    from mmbench.data.table import MultiModalTable
    from mmbench.evaluation import Fold, FoldScores
    from mmbench.pipeline import CVResult
    from mmbench.suite import DatasetSpec


def evaluate_fixed(
    spec: DatasetSpec,
    table: MultiModalTable,
    folds: list[Fold],
    cache: Any = None,
    on_fold: Any = None,
) -> CVResult:
    """CV of the dataset's fixed pipeline (the suite's ``pipeline`` or the default one), its
    scores counted with the decision rule fitted on its out-of-fold rows (as every row's)."""
    from mmbench.config import default_pipeline
    from mmbench.evaluation import decide
    from mmbench.pipeline import evaluate_pipeline

    pipeline = default_pipeline(table.modalities, spec.pipeline)
    cv = evaluate_pipeline(table, pipeline, folds, cache=cache, on_fold=on_fold)
    require_a_fold(cv)
    return decide(cv, table.labels, folds, spec.protocol.primary_metric)


def require_a_fold(cv: FoldScores) -> None:
    """A job whose every fold failed has no score to record: that is an error, not a result."""
    if not any(f.ok for f in cv.folds):
        raise MMBenchError(f"every fold failed; first error: {cv.failures[0]}")

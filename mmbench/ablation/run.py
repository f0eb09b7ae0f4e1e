"""Running an ablation: the planned subsets cross-validated on the run's folds and feature
cache within the deadline, then attributed (:mod:`.attribution`)."""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from mmbench.ablation.attribution import build_report, row_from_cv
from mmbench.ablation.plan import expected_seconds, plan_subsets
from mmbench.budget import NO_DEADLINE, Deadline, DeadlineReached
from mmbench.config import PipelineSpec
from mmbench.evaluation import METRICS, Fold, chance_level
from mmbench.results import AblationKind, AblationReport, AblationRow

if TYPE_CHECKING:
    from mmbench.data.table import MultiModalTable
    from mmbench.pipeline import CVResult
    from mmbench.pipeline.cache import FeatureCache

ProgressFn = Callable[[str, int, int], None]
"""Called after each subset run with (subset label, runs done, runs planned)."""


def run_ablation(
    table: MultiModalTable,
    spec: PipelineSpec,
    folds: list[Fold],
    *,
    cache: FeatureCache | None = None,
    primary: str = "f1_macro",
    max_subset_modalities: int = 5,
    progress: ProgressFn | None = None,
    deadline: Deadline = NO_DEADLINE,
    pipeline_name: str | None = None,
) -> AblationReport:
    """Cross-validate ``spec`` on subsets of the table's modalities and attribute the score.

    Evaluates the full set (also scored with each modality missing at test time), each
    leave-one-out and single-modality subset and, with at most ``max_subset_modalities``
    modalities, every non-empty subset, from which per-fold Shapley values follow. Every run uses
    ``folds`` as given, so pass the folds of the main run to make the full row reproduce it.
    Pass the run's feature cache so that subsets reuse the features already computed instead of
    re-encoding; without one (or with a disabled one) a temporary cache lives for this call.

    ``deadline`` bounds the ablation: subsets it cuts (or declines, when rows already run say
    it would not fit in the time left, :func:`expected_seconds`) are listed in
    :attr:`AblationReport.skipped`, and
    Shapley values then need every subset; the full set not fitting is an error.
    """
    from mmbench.pipeline.cache import FeatureCache

    metric = METRICS.get(primary)
    modalities: list[str] = [m for m in table.modalities if m in spec.encoders]
    plan = plan_subsets(modalities, max_subset_modalities)
    with contextlib.ExitStack() as stack:
        if cache is None or not cache.enabled:
            cache = FeatureCache(stack.enter_context(tempfile.TemporaryDirectory()))
        rows, full_cv, skipped = _run_plan(table, spec, folds, plan, cache, progress, deadline)
    chance = [chance_level(primary, table.labels[f.valid], table.n_classes) for f in folds]
    report = build_report(table.name, spec, metric, modalities, folds, chance, rows, full_cv)
    report.skipped, report.pipeline_name = skipped, pipeline_name
    return report


def _run_plan(
    table: MultiModalTable,
    spec: PipelineSpec,
    folds: list[Fold],
    plan: list[tuple[tuple[str, ...], AblationKind]],
    cache: FeatureCache,
    progress: ProgressFn | None,
    deadline: Deadline = NO_DEADLINE,
) -> tuple[list[AblationRow], CVResult, list[str]]:
    """Rows of the subsets run in plan order, the full set's CV, and the labels of the subsets
    the deadline cut or declined."""
    from mmbench.pipeline import evaluate_pipeline

    rows: list[AblationRow] = []
    walls: list[float] = []  # each row's wall seconds: what the next one is expected to take
    skipped: list[str] = []
    full_cv: CVResult | None = None
    for done, (subset, kind) in enumerate(plan, start=1):
        cv = None
        if deadline.remaining() > expected_seconds(rows, walls, len(subset)):
            started = time.perf_counter()
            try:
                cv = evaluate_pipeline(
                    table,
                    spec,
                    folds,
                    modalities=list(subset),
                    cache=cache,
                    test_time_missing=kind == "full",
                    deadline=deadline,
                )
            except DeadlineReached:
                cv = None
        if cv is None:
            if kind == "full":
                raise DeadlineReached("the time budget ran out before the full set was scored")
            skipped.append("+".join(subset))
        else:
            full_cv = cv if kind == "full" else full_cv
            rows.append(row_from_cv(subset, kind, cv))
            walls.append(time.perf_counter() - started)
        if progress is not None:
            progress("+".join(subset), done, len(plan))
    assert full_cv is not None, "the plan always starts with the full set"
    return rows, full_cv, skipped

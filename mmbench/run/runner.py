"""Composes the layers into a benchmark run: load, validate, evaluate, record, report.

For each dataset of a suite: load and validate the data once, then run its jobs — the suite's
own pipeline (a single candidate, or an Optuna search when the budget allows) or the named
reference pipelines — each cross-validated on the same folds. A job goes: evaluate, (ablate),
build the complete result, write it once, then record it in MLflow through the job's
:class:`~mmbench.tracking.JobTracker` hooks and attach the run ids to the file. Tracking is
optional and can fail without costing the result file; a failing dataset or job is reported
and skipped, so results already computed are never lost to a later failure.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmbench.errors import MMBenchError
from mmbench.progress import Reporter
from mmbench.results import ResultLayout
from mmbench.run.context import (
    JobContext,
    RunOptions,
    Scored,
    refit_and_test,
)
from mmbench.suite import DatasetSpec, Suite

__all__ = ["DatasetOutcome", "Reporter", "RunOptions", "run_dataset", "run_suite"]

TAIL_RESERVE = 0.08
"""Share of a job's ``timeout_s`` the ablation leaves for what follows it: the ablation's
report files, the result files and their MLflow runs (pictures, plots of the study, model),
about 10 s of a 120 s budget on 2 busy cores."""


@dataclass
class DatasetOutcome:
    name: str
    pipeline: str | None = None
    result: Any = None  # RunResult
    path: Path | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


def run_suite(
    suite: Suite, options: RunOptions, reporter: Reporter | None = None
) -> list[DatasetOutcome]:
    """Run every selected dataset of ``suite``; one failing dataset does not stop the others."""
    reporter = reporter or Reporter(enabled=False)
    specs = [suite.dataset(n) for n in options.datasets] if options.datasets else suite.datasets
    if options.worker is not None:  # workers share searches; a single candidate is not one
        specs = [s for s in specs if (options.trials or s.budget.trials) > 1]
    skipped: list[DatasetOutcome] = []
    if options.pipelines:
        options, skipped = _available_references(options, specs, reporter)
        if not options.pipelines:  # every one skipped: nothing to run, and the run failed
            return skipped
    outcomes: list[DatasetOutcome] = []
    # a lone run or finalize has the results folder to itself; workers share it by design
    alone = options.worker is None
    layout = ResultLayout(options.results_dir, suite.name)
    with layout.exclusive() if alone else contextlib.nullcontext():
        for spec in specs:
            try:
                outcomes.extend(run_dataset(suite, spec, options, reporter))
            except (MMBenchError, OSError) as exc:  # OSError: e.g. a full disk while loading
                reporter.error(f"{spec.name}: {exc}")
                outcomes.append(DatasetOutcome(spec.name, error=str(exc)))
    return outcomes + skipped


def _available_references(
    options: RunOptions, specs: list[DatasetSpec], reporter: Reporter
) -> tuple[RunOptions, list[DatasetOutcome]]:
    """Check ``--pipeline`` names before any work. A peer whose extra is missing is skipped,
    and is a failed outcome on every dataset (the run exits non-zero: a requested row that was
    not computed is never a silent success)."""
    import dataclasses

    from mmbench.errors import UnknownNameError, did_you_mean
    from mmbench.peers import PEERS
    from mmbench.pipeline.references import REFERENCE_PIPELINES

    keep: list[str] = []
    skipped: list[DatasetOutcome] = []
    for name in options.pipelines:
        if name in PEERS:
            reason = PEERS.get(name).available()
            if reason is not None:
                reporter.error(f"skipping peer {name}: {reason}")
                why = f"peer {name} was not run: {reason}"
                skipped += [DatasetOutcome(s.name, pipeline=name, error=why) for s in specs]
                continue
        elif name not in REFERENCE_PIPELINES:
            known = [*REFERENCE_PIPELINES.names(), *PEERS.names()]
            raise UnknownNameError(
                f"unknown reference pipeline {name!r}{did_you_mean(name, known)}; "
                f"known: {', '.join(known)}"
            )
        keep.append(name)
    return dataclasses.replace(options, pipelines=keep), skipped


def run_dataset(
    suite: Suite, spec: DatasetSpec, options: RunOptions, reporter: Reporter
) -> list[DatasetOutcome]:
    """Load one dataset once and run its jobs; a failing job does not stop the next."""
    from mmbench.data import load_table
    from mmbench.data.infer import describe_inference, with_inferred
    from mmbench.pipeline.cache import FeatureCache, default_cache_dir

    loading = time.perf_counter()  # the first job's budget includes loading its data
    reporter.info(f"[bold]{spec.name}[/]: loading {spec.source.describe()}")
    table = load_table(spec, suite.root, seed=suite.seed, progress=options.progress)
    reporter.info(
        f"{spec.name}: {len(table)} rows, {table.n_classes} classes, "
        f"modalities {', '.join(table.modalities)} (fingerprint {table.fingerprint})"
    )
    inferred = table.meta.get("inferred_modalities")
    if inferred is not None:  # the test split, the model and MLflow use the training mapping
        spec = with_inferred(spec, inferred)
        for line in describe_inference(inferred):
            reporter.info(f"{spec.name}: modalities: auto: {line}")
    folds = spec.protocol.folds_for(table.labels, suite.seed, table.groups)
    if len(folds) < spec.protocol.folds * spec.protocol.repeats:  # a large table's hold-out
        reporter.info(f"{spec.name}: scored on {spec.protocol.describe(len(table))}")
    ctx = JobContext(
        suite=suite,
        spec=spec,
        options=options,
        reporter=reporter,
        table=table,
        folds=folds,
        cache=FeatureCache(
            (options.cache_dir or default_cache_dir()) if options.use_cache else None
        ),
        layout=ResultLayout(options.results_dir, suite.name),
        started=loading,
    )
    outcomes = []
    jobs: list[str | None] = list(options.pipelines) or [None]
    for reference in jobs:
        try:
            outcomes.extend(_run_job(ctx, reference))
        except (MMBenchError, OSError) as exc:  # OSError: a model, cache or study file
            label = f"{spec.name} ({reference})" if reference else spec.name
            reporter.error(f"{label}: {exc}")
            outcomes.append(DatasetOutcome(spec.name, pipeline=reference, error=str(exc)))
    return outcomes


def _run_job(ctx: JobContext, reference: str | None) -> list[DatasetOutcome]:
    """One pipeline (or search) on the loaded dataset; the parent MLflow run spans all of it."""
    ctx.begin(reference)
    status = "FAILED"
    try:
        outcomes = _evaluate_and_record(ctx, reference)
        status = "FINISHED"
        return outcomes
    finally:
        ctx.end(status)


def _evaluate_and_record(ctx: JobContext, reference: str | None) -> list[DatasetOutcome]:
    """Evaluate, (ablate), write each complete result once, then track it and attach the ids.

    A search job scores two candidates: the best trial (``search``) and the final ensemble
    (``ensemble``); other jobs score one. The job's ``timeout_s`` covers the ablation too: a
    search leaves ``ablation.budget_share`` of it for the ablation, which then runs until
    :data:`TAIL_RESERVE` before the job's deadline; every wall time written is the whole job's,
    from loading the data (first job) to the end of the ablation.
    """
    from mmbench.budget import NO_DEADLINE, Deadline

    start = ctx.started if ctx.started is not None else time.perf_counter()
    ctx.started = None  # a later job on the same data starts its own clock
    timeout = ctx.options.timeout or ctx.spec.budget.timeout_s
    ablates = ctx.ablates(reference)
    reserve = ctx.spec.ablation.budget_share * timeout if ablates and timeout else 0.0
    if reference is not None:
        from mmbench.run.reference_job import reference_job

        scored = [reference_job(ctx, reference)]
    elif ctx.searches():
        from mmbench.run.search_job import search_job

        scored = search_job(ctx, start, reserve_s=reserve)
    else:
        scored = [_single(ctx)]
    report: Any = None
    files: dict[str, Path] = {}
    ablation_s: float | None = None
    if ablates and scored:
        deadline = NO_DEADLINE
        if timeout:  # the last TAIL_RESERVE is for writing the files and tracking them
            left = timeout * (1 - TAIL_RESERVE) - (time.perf_counter() - start)
            deadline = Deadline.after(left)
        began = time.perf_counter()
        report, files = _ablate(ctx, scored[0], deadline)
        ablation_s = time.perf_counter() - began
    wall = time.perf_counter() - start
    skipped = len(report.skipped) if report is not None else _planned(ctx, scored, ablation_s)
    for item in scored:
        item.budget = _with_ablation(item.budget, wall, ablation_s, reserve, skipped)
    outcomes = []
    for i, item in enumerate(scored):
        ablation = (report, files) if i == 0 else (None, {})
        final = reference is None and i == len(scored) - 1  # the ensemble, else the one pipeline
        outcomes.append(_record(ctx, item, wall, ablation, ablation_s, final))
    return outcomes


def _planned(ctx: JobContext, scored: list[Scored], ablation_s: float | None) -> int:
    """Subsets of an ablation that was tried but wrote no report (none of them counted)."""
    from mmbench.ablation import plan_subsets

    if ablation_s is None or len(scored[0].cv.modalities) < 2:
        return 0
    return len(plan_subsets(scored[0].cv.modalities, ctx.spec.ablation.max_subset_modalities))


def _with_ablation(
    budget: Any, wall: float, ablation_s: float | None, reserve: float, skipped: int
) -> Any:
    """The search's budget summary with the whole job's wall time and the ablation's share.

    The wall is this process's, or the study's (its search span, as :mod:`mmbench.run.search_job`
    counts it across workers and sessions, plus the final phase and the ablation) when that
    is longer: a parent that only finalizes what its workers searched."""
    if budget is None:
        return None
    return budget.model_copy(
        update={
            "wall_s": max(wall, budget.wall_s + (ablation_s or 0.0)),
            "ablation_s": ablation_s,
            "ablation_reserved_s": reserve if ablation_s is not None else None,
            "ablation_skipped": skipped,
        }
    )


def _record(
    ctx: JobContext,
    item: Scored,
    wall: float,
    ablation: tuple[Any, dict[str, Path]],
    ablation_s: float | None,
    final: bool = False,
) -> DatasetOutcome:
    from mmbench.results import AblationSummary
    from mmbench.results.build import build_result

    spec = ctx.spec
    report, files = ablation
    result = build_result(
        ctx.suite,
        spec,
        ctx.table,
        item.cv,
        item.name,
        wall=wall,
        search=item.search,
        test_metrics=item.test_metrics,
        ablation=AblationSummary.of(report, files) if report is not None else None,
    )
    if ablation_s is not None:
        result.durations["ablation"] = ablation_s
    if item.ensemble is not None:
        result.durations.update(_members_cost(ctx, item.ensemble))
    result.budget, result.ensemble = item.budget, item.ensemble
    try:
        path = ctx.layout.write(result)
    except OSError as exc:  # a full or read-only disk: say what was computed before failing
        metric, mean, std = result.primary()
        hint = ""
        if item.search is not None:
            from mmbench.run.search_job import finalize_command

            hint = f"; the study keeps every trial: `{finalize_command(ctx)}` writes it again"
        raise MMBenchError(
            f"could not write its result file {ctx.layout.result_file(spec.name, item.name)} "
            f"({exc.strerror or exc}); computed {item.name}: {metric} "
            f"{mean:.4f} ± {std:.4f} over {len(result.folds)} folds"
            + (f", held-out {result.test_metrics}" if result.test_metrics else "")
            + hint
        ) from None
    ctx.reporter.info(f"{spec.name}: wrote {path}")
    outcome = DatasetOutcome(spec.name, item.name, result, path, warnings=list(ctx.warnings))
    outcome.warnings.extend(item.cv.failures)
    ctx.model_path = item.model_path
    outcome.result = _track(ctx, result, path, item.cv, report, files, final)
    return outcome


def _members_cost(ctx: JobContext, ensemble: Any) -> dict[str, float]:
    """An ensemble's CV cost: its members' trials' encode and fit seconds, and their
    prediction milliseconds per row added up (every member predicts every row)."""
    from mmbench.results.build import predict_cost

    known = [ctx.trial_results.get(m.trial) for m in ensemble.members]
    cvs = [cv for cv in known if cv is not None]
    if not cvs or len(cvs) < len(known):
        return {}
    cost: dict[str, float] = {"total": sum(cv.seconds.get("total", 0.0) for cv in cvs)}
    predict = [predict_cost(cv).get("predict_ms_per_row") for cv in cvs]
    if all(p is not None for p in predict):
        cost["predict_ms_per_row"] = float(sum(p for p in predict if p is not None))
    return cost


def _track(
    ctx: JobContext,
    result: Any,
    path: Path,
    cv: Any,
    report: Any,
    files: dict[str, Path],
    final: bool = False,
) -> Any:
    """Record the written result (and its ablation) in MLflow; the file gets the run ids."""
    from mmbench.results import attach_tracking

    if ctx.job is None:
        return result
    ids = ctx.job.record_result(
        result,
        cv,
        table=ctx.table,
        modalities=ctx.spec.modalities,
        model_path=ctx.model_path,
        study=ctx.study,
        register=final,
    )
    if report is not None:
        ctx.job.record_ablation(report, files)
    return attach_tracking(path, ids) if ids is not None else result


def _single(ctx: JobContext) -> Scored:
    from mmbench.run.fixed import evaluate_fixed

    with ctx.reporter.task(f"{ctx.spec.name}: {len(ctx.folds)} folds", len(ctx.folds)) as advance:
        cv = evaluate_fixed(
            ctx.spec, ctx.table, ctx.folds, cache=ctx.cache, on_fold=lambda r, i: advance(r)
        )
    item = Scored(cv, "default")
    if ctx.spec.test_source is not None:
        item.test_metrics, item.model_path = refit_and_test(ctx, cv, "default")
    return item


def _ablate(ctx: JobContext, item: Scored, deadline: Any) -> tuple[Any, dict[str, Path]]:
    """Modality ablations of the chosen pipeline until ``deadline``, written to the layout's
    ablation folder of that pipeline.

    A failed ablation is a warning: the job's own result is still written.
    """
    from mmbench.ablation import run_ablation, write_report

    cv = item.cv
    if len(cv.modalities) < 2:
        ctx.warn("ablation skipped: the pipeline uses a single modality")
        return None, {}
    n = len(cv.modalities)
    limit = ctx.spec.ablation.max_subset_modalities
    total = 2**n - 1 if n <= limit else 2 * n + 1
    try:
        with ctx.reporter.task(f"{ctx.spec.name}: ablations of {item.name}", total) as advance:
            report = run_ablation(
                ctx.table,
                cv.spec,
                ctx.folds,
                cache=ctx.cache,
                primary=ctx.spec.protocol.primary_metric,
                max_subset_modalities=limit,
                progress=lambda label, done, total: advance(label),
                deadline=deadline,
                pipeline_name=item.name,
            )
    except MMBenchError as exc:
        ctx.warn(f"ablation failed (the result is still written): {exc}")
        return None, {}
    if report.skipped:
        ctx.warn(
            f"ablation: {len(report.skipped)} of {total} subsets not run within the time budget"
            f" ({', '.join(report.skipped)})"
            + ("; no Shapley values" if report.shapley is None and n <= limit else "")
        )
    files = write_report(report, ctx.layout.ablation_dir(ctx.spec.name, item.name))
    ctx.reporter.info(f"{ctx.spec.name}: ablation table {files['md']}")
    return report, files

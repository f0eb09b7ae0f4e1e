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

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmbench.errors import MMBenchError
from mmbench.progress import Reporter
from mmbench.results import ResultLayout
from mmbench.suite import DatasetSpec, Suite

__all__ = ["DatasetOutcome", "Reporter", "RunOptions", "run_dataset", "run_suite"]


@dataclass
class RunOptions:
    results_dir: Path = Path("results")
    tracking_uri: str | None = None
    track: bool = True
    cache_dir: Path | None = None
    use_cache: bool = True
    datasets: list[str] | None = None
    trials: int | None = None
    timeout: float | None = None
    storage: str | None = None
    resume: bool = False
    progress: bool = True
    pipelines: list[str] = field(default_factory=list)
    """Reference pipelines to run instead of the suite's own (see :mod:`mmbench.baselines`)."""
    ablate: bool | None = None
    """Run modality ablations after the suite's pipeline; None: as the suite says."""


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
    if options.pipelines:
        from mmbench.baselines import REFERENCE_PIPELINES

        for name in options.pipelines:
            REFERENCE_PIPELINES.get(name)  # unknown names fail before any work, with a hint
    outcomes: list[DatasetOutcome] = []
    for spec in specs:
        try:
            outcomes.extend(run_dataset(suite, spec, options, reporter))
        except MMBenchError as exc:
            reporter.error(f"{spec.name}: {exc}")
            outcomes.append(DatasetOutcome(spec.name, error=str(exc)))
    return outcomes


def run_dataset(
    suite: Suite, spec: DatasetSpec, options: RunOptions, reporter: Reporter
) -> list[DatasetOutcome]:
    """Load one dataset once and run its jobs; a failing job does not stop the next."""
    from mmbench.cache import FeatureCache, default_cache_dir
    from mmbench.data import load_table
    from mmbench.evaluation import cv_folds

    reporter.info(f"[bold]{spec.name}[/]: loading {spec.source.describe()}")
    table = load_table(spec, suite.root, seed=suite.seed, progress=options.progress)
    reporter.info(
        f"{spec.name}: {len(table)} rows, {table.n_classes} classes, "
        f"modalities {', '.join(table.modalities)} (fingerprint {table.fingerprint})"
    )
    ctx = _Context(
        suite=suite,
        spec=spec,
        options=options,
        reporter=reporter,
        table=table,
        folds=cv_folds(table.labels, spec.protocol.folds, spec.protocol.repeats, suite.seed),
        cache=FeatureCache(
            (options.cache_dir or default_cache_dir()) if options.use_cache else None
        ),
        layout=ResultLayout(options.results_dir, suite.name),
    )
    outcomes = []
    jobs: list[str | None] = list(options.pipelines) or [None]
    for reference in jobs:
        try:
            outcomes.append(_run_job(ctx, reference))
        except MMBenchError as exc:
            label = f"{spec.name} ({reference})" if reference else spec.name
            reporter.error(f"{label}: {exc}")
            outcomes.append(DatasetOutcome(spec.name, pipeline=reference, error=str(exc)))
    return outcomes


def _run_job(ctx: _Context, reference: str | None) -> DatasetOutcome:
    """One pipeline (or search) on the loaded dataset; the parent MLflow run spans all of it."""
    ctx.begin(reference)
    status = "FAILED"
    try:
        outcome = _evaluate_and_record(ctx, reference)
        status = "FINISHED"
        return outcome
    finally:
        ctx.end(status)


def _evaluate_and_record(ctx: _Context, reference: str | None) -> DatasetOutcome:
    """Evaluate, (ablate), write the complete result once, then track it and attach the ids."""
    from mmbench.jobs import build_result
    from mmbench.results import AblationSummary

    start = time.perf_counter()
    spec = ctx.spec
    search = None
    if reference is not None:
        cv, name = _reference(ctx, reference), reference
    elif (ctx.options.trials or spec.budget.trials) > 1:
        cv, name, search = _search(ctx)
    else:
        cv, name = _single(ctx), "default"
    test_metrics = _refit_and_test(ctx, cv, name) if (search or spec.test_source) else None
    wall = time.perf_counter() - start  # the job's own time; ablations are reported apart
    report, files = _ablate(ctx, cv) if ctx.ablates(reference) else (None, {})
    result = build_result(
        ctx.suite,
        spec,
        ctx.table,
        cv,
        name,
        wall=wall,
        search=search,
        test_metrics=test_metrics,
        ablation=AblationSummary.of(report, files) if report is not None else None,
    )
    path = ctx.layout.write(result)
    ctx.reporter.info(f"{spec.name}: wrote {path}")
    outcome = DatasetOutcome(spec.name, name, result, path, warnings=ctx.warnings)
    outcome.warnings.extend(cv.failures)
    outcome.result = _track(ctx, result, path, cv, report, files)
    return outcome


def _track(
    ctx: _Context, result: Any, path: Path, cv: Any, report: Any, files: dict[str, Path]
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
    )
    if report is not None:
        ctx.job.record_ablation(report, files)
    return attach_tracking(path, ids) if ids is not None else result


@dataclass
class _Context:
    """Everything the steps of one dataset's run share."""

    suite: Suite
    spec: DatasetSpec
    options: RunOptions
    reporter: Reporter
    table: Any
    folds: list[Any]
    cache: Any
    layout: ResultLayout
    job: Any = None  # JobTracker, None when untracked
    model_path: Path | None = None
    study: Any = None
    warnings: list[str] = field(default_factory=list)

    def begin(self, reference: str | None) -> None:
        """Reset per-job state and, when tracking, open the job's parent MLflow run."""
        self.model_path, self.study, self.warnings, self.job = None, None, [], None
        if not self.options.track:
            return
        from mmbench.device import resolve_device
        from mmbench.tracking import JobInfo, start_job

        info = JobInfo(
            suite=self.suite.name,
            dataset=self.spec.name,
            label=self.spec.name if reference is None else f"{self.spec.name}/{reference}",
            kind="study" if reference is None else "reference",
            seed=self.suite.seed,
            fingerprint=self.table.fingerprint,
            source=self.spec.source.describe(),
            device=str(resolve_device("auto")),
        )
        self.job = start_job(info, uri=self.options.tracking_uri, warn=self.warn)

    def end(self, status: str) -> None:
        if self.job is not None:
            self.job.close(status)
            self.job = None

    def ablates(self, reference: str | None) -> bool:
        """Ablations follow the suite's own pipeline only, as the suite or ``--ablate`` says."""
        enabled = self.spec.ablation.enabled if self.options.ablate is None else self.options.ablate
        return enabled and reference is None

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self.reporter.error(message)


def _single(ctx: _Context) -> Any:
    from mmbench.jobs import evaluate_fixed

    with ctx.reporter.task(f"{ctx.spec.name}: {len(ctx.folds)} folds", len(ctx.folds)) as advance:
        return evaluate_fixed(
            ctx.spec, ctx.table, ctx.folds, cache=ctx.cache, on_fold=lambda r, i: advance(r)
        )


def _reference(ctx: _Context, name: str) -> Any:
    from mmbench.baselines import evaluate_reference
    from mmbench.jobs import require_a_fold

    ctx.reporter.info(f"{ctx.spec.name}: reference pipeline {name}")
    _, cv = evaluate_reference(
        name, ctx.table, ctx.folds, primary=ctx.spec.protocol.primary_metric, cache=ctx.cache
    )
    require_a_fold(cv)
    return cv


def _ablate(ctx: _Context, cv: Any) -> tuple[Any, dict[str, Path]]:
    """Modality ablations of the chosen pipeline, written to the layout's ablation folder.

    A failed ablation is a warning: the job's own result is still written.
    """
    from mmbench.ablation import run_ablation, write_report

    if len(cv.modalities) < 2:
        ctx.warn("ablation skipped: the pipeline uses a single modality")
        return None, {}
    n = len(cv.modalities)
    limit = ctx.spec.ablation.max_subset_modalities
    total = 2**n - 1 if n <= limit else 2 * n + 1
    try:
        with ctx.reporter.task(f"{ctx.spec.name}: ablations", total) as advance:
            report = run_ablation(
                ctx.table,
                cv.spec,
                ctx.folds,
                cache=ctx.cache,
                primary=ctx.spec.protocol.primary_metric,
                max_subset_modalities=limit,
                progress=lambda label, done, total: advance(label),
            )
    except MMBenchError as exc:
        ctx.warn(f"ablation failed (the result is still written): {exc}")
        return None, {}
    files = write_report(report, ctx.layout.ablation_dir(ctx.spec.name))
    ctx.reporter.info(f"{ctx.spec.name}: ablation table {files['md']}")
    return report, files


def _search(ctx: _Context) -> tuple[Any, str, Any]:
    from mmbench.pipeline import evaluate_pipeline
    from mmbench.results import SearchSummary
    from mmbench.search import SearchSettings, SearchSpace, TrialHooks, run_search

    spec, options = ctx.spec, ctx.options
    space = spec.search or SearchSpace()
    n_trials = options.trials or spec.budget.trials
    settings = SearchSettings(
        study_name=f"{ctx.suite.name}.{spec.name}",
        storage=options.storage or ctx.layout.study_storage(),
        n_trials=n_trials,
        timeout=options.timeout or spec.budget.timeout_s,
        sampler=space.sampler,
        pruner=space.pruner,
        objectives=list(space.objectives),
        primary=spec.protocol.primary_metric,
        seed=ctx.suite.seed,
        resume=options.resume,
    )
    hooks = ctx.job.trial_hooks() if ctx.job is not None else TrialHooks()
    with ctx.reporter.task(f"{spec.name}: search", n_trials) as advance:
        outcome = run_search(
            ctx.table,
            ctx.folds,
            space,
            settings,
            cache=ctx.cache,
            hooks=hooks,
            on_trial=lambda study, trial: advance(_TrialStatus(study, trial)),
        )
    cv = outcome.best_cv
    if cv is None:  # best trial came from an earlier process (resumed study): score it again
        cv = evaluate_pipeline(ctx.table, outcome.best_spec, ctx.folds, cache=ctx.cache)
    study = ctx.study = outcome.study
    search = SearchSummary(
        study=study.study_name,
        storage=_redact(settings.storage or ""),
        n_trials=len(study.trials),
        new_trials=outcome.n_new_trials,
        states=_state_counts(study),
        best_trial=_best_number(study),
        seconds=outcome.seconds,
        optuna_seconds=outcome.optuna_seconds,
        tracking_seconds=ctx.job.seconds if ctx.job is not None else 0.0,
    )
    return cv, "search", search


class _TrialStatus:
    """What the progress bar shows after a trial: its state and the best score so far."""

    def __init__(self, study: Any, trial: Any) -> None:
        self.key = f"trial {trial.number}"
        self.error = None
        state = trial.state.name.lower()
        try:
            best = study.best_value if len(study.directions) == 1 else None
        except ValueError:
            best = None
        self.text = f"{self.key} {state}" + (f", best {best:.3f}" if best is not None else "")


def _state_counts(study: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    return counts


def _best_number(study: Any) -> int | None:
    from mmbench.search.study import best_trial

    best = best_trial(study)
    return None if best is None else best.number


def _redact(url: str) -> str:
    """Storage URL without a password."""
    import re

    return re.sub(r"://([^:/@]+):[^@]+@", r"://\1:***@", url)


def _refit_and_test(ctx: _Context, cv: Any, name: str) -> dict[str, float] | None:
    """Fit the chosen pipeline on all training rows, save it, score the held-out test source."""
    from mmbench.data import load_table
    from mmbench.evaluation import compute_metrics
    from mmbench.pipeline import fit_pipeline

    ctx.reporter.info(f"{ctx.spec.name}: refitting {name} on all training rows")
    model = fit_pipeline(ctx.table, cv.spec, seed=ctx.suite.seed, modalities=cv.modalities)
    ctx.model_path = model.save(ctx.layout.model_file(ctx.spec.name, name))
    if ctx.spec.test_source is None:
        return None
    test = load_table(
        ctx.spec, ctx.suite.root, split="test", seed=ctx.suite.seed, classes=ctx.table.classes
    )
    proba = model.predict_proba(test)
    return compute_metrics(test.labels, proba, threshold=model.threshold)

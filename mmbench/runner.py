"""Composes the layers into a benchmark run: load, validate, evaluate, record, report.

For each dataset of a suite: load and validate the data once, then run its jobs — the suite's
own pipeline (a single candidate, or an Optuna search when the budget allows) or the named
reference pipelines — each cross-validated on the same folds, written to a result file, then
logged to MLflow, then (optionally) ablated. The result file is written before any tracking
call and before ablations, and a failing dataset or job is reported and skipped, so results
already computed are never lost to a later failure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmbench.errors import MMBenchError
from mmbench.progress import Reporter
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
    """One pipeline (or search) on the loaded dataset: evaluate, save, track, ablate."""
    start = time.perf_counter()
    spec = ctx.spec
    ctx.begin(reference)
    try:
        search = None
        if reference is not None:
            cv, name = _reference(ctx, reference), reference
        elif (ctx.options.trials or spec.budget.trials) > 1:
            cv, name, search = _search(ctx)
        else:
            cv, name = _single(ctx), "default"
        test_metrics = _refit_and_test(ctx, cv, name) if (search or spec.test_source) else None
        result = build_result(
            ctx.suite,
            spec,
            ctx.table,
            cv,
            name,
            wall=time.perf_counter() - start,
            search=search,
            test_metrics=test_metrics,
        )
        outcome = save_and_track(ctx, result, cv)
        ablate = spec.ablation.enabled if ctx.options.ablate is None else ctx.options.ablate
        if ablate and reference is None:
            _ablate(ctx, result, cv)
        ctx.close_tracking("FINISHED")
        return outcome
    except BaseException:
        ctx.close_tracking("FAILED")
        raise


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
    tracker: Any = None
    parent_id: str | None = None
    model_path: Path | None = None
    study: Any = None
    run_label: str = ""
    warnings: list[str] = field(default_factory=list)

    def begin(self, reference: str | None) -> None:
        """Reset per-job state and open the job's parent MLflow run."""
        self.model_path, self.study, self.warnings = None, None, []
        self.run_label = self.spec.name if reference is None else f"{self.spec.name}/{reference}"
        self.open_tracking("study" if reference is None else "reference")

    def open_tracking(self, kind: str) -> None:
        """Start the job's parent MLflow run; on failure warn and run untracked."""
        if not self.options.track:
            return
        from mmbench.tracking import Tracker

        try:
            if self.tracker is None:
                self.tracker = Tracker(self.options.tracking_uri, f"mmbench/{self.suite.name}")
            self.parent_id = self.tracker.start_run(self.run_label, self.tags(kind))
        except MMBenchError as exc:
            self.tracker = None
            self.warn(f"MLflow unavailable, running untracked (results are still written): {exc}")

    def close_tracking(self, status: str) -> None:
        if self.tracker is not None and self.parent_id is not None:
            try:
                self.tracker.end_run(self.parent_id, status)
            except MMBenchError as exc:
                self.warn(f"MLflow: {exc}")
            self.parent_id = None

    def tags(self, kind: str) -> dict[str, Any]:
        from mmbench import __version__
        from mmbench.device import resolve_device
        from mmbench.results import git_commit

        return {
            "mmbench.suite": self.suite.name,
            "mmbench.dataset": self.spec.name,
            "mmbench.kind": kind,
            "mmbench.version": __version__,
            "mmbench.git_commit": git_commit() or "unknown",
            "mmbench.seed": self.suite.seed,
            "mmbench.device": str(resolve_device("auto")),
            "mmbench.fingerprint": self.table.fingerprint,
            "mmbench.source": self.spec.source.describe(),
        }

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self.reporter.error(message)


def _single(ctx: _Context) -> Any:
    with ctx.reporter.task(f"{ctx.spec.name}: {len(ctx.folds)} folds", len(ctx.folds)) as advance:
        return evaluate_fixed(
            ctx.spec, ctx.table, ctx.folds, cache=ctx.cache, on_fold=lambda r, i: advance(r)
        )


def evaluate_fixed(
    spec: DatasetSpec, table: Any, folds: list[Any], cache: Any = None, on_fold: Any = None
) -> Any:
    """CV of the dataset's fixed pipeline (the suite's ``pipeline`` or the default one).

    Shared by ``mmbench run`` without a search and by the ``mmbench regress`` gate, so that the
    gate checks exactly what a run does.
    """
    from mmbench.config import default_pipeline
    from mmbench.pipeline import evaluate_pipeline

    pipeline = spec.pipeline or default_pipeline(table.modalities)
    cv = evaluate_pipeline(table, pipeline, folds, cache=cache, on_fold=on_fold)
    if not any(f.ok for f in cv.folds):
        raise MMBenchError(f"every fold failed; first error: {cv.failures[0]}")
    return cv


def _reference(ctx: _Context, name: str) -> Any:
    from mmbench.baselines import evaluate_reference

    ctx.reporter.info(f"{ctx.spec.name}: reference pipeline {name}")
    _, cv = evaluate_reference(
        name, ctx.table, ctx.folds, primary=ctx.spec.protocol.primary_metric, cache=ctx.cache
    )
    if not any(f.ok for f in cv.folds):
        raise MMBenchError(f"every fold failed; first error: {cv.failures[0]}")
    return cv


def _ablate(ctx: _Context, result: Any, cv: Any) -> None:
    """Modality ablations of the chosen pipeline; files beside the result, runs under its parent."""
    from mmbench.ablation import run_ablation, track_ablation
    from mmbench.results import write_result

    if len(cv.modalities) < 2:
        ctx.warn("ablation skipped: the pipeline uses a single modality")
        return
    directory = Path(ctx.options.results_dir) / ctx.suite.name / ctx.spec.name / "ablation"
    n = len(cv.modalities)
    limit = ctx.spec.ablation.max_subset_modalities
    total = 2**n - 1 if n <= limit else 2 * n + 1
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
    files = report.write(directory)
    result.ablation = {
        "shapley": report.shapley,
        "ranking": report.ranking(),
        "robustness": report.robustness,
        "files": {k: str(v) for k, v in files.items()},
    }
    write_result(result, ctx.options.results_dir)
    ctx.reporter.info(f"{ctx.spec.name}: ablation table {files.get('md', directory)}")
    if ctx.tracker is not None and ctx.parent_id is not None:
        try:
            track_ablation(ctx.tracker, ctx.parent_id, report, ctx.tags("ablation"))
        except MMBenchError as exc:
            ctx.warn(f"MLflow logging of ablations failed (files kept): {exc}")


def _search(ctx: _Context) -> tuple[Any, str, dict[str, Any]]:
    from mmbench.pipeline import evaluate_pipeline
    from mmbench.search import SearchSettings, SearchSpace, TrialHooks, run_search
    from mmbench.search.study import default_storage
    from mmbench.tracking import StudyRecorder

    spec, options = ctx.spec, ctx.options
    space = spec.search or SearchSpace()
    n_trials = options.trials or spec.budget.trials
    settings = SearchSettings(
        study_name=f"{ctx.suite.name}.{spec.name}",
        storage=options.storage or default_storage(options.results_dir, ctx.suite.name),
        n_trials=n_trials,
        timeout=options.timeout or spec.budget.timeout_s,
        sampler=space.sampler,
        pruner=space.pruner,
        objectives=list(space.objectives),
        primary=spec.protocol.primary_metric,
        seed=ctx.suite.seed,
        resume=options.resume,
    )
    hooks = TrialHooks()
    if ctx.tracker is not None and ctx.parent_id is not None:
        rec = StudyRecorder(ctx.tracker, ctx.parent_id, ctx.tags("trial"))
        hooks = TrialHooks(start=rec.start, epoch=rec.epoch, end=rec.end)
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
    search = {
        "study": study.study_name,
        "storage": _redact(settings.storage or ""),
        "n_trials": len(study.trials),
        "new_trials": outcome.n_new_trials,
        "states": _state_counts(study),
        "best_trial": _best_number(study),
        "seconds": outcome.seconds,
        "optuna_seconds": outcome.optuna_seconds,
        "tracking_seconds": ctx.tracker.seconds if ctx.tracker is not None else 0.0,
    }
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
    ctx.model_path = model.save(
        Path(ctx.options.results_dir) / ctx.suite.name / ctx.spec.name / "models" / f"{name}.joblib"
    )
    if ctx.spec.test_source is None:
        return None
    test = load_table(
        ctx.spec, ctx.suite.root, split="test", seed=ctx.suite.seed, classes=ctx.table.classes
    )
    proba = model.predict_proba(test)
    return compute_metrics(test.labels, proba, threshold=model.threshold)


def build_result(
    suite: Suite,
    spec: DatasetSpec,
    table: Any,
    cv: Any,
    pipeline_name: str,
    wall: float,
    search: dict[str, Any] | None = None,
    test_metrics: dict[str, float] | None = None,
) -> Any:
    from mmbench.device import resolve_device
    from mmbench.evaluation import chance_level
    from mmbench.results import DatasetInfo, FoldRecord, RunResult, provenance

    summary = cv.summary
    return RunResult(
        suite=suite.name,
        dataset=DatasetInfo(
            name=spec.name,
            source=spec.source.describe(),
            revision=spec.source.revision,
            fingerprint=table.fingerprint,
            n_rows=len(table),
            n_classes=table.n_classes,
            classes=table.classes,
            modalities=cv.modalities,
            recipe=table.meta.get("recipe"),
        ),
        pipeline_name=pipeline_name,
        pipeline=cv.spec.model_dump(mode="json"),
        seed=suite.seed,
        protocol=spec.protocol.model_dump(),
        metrics=summary,
        chance={m: chance_level(m, table.labels, table.n_classes) for m in summary},
        folds=[
            FoldRecord(key=f.key, metrics=f.metrics, seconds=f.seconds, error=f.error)
            for f in cv.folds
        ],
        test_metrics=test_metrics,
        durations={**cv.seconds, "wall": wall},
        search=search,
        provenance=provenance(str(resolve_device(cv.spec.training.device))),
    )


def save_and_track(ctx: _Context, result: Any, cv: Any) -> DatasetOutcome:
    """Write the result file first, then log to MLflow; a tracking failure keeps the file."""
    from mmbench.results import write_result

    options = ctx.options
    path = write_result(result, options.results_dir)
    outcome = DatasetOutcome(
        ctx.spec.name,
        pipeline=result.pipeline_name,
        result=result,
        path=path,
        warnings=ctx.warnings,
    )
    ctx.reporter.info(f"{ctx.spec.name}: wrote {path}")
    outcome.warnings.extend(cv.failures)
    if ctx.tracker is None or ctx.parent_id is None:
        return outcome
    try:
        run_id = track_result(ctx, result, cv)
        result.tracking = {
            "run_id": run_id,
            "parent_run_id": ctx.parent_id,
            "experiment_id": ctx.tracker.experiment_id,
            "tracking_uri": ctx.tracker.uri,
        }
        write_result(result, options.results_dir)
    except MMBenchError as exc:
        ctx.warn(f"MLflow logging failed (result file kept): {exc}")
    return outcome


def track_result(ctx: _Context, result: Any, cv: Any) -> str:
    """Log the chosen pipeline: params, per-fold and mean metrics, test metrics, pictures.

    Without a search this is the dataset's parent run itself; after a search it is a child run
    tagged ``mmbench.kind=best`` beside the trial runs.
    """
    import tempfile

    from mmbench.tracking import cv_metrics, fold_steps

    tracker = ctx.tracker
    if result.search is None:
        run_id = ctx.parent_id
        kind = "best" if result.pipeline_name == "default" else "reference"
        tracker.log(run_id, tags={"mmbench.kind": kind, "mmbench.pipeline": result.pipeline_name})
    else:
        run_id = tracker.start_run(f"{ctx.run_label}-best", ctx.tags("best"), ctx.parent_id)
    metrics = {**cv_metrics(result.metrics), "duration_s": result.durations["wall"]}
    metrics.update({f"test.{k}": v for k, v in (result.test_metrics or {}).items()})
    tracker.log(
        run_id,
        params={**cv.spec.flat_params(), **protocol_params(ctx.spec, ctx.suite)},
        metrics=metrics,
        steps=fold_steps([f.metrics for f in cv.folds if f.ok]),
    )
    with tempfile.TemporaryDirectory() as tmp:
        for path in _pictures(ctx, cv, Path(tmp)):
            tracker.log_artifact(run_id, path, "plots")
    if ctx.model_path is not None:
        _log_model(ctx, str(run_id))
    if result.search is not None:
        tracker.log(
            ctx.parent_id, metrics=cv_metrics(result.metrics), tags={"mmbench.best_run_id": run_id}
        )
        tracker.end_run(run_id, "FINISHED")
    return str(run_id)


def _log_model(ctx: _Context, run_id: str) -> None:
    """The refitted pipeline as an MLflow pyfunc model with signature and input example."""
    from mmbench.serving import log_pyfunc

    assert ctx.model_path is not None and ctx.tracker is not None
    try:
        ctx.tracker.timed(
            log_pyfunc, ctx.tracker.uri, run_id, ctx.model_path, ctx.spec.modalities, ctx.table
        )
    except MMBenchError as exc:  # the model file on disk is kept either way
        ctx.warn(f"MLflow model logging failed ({exc}); the model is saved at {ctx.model_path}")


def _pictures(ctx: _Context, cv: Any, directory: Path) -> list[Path]:
    from mmbench import plots

    proba, mask = plots.oof_average(cv.oof)
    y, classes = ctx.table.labels[mask], ctx.table.classes
    out = [
        plots.confusion_matrix_png(y, proba[mask], classes, directory / "confusion_matrix.png"),
        plots.roc_pr_png(y, proba[mask], classes, directory / "roc_pr_curves.png"),
    ]
    study = ctx.study
    if study is not None:
        out += plots.optuna_pngs(study, directory)
    return out


def protocol_params(spec: DatasetSpec, suite: Suite) -> dict[str, Any]:
    return {
        "protocol.folds": spec.protocol.folds,
        "protocol.repeats": spec.protocol.repeats,
        "protocol.primary_metric": spec.protocol.primary_metric,
        "seed": suite.seed,
    }

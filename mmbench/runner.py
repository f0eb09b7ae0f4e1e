"""Composes the layers into a benchmark run: load, validate, evaluate, record, report.

For each dataset of a suite: load and validate the data, cross-validate the pipeline (or the
search's best pipeline), write the result file, then log to MLflow. The result file is written
before any tracking call, and a dataset that fails is reported and skipped, so results already
computed are never lost to a later failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmbench.errors import MMBenchError
from mmbench.suite import DatasetSpec, Suite


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


@dataclass
class DatasetOutcome:
    name: str
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
    outcomes = []
    for spec in specs:
        try:
            outcomes.append(run_dataset(suite, spec, options, reporter))
        except MMBenchError as exc:
            reporter.error(f"{spec.name}: {exc}")
            outcomes.append(DatasetOutcome(spec.name, error=str(exc)))
    return outcomes


def run_dataset(
    suite: Suite, spec: DatasetSpec, options: RunOptions, reporter: Reporter
) -> DatasetOutcome:
    from mmbench.cache import FeatureCache, default_cache_dir
    from mmbench.config import default_pipeline
    from mmbench.data import load_table
    from mmbench.evaluation import cv_folds
    from mmbench.pipeline import evaluate_pipeline

    start = time.perf_counter()
    reporter.info(f"[bold]{spec.name}[/]: loading {spec.source.describe()}")
    table = load_table(spec, suite.root, seed=suite.seed, progress=options.progress)
    reporter.info(
        f"{spec.name}: {len(table)} rows, {table.n_classes} classes, "
        f"modalities {', '.join(table.modalities)} (fingerprint {table.fingerprint})"
    )
    folds = cv_folds(table.labels, spec.protocol.folds, spec.protocol.repeats, suite.seed)
    cache = FeatureCache((options.cache_dir or default_cache_dir()) if options.use_cache else None)
    pipeline = spec.pipeline or default_pipeline(table.modalities)
    with reporter.task(f"{spec.name}: {len(folds)} folds", total=len(folds)) as advance:
        cv = evaluate_pipeline(
            table, pipeline, folds, cache=cache, on_fold=lambda r, i: advance(r)
        )
    if not cv.ok and not any(f.ok for f in cv.folds):
        raise MMBenchError(f"every fold failed; first error: {cv.failures[0]}")
    result = build_result(suite, spec, table, cv, "default", wall=time.perf_counter() - start)
    outcome = save_and_track(suite, spec, result, cv, options, reporter)
    outcome.warnings.extend(cv.failures)
    return outcome


def build_result(
    suite: Suite, spec: DatasetSpec, table: Any, cv: Any, pipeline_name: str, wall: float,
    search: dict[str, Any] | None = None, test_metrics: dict[str, float] | None = None,
) -> Any:
    from mmbench.evaluation import chance_level
    from mmbench.results import DatasetInfo, FoldRecord, RunResult, provenance
    from mmbench.training import resolve_device

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
        folds=[FoldRecord(key=f.key, metrics=f.metrics, seconds=f.seconds, error=f.error)
               for f in cv.folds],
        test_metrics=test_metrics,
        durations={**cv.seconds, "wall": wall},
        search=search,
        provenance=provenance(str(resolve_device(cv.spec.training.device))),
    )


def save_and_track(
    suite: Suite, spec: DatasetSpec, result: Any, cv: Any, options: RunOptions,
    reporter: Reporter,
) -> DatasetOutcome:
    """Write the result file first, then log to MLflow; a tracking failure keeps the file."""
    from mmbench.results import write_result

    path = write_result(result, options.results_dir)
    outcome = DatasetOutcome(spec.name, result=result, path=path)
    reporter.info(f"{spec.name}: wrote {path}")
    if not options.track:
        return outcome
    try:
        run_id = track_result(suite, spec, result, cv, options.tracking_uri)
        result.tracking = {"run_id": run_id, "tracking_uri": _tracking_uri(options)}
        write_result(result, options.results_dir)
    except MMBenchError as exc:
        outcome.warnings.append(f"MLflow logging failed (result file kept): {exc}")
        reporter.error(outcome.warnings[-1])
    return outcome


def _tracking_uri(options: RunOptions) -> str:
    from mmbench.tracking import tracking_uri

    return tracking_uri(options.tracking_uri)


def track_result(
    suite: Suite, spec: DatasetSpec, result: Any, cv: Any, uri: str | None
) -> str:
    """One MLflow run per dataset: pipeline params, per-fold and mean metrics, provenance tags."""
    from mmbench.tracking import Tracker, cv_metrics, fold_steps

    tracker = Tracker(uri, experiment=f"mmbench/{suite.name}")
    run_id = tracker.start_run(spec.name, dataset_tags(suite, spec, result, kind="best"))
    tracker.log(
        run_id,
        params={**cv.spec.flat_params(), **protocol_params(spec, suite)},
        metrics={**cv_metrics(result.metrics), "duration_s": result.durations["wall"]},
        steps=fold_steps([f.metrics for f in cv.folds if f.ok]),
    )
    tracker.end_run(run_id, "FINISHED" if cv.ok else "FAILED")
    return run_id


def dataset_tags(suite: Suite, spec: DatasetSpec, result: Any, kind: str) -> dict[str, Any]:
    prov = result.provenance
    return {
        "mmbench.suite": suite.name,
        "mmbench.dataset": spec.name,
        "mmbench.kind": kind,
        "mmbench.version": prov.mmbench_version,
        "mmbench.git_commit": prov.git_commit or "unknown",
        "mmbench.seed": suite.seed,
        "mmbench.device": prov.hardware.get("device"),
        "mmbench.fingerprint": result.dataset.fingerprint,
        "mmbench.source": result.dataset.source,
    }


def protocol_params(spec: DatasetSpec, suite: Suite) -> dict[str, Any]:
    return {
        "protocol.folds": spec.protocol.folds,
        "protocol.repeats": spec.protocol.repeats,
        "protocol.primary_metric": spec.protocol.primary_metric,
        "seed": suite.seed,
    }


class Reporter:
    """Progress and messages on a rich console; silent when disabled (library use, tests)."""

    def __init__(self, enabled: bool = True, console: Any = None) -> None:
        self.enabled = enabled
        self.console = console
        if enabled and console is None:
            from rich.console import Console

            self.console = Console(stderr=True)

    def info(self, message: str) -> None:
        if self.enabled:
            self.console.print(message)

    def error(self, message: str) -> None:
        if self.enabled:
            self.console.print(f"[red]error:[/] {message}")

    def task(self, description: str, total: int) -> _Task:
        return _Task(self, description, total)


class _Task:
    """Context manager yielding ``advance(fold_result)`` that moves a progress bar."""

    def __init__(self, reporter: Reporter, description: str, total: int) -> None:
        self.reporter, self.description, self.total = reporter, description, total
        self.progress: Any = None

    def __enter__(self) -> Callable[[Any], None]:
        if not self.reporter.enabled:
            return lambda _result=None: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self.progress = Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), "{task.fields[status]}", console=self.reporter.console,
            transient=False,
        )
        self.progress.start()
        task = self.progress.add_task(self.description, total=self.total, status="")

        def advance(result: Any = None) -> None:
            status = ""
            if result is not None and getattr(result, "error", None):
                status = f"[red]{result.key} failed[/]"
            elif result is not None and getattr(result, "metrics", None):
                status = f"{result.key} macro-F1 {result.metrics.get('f1_macro', float('nan')):.3f}"
            self.progress.update(task, advance=1, status=status)

        return advance

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

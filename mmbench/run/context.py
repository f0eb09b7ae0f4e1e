"""What the steps of one dataset's job share: its context, a scored candidate, a refit.

:class:`JobContext` carries the loaded table, folds, cache, result layout and the job's MLflow
tracker; :class:`Scored` is one candidate a job scored before it becomes a result file. The
runner (:mod:`mmbench.run`) and the search job (:mod:`mmbench.run.search_job`) build on these.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from mmbench.progress import Reporter
from mmbench.results import ResultLayout
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
    pipelines: list[str] = field(default_factory=list)
    """Reference pipelines to run instead of the suite's own (see :mod:`mmbench.pipeline.references`)."""
    ablate: bool | None = None
    """Run modality ablations after the suite's pipeline; None: as the suite says."""
    worker: int | None = None
    """None: a lone process. Else this process is one of several workers sharing each dataset's
    study (see :mod:`mmbench.search.coordination`); -1: a worker started on its own."""
    finalize: Literal["always", "claim", "never", "only"] = "always"
    """After a search: write the results (``always``), only if this worker finishes the study
    and wins the claim (``claim``), never (a worker whose parent finalizes), or run no trial
    and only finalize what the study holds (``only``: ``mmbench finalize``)."""
    studies: dict[str, str] = field(default_factory=dict)
    """Dataset → the exact study to join (workers started by ``run --workers``)."""
    artifacts: str | None = None
    """The trial store's root (a folder or an fsspec URL, e.g. ``s3://bucket/mmbench``); each
    dataset's trials go under ``<artifacts>/<suite>/<dataset>/trials``. None: the results
    folder (``<results>/<suite>/<dataset>/runs/trials``), which only this machine sees."""
    started_at: float = field(default_factory=time.time)
    """Epoch seconds this command started: a study's trials started since are its new trials."""


def option_args(options: RunOptions) -> list[str]:
    """The flags that give another ``mmbench`` command this run's options: where the study,
    the trial store, results, caches and runs are, and the budget. A command printed for the
    user, or started for a worker, then works on the same study and trials as this one (a
    finalize without ``--artifacts`` would find no trial outputs and refit the best alone)."""
    args = ["--results", str(options.results_dir)]
    for flag, value in (
        ("--storage", options.storage),
        ("--artifacts", options.artifacts),
        ("--trials", options.trials),
        ("--timeout", options.timeout),
        ("--tracking-uri", options.tracking_uri),
        ("--cache-dir", options.cache_dir),
    ):
        if value is not None:
            args += [flag, str(value)]
    args += ["--no-track"] if not options.track else []
    args += ["--no-cache"] if not options.use_cache else []
    if options.ablate is not None:
        args.append("--ablate" if options.ablate else "--no-ablate")
    return args


def command_line(
    verb: str, suite: Suite, options: RunOptions, datasets: list[str] | None = None
) -> str:
    """``mmbench VERB SUITE --dataset ... <option_args>``, quoted for a shell, to print in a
    hint; the password of any URL (storage, tracking URI, trial store) shows as ``***``."""
    import shlex

    from mmbench.search.coordination import redact_url

    args = option_args(options)
    for flag in ("--storage", "--tracking-uri", "--artifacts"):
        if flag in args:
            args[args.index(flag) + 1] = redact_url(args[args.index(flag) + 1])
    picked = [a for name in datasets or [] for a in ("--dataset", name)]
    path = str(suite.path or f"{suite.name}.yaml")
    return shlex.join(["mmbench", verb, path, *picked, *args])


@dataclass
class Scored:
    """One candidate a job scored, before it becomes a result file."""

    cv: Any
    name: str
    test_metrics: dict[str, float] | None = None
    search: Any = None  # SearchSummary
    budget: Any = None  # BudgetSummary
    ensemble: Any = None  # EnsembleSummary
    model_path: Path | None = None
    final: Any = None  # FinalModel of an ensemble, for held-out scoring


@dataclass
class JobContext:
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
    info: Any = None  # JobInfo of the job's runs
    lost_s: float = 0.0  # seconds spent failing to reach MLflow
    model_path: Path | None = None
    study: Any = None
    warnings: list[str] = field(default_factory=list)
    trial_results: dict[int, Any] = field(default_factory=dict)
    """CV result of every completed trial of the study that is known (for the ensemble)."""
    trial_reads: Any = None
    """What the trial store gave back (:class:`mmbench.search.coordination.TrialReads`)."""
    started: float | None = None
    """``perf_counter`` when the dataset began loading: the first job's clock starts there."""
    loaded: tuple[Any, list[Any]] | None = None
    """The dataset's own table and folds while a job works on a subsample of its rows
    (:meth:`use_rows`); the next job starts from them again."""

    def begin(self, reference: str | None) -> None:
        """Reset per-job state and, when tracking, open the job's parent MLflow run."""
        self.model_path, self.study, self.warnings, self.job = None, None, [], None
        self.trial_results, self.trial_reads, self.lost_s = {}, None, 0.0
        if self.loaded is not None:
            (self.table, self.folds), self.loaded = self.loaded, None
        if not self.options.track:
            return
        from mmbench.device import resolve_device
        from mmbench.tracking import JobInfo
        from mmbench.tracking.naming import job_run_name

        info = JobInfo(
            suite=self.suite.name,
            dataset=self.spec.name,
            label=job_run_name(self.spec.name, reference, searches=self.searches()),
            kind="study" if reference is None else "reference",
            seed=self.suite.seed,
            fingerprint=self.table.fingerprint,
            source=self.spec.source.describe(),
            device=str(resolve_device("auto")),
            card=self.spec.card.model_dump() if self.spec.card else None,
        )
        self.info = info
        if reference is not None or not self.searches():
            self.job = self._timed_start(info, None)

    def use_rows(self, table: Any, folds: list[Any]) -> None:
        """Work on ``table`` (a subsample of the loaded one) for the rest of this job: the
        search, the final model, the result files and its MLflow runs."""
        if self.loaded is None:
            self.loaded = (self.table, self.folds)
        self.table, self.folds = table, folds
        if self.info is not None:
            self.info = replace(self.info, fingerprint=table.fingerprint)

    def searches(self) -> bool:
        """Whether the suite's own job is an Optuna search (else a single candidate).

        ``mmbench finalize`` always works on a study, whatever the suite's trial budget says:
        the budget it finalizes is the one the study stored."""
        if self.options.finalize == "only":
            return True
        return (self.options.trials or self.spec.budget.trials) > 1

    def track_study(self, study: Any) -> None:
        """A search job's parent run is the study's own: opened once the study is."""
        if self.options.track:
            self.job = self._timed_start(self.info, study)

    def _timed_start(self, info: Any, study: Any) -> Any:
        """Open the job's MLflow runs; the time a failed attempt took still counts as
        tracking time (:attr:`tracking_seconds`)."""
        from mmbench.tracking import start_job

        start = time.perf_counter()
        job = start_job(info, uri=self.options.tracking_uri, warn=self.warn, study=study)
        if job is None:
            self.lost_s += time.perf_counter() - start
        return job

    @property
    def tracking_seconds(self) -> float:
        return self.lost_s + (self.job.seconds if self.job is not None else 0.0)

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
        self.reporter.warning(message)


@dataclass
class Refit:
    model: Any
    path: Path


def fit_and_save(ctx: JobContext, cv: Any, name: str) -> Refit:
    """Refit ``cv``'s pipeline on all training rows with the decision rule of its CV (tuned
    weights, if ``cv.decision`` adopted them), and save it."""
    from mmbench.pipeline import fit_pipeline

    ctx.reporter.info(f"{ctx.spec.name}: refitting {name} on all training rows")
    model = fit_pipeline(
        ctx.table, cv.spec, seed=ctx.suite.seed, modalities=cv.modalities, cache=ctx.cache
    )
    model.decision = cv.decision.weights if cv.decision is not None else None
    return Refit(model, model.save(ctx.layout.model_file(ctx.spec.name, name)))


def test_table(ctx: JobContext) -> Any:
    from mmbench.data import load_table

    return load_table(
        ctx.spec, ctx.suite.root, split="test", seed=ctx.suite.seed, classes=ctx.table.classes
    )


def refit_and_test(ctx: JobContext, cv: Any, name: str) -> tuple[dict[str, float], Path]:
    """Fit a fixed pipeline on all training rows, save it, score the held-out test source
    (with its CV's decision rule)."""
    refit = fit_and_save(ctx, cv, name)
    test = test_table(ctx)
    return refit.model.score(test, refit.model.predict_proba(test, ctx.cache)), refit.path

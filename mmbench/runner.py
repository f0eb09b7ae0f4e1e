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
        options = _available_references(options, reporter)
        if not options.pipelines:  # every one skipped: nothing to run
            return []
    outcomes: list[DatasetOutcome] = []
    for spec in specs:
        try:
            outcomes.extend(run_dataset(suite, spec, options, reporter))
        except (MMBenchError, OSError) as exc:  # OSError: e.g. a full disk while loading
            reporter.error(f"{spec.name}: {exc}")
            outcomes.append(DatasetOutcome(spec.name, error=str(exc)))
    return outcomes


def _available_references(options: RunOptions, reporter: Reporter) -> RunOptions:
    """Check ``--pipeline`` names before any work; peers whose extra is missing are skipped."""
    import dataclasses

    from mmbench.baselines import REFERENCE_PIPELINES
    from mmbench.errors import UnknownNameError, did_you_mean
    from mmbench.peers import PEERS

    keep = []
    for name in options.pipelines:
        if name in PEERS:
            reason = PEERS.get(name).available()
            if reason is not None:
                reporter.error(f"skipping peer {name}: {reason}")
                continue
        elif name not in REFERENCE_PIPELINES:
            known = [*REFERENCE_PIPELINES.names(), *PEERS.names()]
            raise UnknownNameError(
                f"unknown reference pipeline {name!r}{did_you_mean(name, known)}; "
                f"known: {', '.join(known)}"
            )
        keep.append(name)
    return dataclasses.replace(options, pipelines=keep)


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
            outcomes.extend(_run_job(ctx, reference))
        except (MMBenchError, OSError) as exc:  # OSError: a model, cache or study file
            label = f"{spec.name} ({reference})" if reference else spec.name
            reporter.error(f"{label}: {exc}")
            outcomes.append(DatasetOutcome(spec.name, pipeline=reference, error=str(exc)))
    return outcomes


def _run_job(ctx: _Context, reference: str | None) -> list[DatasetOutcome]:
    """One pipeline (or search) on the loaded dataset; the parent MLflow run spans all of it."""
    ctx.begin(reference)
    status = "FAILED"
    try:
        outcomes = _evaluate_and_record(ctx, reference)
        status = "FINISHED"
        return outcomes
    finally:
        ctx.end(status)


@dataclass
class _Scored:
    """One candidate a job scored, before it becomes a result file."""

    cv: Any
    name: str
    test_metrics: dict[str, float] | None = None
    search: Any = None  # SearchSummary
    budget: Any = None  # BudgetSummary
    ensemble: Any = None  # EnsembleSummary
    model_path: Path | None = None
    final: Any = None  # FinalModel of an ensemble, for held-out scoring


def _evaluate_and_record(ctx: _Context, reference: str | None) -> list[DatasetOutcome]:
    """Evaluate, (ablate), write each complete result once, then track it and attach the ids.

    A search job scores two candidates: the best trial (``search``) and the final ensemble
    (``ensemble``); other jobs score one.
    """
    start = time.perf_counter()
    if reference is not None:
        scored = [_reference(ctx, reference)]
    elif (ctx.options.trials or ctx.spec.budget.trials) > 1:
        scored = _search_job(ctx, start)
    else:
        scored = [_single(ctx)]
    wall = time.perf_counter() - start  # the job's own time; ablations are reported apart
    outcomes = []
    for i, item in enumerate(scored):
        ablate = i == 0 and ctx.ablates(reference)
        outcomes.append(_record(ctx, item, wall, ablate))
    return outcomes


def _record(ctx: _Context, item: _Scored, wall: float, ablate: bool) -> DatasetOutcome:
    from mmbench.jobs import build_result
    from mmbench.results import AblationSummary

    spec = ctx.spec
    report, files = _ablate(ctx, item.cv) if ablate else (None, {})
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
    result.budget, result.ensemble = item.budget, item.ensemble
    try:
        path = ctx.layout.write(result)
    except OSError as exc:  # a full or read-only disk: say what was computed before failing
        metric, mean, std = result.primary()
        raise MMBenchError(
            f"could not write its result file ({exc}); computed {item.name}: {metric} "
            f"{mean:.4f} ± {std:.4f} over {len(result.folds)} folds"
            + (f", held-out {result.test_metrics}" if result.test_metrics else "")
        ) from None
    ctx.reporter.info(f"{spec.name}: wrote {path}")
    outcome = DatasetOutcome(spec.name, item.name, result, path, warnings=list(ctx.warnings))
    outcome.warnings.extend(item.cv.failures)
    ctx.model_path = item.model_path
    outcome.result = _track(ctx, result, path, item.cv, report, files)
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
        resume = self.options.resume and reference is None
        self.job = start_job(info, uri=self.options.tracking_uri, warn=self.warn, resume=resume)

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


def _single(ctx: _Context) -> _Scored:
    from mmbench.jobs import evaluate_fixed

    with ctx.reporter.task(f"{ctx.spec.name}: {len(ctx.folds)} folds", len(ctx.folds)) as advance:
        cv = evaluate_fixed(
            ctx.spec, ctx.table, ctx.folds, cache=ctx.cache, on_fold=lambda r, i: advance(r)
        )
    item = _Scored(cv, "default")
    if ctx.spec.test_source is not None:
        item.test_metrics, item.model_path = _refit_and_test(ctx, cv, "default")
    return item


def _reference(ctx: _Context, name: str) -> _Scored:
    from mmbench.baselines import evaluate_reference
    from mmbench.jobs import require_a_fold
    from mmbench.peers import PEERS

    if name in PEERS:
        return _peer(ctx, name)
    ctx.reporter.info(f"{ctx.spec.name}: reference pipeline {name}")
    _, cv = evaluate_reference(
        name, ctx.table, ctx.folds, primary=ctx.spec.protocol.primary_metric, cache=ctx.cache
    )
    require_a_fold(cv)
    item = _Scored(cv, name)
    if ctx.spec.test_source is not None:
        item.test_metrics, item.model_path = _refit_and_test(ctx, cv, name)
    return item


def _peer(ctx: _Context, name: str) -> _Scored:
    """A peer tool on the same folds; its held-out model gets the job's whole time budget.

    Each CV fold gets ``timeout / folds``, so the CV costs about one budget, and the model
    refitted on all rows for the held-out score gets the full ``timeout``, like mmbench's job.
    """
    from mmbench.evaluation import compute_metrics
    from mmbench.jobs import require_a_fold
    from mmbench.peers import cross_validate_peer, fit_peer, peer_frame

    spec, table = ctx.spec, ctx.table
    timeout = ctx.options.timeout or spec.budget.timeout_s
    primary = spec.protocol.primary_metric
    ctx.reporter.info(f"{spec.name}: peer {name}")
    frame = peer_frame(table)
    with ctx.reporter.task(f"{spec.name}: {name}", len(ctx.folds)) as advance:
        cv = cross_validate_peer(
            name,
            table,
            ctx.folds,
            time_limit_s=None if timeout is None else timeout / len(ctx.folds),
            metric=primary,
            frame=frame,
            on_fold=lambda r, i: advance(r),
        )
    require_a_fold(cv)
    item = _Scored(cv, name)
    if spec.test_source is not None:
        model = fit_peer(
            name, table, seed=ctx.suite.seed, time_limit_s=timeout, metric=primary, frame=frame
        )
        test = _test_table(ctx)
        item.test_metrics = compute_metrics(test.labels, model.predict_proba(peer_frame(test)))
    return item


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


FINAL_RESERVE = 0.2
"""Share of a search job's ``timeout_s`` kept for the final model and held-out scoring."""


def _search_job(ctx: _Context, start: float) -> list[_Scored]:
    """Search within the budget, then build the final ensemble and score both on held-out rows.

    ``timeout_s`` bounds the whole job: the search stops :data:`FINAL_RESERVE` of it early
    (trials check the deadline between folds, epochs and boosting rounds), and the final phase
    refits ensemble members only while they fit before the job's deadline.
    """
    from mmbench.budget import NO_DEADLINE, Deadline
    from mmbench.final import fit_final, plan_ensemble

    timeout = ctx.options.timeout or ctx.spec.budget.timeout_s
    deadline = Deadline.after(None if timeout is None else timeout - (time.perf_counter() - start))
    search_deadline = NO_DEADLINE if timeout is None else deadline.earlier(FINAL_RESERVE * timeout)
    best, outcome = _search(ctx, search_deadline)
    searched = time.perf_counter()
    primary = ctx.spec.protocol.primary_metric
    plan = plan_ensemble(outcome.results, ctx.table.labels, ctx.folds, primary)
    single = _fit(ctx, best.cv, "search")
    best.model_path = single.path
    scored = [best]
    test = _held_out(ctx, single.model, best, plan, deadline)
    fitted = {best.search.best_trial: single.model} if best.search.best_trial is not None else {}
    if plan is not None:
        final = fit_final(
            ctx.table,
            plan,
            ctx.folds,
            seed=ctx.suite.seed,
            cache=ctx.cache,
            deadline=deadline,
            fitted=fitted,
        )
        item = _ensemble_item(ctx, plan, final, best.search)
        scored.append(item)
        if test is not None:
            item.test_metrics = _score_final(ctx, final, single.model, test)
    budget = _budget(ctx, timeout, start, searched, outcome)
    for item in scored:
        item.budget = budget
    return scored


def _held_out(
    ctx: _Context, single: Any, best: _Scored, plan: Any, deadline: Any
) -> tuple[Any, Any] | None:
    """Score the best trial on the held-out rows *before* the final fit, and encode those rows
    for the ensemble's members into the feature cache while the deadline allows, so the time the
    final fit is given is what is really left. Returns the test table and the best trial's
    probabilities (None without a test source)."""
    from mmbench.budget import DeadlineReached
    from mmbench.evaluation import compute_metrics
    from mmbench.pipeline import build_encoders, transform

    if ctx.spec.test_source is None:
        return None
    test = _test_table(ctx)
    proba = single.predict_proba(test, ctx.cache)
    best.test_metrics = compute_metrics(test.labels, proba, threshold=single.threshold)
    members = plan.cvs if plan is not None and ctx.cache.enabled else []  # no cache: no use
    for cv in members:
        frozen = {
            m: e for m, e in build_encoders(cv.spec, cv.modalities).items() if not e.fits_on_data
        }
        try:
            transform(test, frozen, ctx.cache, deadline)
        except DeadlineReached:
            break
    return test, proba


def _score_final(ctx: _Context, final: Any, single: Any, held_out: tuple[Any, Any]) -> dict:
    """The ensemble's held-out metrics (the best trial's probabilities reused if a member)."""
    from mmbench.evaluation import compute_metrics

    test, single_proba = held_out
    known = {
        t: single_proba for t, m in zip(final.trials, final.members, strict=True) if m is single
    }
    proba = final.predict_proba(test, known=known, cache=ctx.cache)
    return compute_metrics(test.labels, proba, weights=final.decision)


@dataclass
class _Refit:
    model: Any
    path: Path


def _fit(ctx: _Context, cv: Any, name: str) -> _Refit:
    from mmbench.pipeline import fit_pipeline

    ctx.reporter.info(f"{ctx.spec.name}: refitting {name} on all training rows")
    model = fit_pipeline(
        ctx.table, cv.spec, seed=ctx.suite.seed, modalities=cv.modalities, cache=ctx.cache
    )
    return _Refit(model, model.save(ctx.layout.model_file(ctx.spec.name, name)))


def _ensemble_item(ctx: _Context, plan: Any, final: Any, search: Any) -> _Scored:
    from mmbench.results import EnsembleMember, EnsembleSummary

    summary = EnsembleSummary(
        members=[
            EnsembleMember(trial=t, weight=w, pipeline=m.spec, fit=final.fit_kind(m))
            for t, w, m in zip(final.trials, final.weights, final.members, strict=True)
        ],
        oof_score=plan.selection.score,
        best_single_oof_score=plan.selection.best_single_score,
        candidates=plan.candidates,
        decision_weights=None if plan.decision is None else [float(w) for w in plan.decision],
        dropped=final.dropped,
    )
    final.save(ctx.layout.model_file(ctx.spec.name, "ensemble"))
    return _Scored(plan.cv, "ensemble", search=search, ensemble=summary, final=final)


def _budget(
    ctx: _Context, timeout: float | None, start: float, searched: float, outcome: Any
) -> Any:
    from mmbench.results import BudgetSummary

    now = time.perf_counter()
    cut = sum(1 for t in outcome.study.trials if "reason" in t.user_attrs)
    return BudgetSummary(
        timeout_s=timeout,
        wall_s=now - start,
        search_s=searched - start,
        final_s=now - searched,
        trials_run=outcome.n_new_trials,
        trials_cut=cut,
    )


def _search(ctx: _Context, deadline: Any) -> tuple[_Scored, Any]:
    from mmbench.jobs import search_history
    from mmbench.pipeline import evaluate_pipeline
    from mmbench.results import SearchSummary
    from mmbench.search import SearchSettings, SearchSpace, TrialHooks, run_search
    from mmbench.search.portfolio import portfolio

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
        deadline=deadline,
        portfolio=portfolio(space, list(ctx.table.modalities)) if space.portfolio else [],
    )
    primary = spec.protocol.primary_metric
    hooks = ctx.job.trial_hooks(primary) if ctx.job is not None else TrialHooks()
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
        history=search_history(study),
    )
    return _Scored(cv, "search", search=search), outcome


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


def _test_table(ctx: _Context) -> Any:
    from mmbench.data import load_table

    return load_table(
        ctx.spec, ctx.suite.root, split="test", seed=ctx.suite.seed, classes=ctx.table.classes
    )


def _refit_and_test(ctx: _Context, cv: Any, name: str) -> tuple[dict[str, float], Path]:
    """Fit a fixed pipeline on all training rows, save it, score the held-out test source."""
    from mmbench.evaluation import compute_metrics

    refit = _fit(ctx, cv, name)
    test = _test_table(ctx)
    proba = refit.model.predict_proba(test, ctx.cache)
    return compute_metrics(test.labels, proba, threshold=refit.model.threshold), refit.path

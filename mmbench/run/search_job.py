"""A search job: run, join or only finalize the dataset's Optuna study, then build the final
model (best trial refit and ensemble) and score both on the held-out rows.

The study's life cycle (open or join, run, who finalizes, the trials read back) is
:class:`mmbench.search.StudyRun`'s; this module composes: the settings it is given, the
subsample of rows (:mod:`.subsample`), the final model, the held-out scores and the result
file's summaries. The process that ends a study finalizes it, exactly once, from every trial
the study holds; a worker that does not returns no item.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from mmbench.run.context import JobContext, Scored, fit_and_save, test_table

FINAL_RESERVE = 0.2
"""Share of a search job's ``timeout_s`` kept for the final model and held-out scoring."""


def search_job(ctx: JobContext, start: float, reserve_s: float = 0.0) -> list[Scored]:
    """Search within the budget, then build the final ensemble and score both on held-out rows.

    ``timeout_s`` bounds the whole job: the search stops :data:`FINAL_RESERVE` of it early
    (trials check the deadline between folds, epochs and boosting rounds), and the final phase
    refits ensemble members only while they fit before the job's deadline. ``reserve_s`` is
    kept at the end of the budget for what the runner does next (the modality ablation).
    """
    from mmbench.budget import NO_DEADLINE, Deadline

    timeout = ctx.options.timeout or ctx.spec.budget.timeout_s
    deadline = Deadline.after(
        None if timeout is None else timeout - reserve_s - (time.perf_counter() - start)
    )
    search_deadline = NO_DEADLINE if timeout is None else deadline.earlier(FINAL_RESERVE * timeout)
    best, run = _search(ctx, search_deadline)
    if best is None:  # another worker (or the parent process) finalizes the study
        return []
    searched = time.perf_counter()
    step = _Step(ctx)
    try:
        scored = _final_phase(ctx, best, deadline, step)
    except OSError as exc:  # a full or read-only disk: the study keeps every trial
        raise step.failed(exc, best) from None
    budget = _budget(ctx, timeout, start, searched, run)
    for item in scored:
        item.budget = budget
    return scored


def _final_phase(ctx: JobContext, best: Scored, deadline: Any, step: _Step) -> list[Scored]:
    """The best trial refit and saved, the ensemble planned, fitted and saved, both scored on
    the held-out rows; ``step`` follows along so that a failure can say where it happened."""
    from mmbench.final import fit_final, plan_ensemble

    primary = ctx.spec.protocol.primary_metric
    plan = plan_ensemble(ctx.trial_results, ctx.table.labels, ctx.folds, primary)
    step.at("refitting and saving the best trial's model", "search")
    single = fit_and_save(ctx, best.cv, "search")
    best.model_path = single.path
    scored = [best]
    step.at("scoring the held-out rows")
    test = _held_out(ctx, single.model, best, plan, deadline)
    fitted = {best.search.best_trial: single.model} if best.search.best_trial is not None else {}
    if plan is not None:
        step.at("fitting the ensemble's members", "ensemble")
        final = fit_final(
            ctx.table,
            plan,
            ctx.folds,
            seed=ctx.suite.seed,
            cache=ctx.cache,
            deadline=deadline,
            fitted=fitted,
            bag_folds=_bag_folds(ctx),
        )
        step.at("saving the ensemble model", "ensemble")
        item = _ensemble_item(ctx, plan, final, best.search)
        scored.append(item)
        if test is not None:
            step.at("scoring the ensemble on the held-out rows")
            item.test_metrics = _score_final(ctx, final, single.model, test)
    return scored


def _bag_folds(ctx: JobContext) -> Any:
    """The whole k-fold split when the dataset is scored on part of it (a large table's
    hold-out), for the final members to be bagged over; None when every fold is scored."""
    protocol, table = ctx.spec.protocol, ctx.table
    split = protocol.split(table.labels, ctx.suite.seed, table.groups)
    return split if len(split) > len(ctx.folds) else None


class _Step:
    """Where the final phase is, so that an OSError names the operation and the file, what was
    already computed, and how to finish without searching again."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx, self.what = ctx, "building the final model"
        self.path: Path | None = None

    def at(self, what: str, model: str | None = None) -> None:
        self.what = what
        self.path = self.ctx.layout.model_file(self.ctx.spec.name, model) if model else None

    def failed(self, exc: OSError, best: Scored) -> Exception:
        from mmbench.errors import MMBenchError

        ctx, primary = self.ctx, self.ctx.spec.protocol.primary_metric
        where = exc.filename or self.path
        summary = best.cv.summary.get(primary, {})
        trial = best.search.best_trial if best.search is not None else None
        command = finalize_command(ctx)
        return MMBenchError(
            f"the search finished, but {self.what} failed"
            + (f" ({where})" if where else "")
            + f": {exc.strerror or exc}. Computed: best trial #{trial} {primary} "
            f"{summary.get('mean', float('nan')):.4f} ± {summary.get('std', float('nan')):.4f} "
            f"over {len(best.cv.folds)} folds; no result file was written for it. The study "
            f"keeps every trial: once there is room, `{command}` writes the results without "
            "searching again"
        )


def finalize_command(ctx: JobContext) -> str:
    """The command that writes this dataset's results from its searched study without searching
    again, with every option the job ran with (see :func:`~mmbench.run.context.command_line`)."""
    from mmbench.run.context import command_line

    return command_line("finalize", ctx.suite, ctx.options, [ctx.spec.name])


def _held_out(
    ctx: JobContext, single: Any, best: Scored, plan: Any, deadline: Any
) -> tuple[Any, Any] | None:
    """Score the best trial on the held-out rows *before* the final fit, and encode those rows
    for the ensemble's members into the feature cache while the deadline allows, so the time the
    final fit is given is what is really left. Returns the test table and the best trial's
    probabilities (None without a test source)."""
    from mmbench.budget import DeadlineReached
    from mmbench.pipeline import build_encoders, transform

    if ctx.spec.test_source is None:
        return None
    test = test_table(ctx)
    proba = single.predict_proba(test, ctx.cache)
    best.test_metrics = single.score(test, proba)
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


def _score_final(ctx: JobContext, final: Any, single: Any, held_out: tuple[Any, Any]) -> dict:
    """The ensemble's held-out metrics (the best trial's probabilities reused if a member)."""
    from mmbench.evaluation import compute_metrics

    test, single_proba = held_out
    known = {
        t: single_proba for t, m in zip(final.trials, final.members, strict=True) if m is single
    }
    proba = final.predict_proba(test, known=known, cache=ctx.cache)
    return compute_metrics(test.labels, proba, weights=final.decision)


def _ensemble_item(ctx: JobContext, plan: Any, final: Any, search: Any) -> Scored:
    """The final model's result: the CV and decision rule of the combiner it was fitted with
    (the blend's when the stacker fell back to it), never the other's."""
    from mmbench.results import EnsembleMember, EnsembleSummary

    summary = EnsembleSummary(
        members=[
            EnsembleMember(trial=t, weight=w, pipeline=m.spec, fit=final.fit_kind(m))
            for t, w, m in zip(final.trials, final.weights, final.members, strict=True)
        ],
        oof_score=plan.selection.score,
        best_single_oof_score=plan.selection.best_single_score,
        candidates=plan.candidates,
        decision_weights=None if final.decision is None else [float(w) for w in final.decision],
        dropped=final.dropped,
        final_model=final.describe(),
        combiner=final.combiner,
        nested={k: round(v, 6) for k, v in plan.nested.items() if math.isfinite(v)},
    )
    path = final.save(ctx.layout.model_file(ctx.spec.name, "ensemble"))
    return Scored(
        plan.cv_of(final.combiner),
        "ensemble",
        search=search,
        ensemble=summary,
        final=final,
        model_path=path,
    )


def _budget(ctx: JobContext, timeout: float | None, start: float, searched: float, run: Any) -> Any:
    """The job's budget as the *study* used it: all workers, hosts and resumed sessions.

    A lone process's own search time includes the sampler's, so it wins when it is the
    longer; a parent that only finalizes what its workers ran takes the study's span."""
    from mmbench.results import BudgetSummary

    now = time.perf_counter()
    cut = run.trials_cut()
    work = run.work(ctx.options.started_at)
    search_s = max(searched - start, work["search_s"])
    return BudgetSummary(
        timeout_s=timeout,
        wall_s=search_s + now - searched,
        search_s=search_s,
        final_s=now - searched,
        trials_run=work["trials"],
        trials_cut=cut,
        trial_s=work["trial_s"],
    )


def _search(ctx: JobContext, deadline: Any) -> tuple[Scored | None, Any]:
    """Run (or join) the study; the best trial's item, or None when this process does not
    finalize the study (see :attr:`RunOptions.finalize`). With the :class:`StudyRun`."""
    from mmbench.errors import MMBenchError
    from mmbench.results import SearchSummary
    from mmbench.results.build import search_history
    from mmbench.run.subsample import fit_rows_to_budget, use_subsample
    from mmbench.search import NothingFits, StudyRun, TrialHooks

    def optimize() -> tuple[Any, Any]:
        settings, space = _search_settings(ctx, deadline)
        run = StudyRun(settings)
        study = ctx.study = run.open()
        recorded = run.subsample
        if ctx.loaded is not None and recorded is None:  # the new study of a subsample
            run.record_subsample(ctx.table.meta["subsample"])
        elif recorded is not None and ctx.loaded is None and not use_subsample(ctx, recorded):
            raise MMBenchError(
                f"study {study.study_name!r} was searched on a subsample of {recorded['rows']:,} "
                f"of {recorded['of']:,} rows, which this dataset's {len(ctx.table):,} rows "
                "cannot reproduce; start a new study (without --resume)"
            )
        ctx.track_study(study)
        primary = ctx.spec.protocol.primary_metric
        hooks = ctx.job.trial_hooks(primary) if ctx.job is not None else TrialHooks()
        with ctx.reporter.task(f"{ctx.spec.name}: search", settings.n_trials) as advance:
            outcome = run.run(
                ctx.table,
                ctx.folds,
                space,
                cache=ctx.cache,
                hooks=hooks,
                on_trial=advance,
                optimize=ctx.options.finalize != "only",
            )
        return run, outcome

    try:
        run, outcome = optimize()
    except NothingFits as exc:
        if not fit_rows_to_budget(ctx, exc):
            raise
        run, outcome = optimize()  # a new study (``#k``) on the subsample
    name = ctx.spec.name
    if not run.finalizes(ctx.options.finalize, lambda why: ctx.reporter.info(f"{name}: {why}")):
        return None, run
    cv = _best_cv(ctx, run)
    study = run.study
    search = SearchSummary(
        study=study.study_name,
        storage=run.storage_shown,
        n_trials=len(study.trials),
        new_trials=run.work(ctx.options.started_at)["new_trials"],
        states=run.state_counts(),
        best_trial=run.best_number(),
        seconds=outcome.seconds,
        optuna_seconds=outcome.optuna_seconds,
        tracking_seconds=ctx.tracking_seconds,
        history=search_history(study, len(ctx.folds)),
        trial_store=_store_summary(ctx.trial_reads),
    )
    return Scored(cv, "search", search=search), run


def _store_summary(reads: Any) -> Any:
    """The result file's record of what the trial store gave back (None: nothing was asked)."""
    from mmbench.results import TrialStoreReads

    if reads is None or not (reads.cvs or reads.missing or reads.unreadable):
        return None
    return TrialStoreReads(
        url=reads.shown_url,
        read=len(reads.cvs),
        missing=sorted(reads.missing),
        unreadable=sorted(reads.unreadable),
    )


def _search_settings(ctx: JobContext, deadline: Any) -> tuple[Any, Any]:
    from mmbench.search import SearchSettings, SearchSpace
    from mmbench.search.portfolio import portfolio

    spec, options = ctx.spec, ctx.options
    space = spec.search or SearchSpace()
    exact = options.studies.get(spec.name)
    settings = SearchSettings(
        study_name=exact or f"{ctx.suite.name}.{spec.name}",
        storage=options.storage or ctx.layout.study_storage(),
        n_trials=options.trials or spec.budget.trials,
        timeout=options.timeout or spec.budget.timeout_s,
        sampler=space.sampler,
        pruner=space.pruner,
        objectives=list(space.objectives),
        primary=spec.protocol.primary_metric,
        seed=ctx.suite.seed,
        # workers join the latest study; ``finalize`` works on it
        resume=options.resume or options.worker is not None or options.finalize == "only",
        existing=options.resume or options.finalize == "only",
        adopt_budget=options.finalize == "only" or (options.resume and options.trials is None),
        deadline=deadline,
        portfolio=portfolio(space, list(ctx.table.modalities)) if space.portfolio else [],
        rungs=space.rungs,
        worker=options.worker,
        exact_name=exact is not None,
        trial_dir=trial_store(ctx),
    )
    return settings, space


def trial_store(ctx: JobContext) -> str | Path:
    """Where this dataset's trial outputs are kept: under ``--artifacts`` (a URL every worker
    and the finalizer reach), else the local results folder."""
    if ctx.options.artifacts:
        return f"{ctx.options.artifacts.rstrip('/')}/{ctx.suite.name}/{ctx.spec.name}/trials"
    return ctx.layout.trials_dir(ctx.spec.name)


def _best_cv(ctx: JobContext, run: Any) -> Any:
    """The CV results of the study's completed trials into ``ctx.trial_results``
    (:meth:`StudyRun.candidates`); the best trial's, scored with the decision rule fitted on its
    out-of-fold rows (the trials themselves were ranked by their own decisions). What the store
    gave back goes to ``ctx.trial_reads`` for the result file."""
    from mmbench.evaluation import decide

    results, reads = run.candidates(ctx.table, ctx.folds, ctx.cache)
    _check_reads(ctx, reads, results, run.completed())
    ctx.trial_results = results
    best = run.best_number()
    cv = results[best] if best is not None else run.outcome.best_cv
    if cv is None:
        return None
    return decide(cv, ctx.table.labels, ctx.folds, ctx.spec.protocol.primary_metric)


def _check_reads(ctx: JobContext, reads: Any, results: dict[int, Any], done: int) -> None:
    """Warn about every kept trial the store could not give back, and fail before the final
    phase when an unreadable one would be missing from it (nothing written, nothing deleted:
    the study and the store keep every trial, and ``mmbench finalize`` retries)."""
    from mmbench.errors import MMBenchError

    url = reads.shown_url or "(none)"
    for n, why in sorted(reads.unreadable.items()):
        ctx.warn(f"trial {n}: its kept outputs are unreadable: {why}")
    if reads.missing:
        ctx.warn(
            f"{len(reads.missing)} completed trial(s) have no kept outputs in the trial store "
            f"{url} ({_numbers(reads.missing)}): they are not ensemble candidates"
        )
    lost = [n for n in reads.unreadable if n not in results]
    if lost:
        raise MMBenchError(
            f"{len(lost)} of the study's {done} completed trials could not be read back from the "
            f"trial store {url} ({_numbers(lost)}; first: {reads.unreadable[lost[0]]}), so the "
            f"final model would be built from {len(results)} candidates instead of {done}. "
            "Nothing was written or deleted: the study and the store keep every trial. Make the "
            f"files readable (permissions, network, credentials) and run `{finalize_command(ctx)}`"
            "; or remove the damaged files to finalize without those trials (the result file "
            "then lists them as missing)"
        )
    ctx.trial_reads = reads


def _numbers(trials: list[int]) -> str:
    shown = ", ".join(f"#{n}" for n in sorted(trials)[:10])
    return "trial " + shown + (f" and {len(trials) - 10} more" if len(trials) > 10 else "")

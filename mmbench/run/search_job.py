"""A search job: run, join or only finalize the dataset's Optuna study, then build the final
model (best trial refit and ensemble) and score both on the held-out rows.

The process that ends a study finalizes it, exactly once, from every trial the study holds
(:mod:`mmbench.search.coordination`); a worker that does not returns no item.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from mmbench.run.context import JobContext, Scored, fit_and_save, test_table

FINAL_RESERVE = 0.2
"""Share of a search job's ``timeout_s`` kept for the final model and held-out scoring."""
SUBSAMPLE_SHARE = 0.4
"""When no candidate can encode every training row in the time left, the share of that time
the subsample's encoding may take (the rest is for cross-validating on it; below the search's
``FIRST_ENCODE_SHARE``, so the subsample's first candidate is not declined in turn)."""
MIN_SUBSAMPLE_ROWS = 50
SUBSAMPLE_ATTR = "subsample"
"""Study user attribute of a study searched on a subsample: ``rows``, ``of``, ``seed``,
``by_group``, ``reason``; resuming or finalizing it works on the same rows."""


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
    best, outcome = _search(ctx, search_deadline)
    if best is None:  # another worker (or the parent process) finalizes the study
        return []
    searched = time.perf_counter()
    step = _Step(ctx)
    try:
        scored = _final_phase(ctx, best, deadline, step)
    except OSError as exc:  # a full or read-only disk: the study keeps every trial
        raise step.failed(exc, best) from None
    budget = _budget(ctx, timeout, start, searched, outcome)
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
        )
        step.at("saving the ensemble model", "ensemble")
        item = _ensemble_item(ctx, plan, final, best.search)
        scored.append(item)
        if test is not None:
            step.at("scoring the ensemble on the held-out rows")
            item.test_metrics = _score_final(ctx, final, single.model, test)
    return scored


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


def _budget(
    ctx: JobContext, timeout: float | None, start: float, searched: float, outcome: Any
) -> Any:
    from mmbench.results import BudgetSummary

    """The job's budget as the *study* used it: all workers, hosts and resumed sessions.

    A lone process's own search time includes the sampler's, so it wins when it is the
    longer; a parent that only finalizes what its workers ran takes the study's span."""
    from mmbench.search.coordination import study_work

    now = time.perf_counter()
    cut = sum(1 for t in outcome.study.trials if "reason" in t.user_attrs)
    work = study_work(outcome.study, ctx.options.started_at)
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
    finalize the study (see :attr:`RunOptions.finalize`)."""
    from mmbench.errors import MMBenchError
    from mmbench.results import SearchSummary
    from mmbench.results.build import search_history
    from mmbench.search import TrialHooks, run_search
    from mmbench.search.coordination import redact_url, study_work
    from mmbench.search.study import NothingFits, open_study

    def optimize() -> tuple[Any, Any, Any]:
        settings, space = _search_settings(ctx, deadline)
        study = ctx.study = open_study(settings)
        recorded = study.user_attrs.get(SUBSAMPLE_ATTR)
        if ctx.loaded is not None and recorded is None:  # the new study of a subsample
            study.set_user_attr(SUBSAMPLE_ATTR, ctx.table.meta["subsample"])
        elif recorded is not None and ctx.loaded is None and not _use_subsample(ctx, recorded):
            raise MMBenchError(
                f"study {study.study_name!r} was searched on a subsample of {recorded['rows']:,} "
                f"of {recorded['of']:,} rows, which this dataset's {len(ctx.table):,} rows "
                "cannot reproduce; start a new study (without --resume)"
            )
        ctx.track_study(study)
        primary = ctx.spec.protocol.primary_metric
        hooks = ctx.job.trial_hooks(primary) if ctx.job is not None else TrialHooks()
        with ctx.reporter.task(f"{ctx.spec.name}: search", settings.n_trials) as advance:
            if ctx.options.finalize == "only":  # trials other processes ran, read from the study
                for trial in _finished(study):
                    advance(_TrialStatus(study, trial))
            outcome = run_search(
                ctx.table,
                ctx.folds,
                space,
                settings,
                cache=ctx.cache,
                hooks=hooks,
                on_trial=lambda study, trial: advance(_TrialStatus(study, trial)),
                study=study,
                optimize=ctx.options.finalize != "only",
            )
        return settings, study, outcome

    try:
        settings, study, outcome = optimize()
    except NothingFits as exc:
        if not _fit_rows_to_budget(ctx, exc):
            raise
        settings, study, outcome = optimize()  # a new study (``#k``) on the subsample
    if not _finalizes(ctx, study):
        return None, outcome
    cv = _best_cv(ctx, outcome, settings)
    search = SearchSummary(
        study=study.study_name,
        storage=redact_url(settings.storage) if settings.storage else "",
        n_trials=len(study.trials),
        new_trials=study_work(study, ctx.options.started_at)["new_trials"],
        states=_state_counts(study),
        best_trial=_best_number(study),
        seconds=outcome.seconds,
        optuna_seconds=outcome.optuna_seconds,
        tracking_seconds=ctx.tracking_seconds,
        history=search_history(study, len(ctx.folds)),
        trial_store=_store_summary(ctx.trial_reads),
    )
    return Scored(cv, "search", search=search), outcome


def _store_summary(reads: Any) -> Any:
    """The result file's record of what the trial store gave back (None: nothing was asked)."""
    from mmbench.results import TrialStoreReads
    from mmbench.search.coordination import redact_url

    if reads is None or not (reads.cvs or reads.missing or reads.unreadable):
        return None
    return TrialStoreReads(
        url=redact_url(reads.url) if reads.url else "",
        read=len(reads.cvs),
        missing=sorted(reads.missing),
        unreadable=sorted(reads.unreadable),
    )


def _fit_rows_to_budget(ctx: JobContext, exc: Any) -> bool:
    """After a search in which the budget check declined every candidate because even the
    cheapest one's encoding of all training rows could not fit, go on with the largest
    stratified subsample of rows whose encoding fits :data:`SUBSAMPLE_SHARE` of the time left
    (a result on fewer rows rather than none; its study records it, :data:`SUBSAMPLE_ATTR`).
    False when that is not possible: the encoding was not what failed to fit, the study is
    shared (workers, resume, finalize), or too few rows would fit to cross-validate."""
    options = ctx.options
    shared = options.worker is not None or options.resume or options.finalize != "always"
    if exc.per_row is None or exc.per_row <= 0 or shared or ctx.loaded is not None:
        return False
    table, protocol = ctx.table, ctx.spec.protocol
    rows = min(len(table) - 1, int(SUBSAMPLE_SHARE * exc.left / exc.per_row))
    if rows < max(MIN_SUBSAMPLE_ROWS, 2 * protocol.folds * table.n_classes):
        return False
    record = {
        "rows": rows,
        "of": len(table),
        "seed": ctx.suite.seed,
        "by_group": table.groups is not None,
        "reason": f"the time budget fits no candidate on all rows ({exc})",
    }
    if not _use_subsample(ctx, record):
        return False
    ctx.warn(
        f"even the cheapest candidate cannot encode all {len(table):,} "
        f"training rows in the {exc.left:.0f} s left (~{exc.per_row * len(table):.0f} s); "
        f"searching a stratified subsample of {rows:,} rows instead, the most whose encoding "
        f"fits {SUBSAMPLE_SHARE:.0%} of that time. Raise the budget to use every row."
    )
    ctx.end("KILLED")  # as its declined trials; the subsample's study gets its own run
    return True


def _use_subsample(ctx: JobContext, record: dict[str, Any]) -> bool:
    """Work on the stratified subsample ``record`` describes (``rows`` of ``of``, ``seed``):
    for the same table always the same rows, so a study searched on it can be resumed or
    finalized. ``by_group``: drawn per (group, class), keeping every group's share of rows
    (:func:`~mmbench.evaluation.stratified_subsample`). False when the table is not the one
    it was drawn from or the subsample cannot be cross-validated (e.g. too few groups)."""
    import numpy as np

    from mmbench.errors import MMBenchError
    from mmbench.evaluation import cv_folds, stratified_subsample

    table, protocol = ctx.table, ctx.spec.protocol
    if record.get("of") != len(table):
        return False
    rows, seed = int(record["rows"]), int(record["seed"])
    groups = table.groups if record.get("by_group") else None  # as the study's rows were drawn
    index = np.sort(stratified_subsample(table.labels, rows, seed, groups))
    sub = table.rows_of(index, salt="budget:")
    try:  # sklearn's ValueError: fewer groups (or rows of a class) than folds
        folds = cv_folds(sub.labels, protocol.folds, protocol.repeats, ctx.suite.seed, sub.groups)
    except (MMBenchError, ValueError):
        return False
    sub.meta["subsample"] = dict(record)
    ctx.use_rows(sub, folds)
    return True


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


def _finalizes(ctx: JobContext, study: Any) -> bool:
    """Whether this process writes the study's results: the one that ends it, exactly once."""
    from optuna.trial import TrialState

    from mmbench.search.coordination import claim, worker_id
    from mmbench.search.trials import finished_trials

    mode = ctx.options.finalize
    if mode != "claim":
        return mode in ("always", "only")  # "never": the parent process finalizes
    name = ctx.spec.name
    if study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        ctx.reporter.info(f"{name}: trials still run on other workers; the last one finalizes")
        return False
    if not claim(study, f"finalize.{finished_trials(study)}", worker_id()):
        ctx.reporter.info(f"{name}: another worker finalized study {study.study_name}")
        return False
    return True


def _best_cv(ctx: JobContext, outcome: Any, settings: Any) -> Any:
    """The CV results of the study's completed trials (this process's, and those other
    processes kept in the trial store) into ``ctx.trial_results``; the best trial's, evaluated
    again if no process kept it (or its kept file is unreadable), and scored with the decision
    rule fitted on its out-of-fold rows (the trials themselves were ranked by their own
    decisions). What the store gave back goes to ``ctx.trial_reads`` for the result file."""
    from optuna.trial import TrialState

    from mmbench.evaluation import decide
    from mmbench.pipeline import evaluate_pipeline
    from mmbench.search.coordination import load_trial_cvs

    study = outcome.study
    done = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    results = dict(outcome.results)
    missing = [n for n in done if n not in results]
    reads = load_trial_cvs(settings.trial_dir, study.study_name, missing)
    results.update(reads.cvs)
    best = _best_number(study)
    if best is not None and best not in results:
        results[best] = evaluate_pipeline(ctx.table, outcome.best_spec, ctx.folds, cache=ctx.cache)
    _check_reads(ctx, reads, results, len(done))
    ctx.trial_results = results
    cv = results[best] if best is not None else outcome.best_cv
    if cv is None:
        return None
    return decide(cv, ctx.table.labels, ctx.folds, ctx.spec.protocol.primary_metric)


def _check_reads(ctx: JobContext, reads: Any, results: dict[int, Any], done: int) -> None:
    """Warn about every kept trial the store could not give back, and fail before the final
    phase when an unreadable one would be missing from it (nothing written, nothing deleted:
    the study and the store keep every trial, and ``mmbench finalize`` retries)."""
    from mmbench.errors import MMBenchError
    from mmbench.search.coordination import redact_url

    url = redact_url(reads.url) if reads.url else "(none)"
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


def _finished(study: Any) -> list[Any]:
    """The study's trials that ended and hold budget (not duplicates, surplus or interrupted)."""
    from mmbench.search.coordination import counts

    return [t for t in study.get_trials(deepcopy=False) if counts(t) and t.state.is_finished()]


def _state_counts(study: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    return counts


def _best_number(study: Any) -> int | None:
    from mmbench.search.trials import best_trial

    best = best_trial(study)
    return None if best is None else best.number

"""One Optuna study per (suite, dataset): storage, sampler, pruner, objective, resume.

The objective samples a :class:`PipelineSpec`, cross-validates it with
:func:`mmbench.pipeline.evaluate_pipeline` and reports each fold's score so that a pruner can stop
a hopeless candidate early (Wilcoxon by default: made for k-fold instances). A candidate whose
folds fail is a FAILED trial with its reason and the study goes on. Bookkeeping (MLflow) is not
done here: callers pass :class:`TrialHooks` (e.g. :meth:`mmbench.tracking.JobTracker.trial_hooks`),
and the storage URL (by default :meth:`mmbench.results.ResultLayout.study_storage`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mmbench.budget import NO_DEADLINE, CostModel, Deadline, DeadlineReached
from mmbench.config import PipelineSpec
from mmbench.data.table import MultiModalTable
from mmbench.errors import MMBenchError
from mmbench.evaluation import METRICS, Fold
from mmbench.pipeline import CVResult, FoldResult, encode_seconds, evaluate_pipeline
from mmbench.pipeline.cache import FeatureCache
from mmbench.search import coordination as coord
from mmbench.search.coordination import redact_url, retry_dead_local_trials, worker_id
from mmbench.search.fidelity import RUNG_ATTR, Rung, make_rung, promotes, rung_scores
from mmbench.search.sampling import sample_pipeline
from mmbench.space import SearchSpace

SamplerName = Literal["tpe", "random", "cmaes", "nsga2"]
PrunerName = Literal["wilcoxon", "median", "hyperband", "none"]


MAX_DECLINED_IN_A_ROW = 10
"""Declined candidates in a row, with none completed, after which a search stops: the time
left fits no candidate, and sampling more only repeats the budget check."""


FIRST_ENCODE_SHARE = 0.5
"""Most of the time left that encoding may take before the study has any completed trial."""
ENCODE_RATE_ATTR = "encode_s_per_row"
"""User attribute of a trial declined for its encoding: the measured seconds per row."""


class TrialFailed(Exception):
    """Raised inside the objective so Optuna records the trial as FAILED and goes on."""


class _TooExpensive(Exception):
    """A candidate's measured cost exceeds the time left: it is declined before it starts
    (stored as pruned with the ``declined`` user attribute). ``per_row``: when its encoding
    alone did not fit, the measured seconds per row of that encoding."""

    def __init__(self, message: str, per_row: float | None = None) -> None:
        super().__init__(message)
        self.per_row = per_row


class NothingFits(MMBenchError):
    """The search ended with no completed trial because the budget check declined every
    candidate. ``per_row``: seconds per row the first (the portfolio's cheapest) would have
    spent encoding, when that is what did not fit; ``left``: seconds the search had left."""

    def __init__(self, message: str, per_row: float | None, left: float) -> None:
        super().__init__(message)
        self.per_row, self.left = per_row, left


class _Skipped(Exception):
    """A trial that does no work and uses no budget: a duplicate or a surplus trial."""


@dataclass
class SearchSettings:
    study_name: str
    storage: str | None = None
    n_trials: int = 10
    timeout: float | None = None
    sampler: SamplerName = "tpe"
    pruner: PrunerName = "wilcoxon"
    primary: str = "f1_macro"
    objectives: list[str] = field(default_factory=list)  # extra: "latency_ms"
    seed: int = 0
    resume: bool = False
    heartbeat_s: int = 30
    deadline: Deadline = NO_DEADLINE
    """When trials must be over; checked between folds, epochs and boosting rounds."""
    portfolio: list[dict[str, Any]] = field(default_factory=list)
    """Optuna params of known-strong trials, enqueued (in order) when the study is new."""
    worker: int | None = None
    """None: a lone process (the study's budget is this one's, seed as given). Else one of
    several workers on the study: its sampler seed is its own, the budget the study's
    (:mod:`mmbench.search.coordination`); -1: derive the seed from host and process id."""
    exact_name: bool = False
    """Join or create ``study_name`` itself (workers told which study to share)."""
    trial_dir: str | Path | None = None
    """The trial store: where each completed trial's outputs are kept (a folder, or an fsspec
    URL such as ``s3://bucket/prefix`` when workers share no disk), so a finalizing process
    (another worker or host, a resume) builds the ensemble from every trial of the study."""
    existing: bool = False
    """The study must already exist (``--resume``, ``mmbench finalize``): a missing one is an
    error that names the study and the storage, never a silently started new study."""
    adopt_budget: bool = False
    """Use the budget stored in the study (trials and deadline) instead of this one's, as a
    worker does: ``mmbench finalize``, and ``--resume`` without ``--trials``."""
    rungs: bool = True
    """Score each candidate first on a row subsample of one fold and cross-validate only the
    promising ones (:mod:`mmbench.search.fidelity`; large tables, single objective only)."""


@dataclass
class TrialHooks:
    """Callbacks for bookkeeping; every one is optional."""

    start: Callable[[Any, PipelineSpec], None] | None = None
    epoch: Callable[[Any, Fold, int, float], None] | None = None
    end: Callable[[Any, str, PipelineSpec, list[FoldResult], str | None], None] | None = None
    abandoned: Callable[[Any], None] | None = None
    """Called on resume with each failed trial whose process died before it ended (heartbeat
    expired, or a dead local worker), so its bookkeeping (e.g. an MLflow run) can be closed."""


@dataclass
class SearchOutcome:
    study: Any
    best_spec: PipelineSpec
    best_cv: CVResult | None
    n_new_trials: int
    seconds: float
    optuna_seconds: float
    results: dict[int, CVResult] = field(default_factory=dict)
    """CV of every trial that completed in this process (out-of-fold predictions for ensembles)."""


def make_storage(url: str, heartbeat_s: int, attempts: int = 6) -> Any:
    """:func:`_make_storage`, retried: on a fresh database several workers create Optuna's
    tables at once and all but one may fail (e.g. PostgreSQL's ``UniqueViolation`` on a table's
    type); by the next attempt the tables exist."""
    import random
    import warnings

    import optuna

    # heartbeats, grouped TPE and the Wilcoxon pruner are flagged experimental; we rely on them
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

    db = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
    new = db is not None and not db.exists()
    for attempt in range(attempts):
        try:
            return _make_storage(url, heartbeat_s)
        except MMBenchError as exc:
            if attempt == attempts - 1 or not any(m in str(exc) for m in _RACES):
                if new and db is not None and db.exists() and db.stat().st_size == 0:
                    db.unlink()  # a full or read-only disk: leave no empty database behind
                raise
            time.sleep(0.2 * (attempt + 1) + random.random() * 0.3)
    raise AssertionError("unreachable")


_RACES = ("UniqueViolation", "IntegrityError", "duplicate key", "already exists", "locked")
"""What Optuna creating its tables from several processes at once fails with."""


def _make_storage(url: str, heartbeat_s: int) -> Any:
    """RDB (SQLite, PostgreSQL...) with heartbeats and retry of stale trials, or a journal file."""
    import optuna

    if url.endswith((".log", ".journal")) and "://" not in url:
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(url))
    try:
        return optuna.storages.RDBStorage(
            url,
            heartbeat_interval=heartbeat_s,
            grace_period=heartbeat_s * 4,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=1
            ),
        )
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MMBenchError(f"cannot open Optuna storage {url!r}: {first}") from None


def make_sampler(name: str, seed: int, multi: bool) -> Any:
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(
            seed=seed, multivariate=True, group=True, n_startup_trials=5
        )
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if name == "nsga2" or multi:
        return optuna.samplers.NSGAIISampler(seed=seed)
    raise MMBenchError(f"unknown sampler {name!r}")


def make_pruner(name: str) -> Any:
    import optuna

    return {
        "wilcoxon": lambda: optuna.pruners.WilcoxonPruner(p_threshold=0.1, n_startup_steps=2),
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
        "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=1),
        "none": lambda: optuna.pruners.NopPruner(),
    }[name]()


def open_study(settings: SearchSettings) -> Any:
    """Create the study, or with ``resume`` continue the latest one of this name.

    Without ``resume`` an existing study is kept and a new one named ``<name>#<k>`` is started,
    so earlier trials are never deleted. Creation is race-safe (one of many workers creates the
    study, writes its budget and enqueues the portfolio; the others join it).
    """
    import warnings

    import optuna

    # heartbeats, grouped TPE and the Wilcoxon pruner are flagged experimental; we rely on them
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # progress is the caller's to show
    _quiet_skips()
    storage = make_storage(settings.storage or "sqlite:///:memory:", settings.heartbeat_s)
    name = settings.study_name if settings.exact_name else study_name(storage, settings)
    directions: list[Literal["maximize", "minimize"]] = [_direction(settings.primary)]
    directions += ["minimize" for _ in settings.objectives]
    multi = len(directions) > 1
    study, created = coord.create_or_join(
        storage,
        name,
        directions=directions,
        sampler=make_sampler(
            settings.sampler, coord.worker_seed(settings.seed, settings.worker), multi
        ),
        pruner=None if multi else make_pruner(settings.pruner),
    )
    # optuna-dashboard and Optuna's plots label the objectives with these, not "Objective 0"
    study.set_metric_names([f"cv.{settings.primary}", *settings.objectives])
    if not created and study.trials:  # a seed that has not proposed this study's trials yet
        seed = coord.worker_seed(settings.seed, settings.worker) + len(study.trials)
        study.sampler = make_sampler(settings.sampler, seed, multi)
    optuna.storages.fail_stale_trials(study)
    retry_dead_local_trials(study)
    if created or (settings.worker is None and not settings.adopt_budget):
        # a lone process's budget is the one it was given
        deadline = settings.deadline.remaining()
        coord.write_budget(
            study, settings.n_trials, time.time() + deadline if math.isfinite(deadline) else None
        )
    if created:
        for params in settings.portfolio:
            study.enqueue_trial(params, user_attrs={"portfolio": True}, skip_if_exists=True)
    return study


def _quiet_skips() -> None:
    import logging

    logger = logging.getLogger("optuna.study._optimize")  # filters do not see child records
    if not any(isinstance(f, coord.QuietSkips) for f in logger.filters):
        logger.addFilter(coord.QuietSkips())


def study_name(storage: Any, settings: SearchSettings) -> str:
    """``settings.study_name``, its latest ``#k`` with ``resume``, else the next free ``#k``."""
    import optuna

    existing = sorted(
        (
            s.study_name
            for s in optuna.get_all_study_summaries(storage)
            if s.study_name == settings.study_name
            or s.study_name.startswith(settings.study_name + "#")
        ),
        key=_study_index,
    )
    if settings.resume and existing:
        return existing[-1]
    if settings.existing:
        raise MMBenchError(
            f"no study {settings.study_name!r} in {redact_url(settings.storage)} to continue; "
            "start one with `mmbench run SUITE` (check --storage and --results)"
        )
    if existing:
        return f"{settings.study_name}#{_study_index(existing[-1]) + 1}"
    return settings.study_name


def _report_abandoned(study: Any, hooks: TrialHooks) -> None:
    """Hand every failed trial that never ended itself (no error of its own) to the hook."""
    from optuna.trial import TrialState

    if hooks.abandoned is None:
        return
    for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        if not any(k in t.user_attrs for k in ("error", *coord.SKIP_ATTRS)):
            hooks.abandoned(t)


def _study_index(name: str) -> int:
    _, _, k = name.rpartition("#")
    return int(k) if "#" in name and k.isdigit() else 1


def _direction(metric: str) -> Literal["maximize", "minimize"]:
    return "maximize" if METRICS.get(metric).higher_is_better else "minimize"


def finished_trials(study: Any) -> int:
    """Trials that used budget: complete, pruned, or failed for a reason of their own.

    A trial interrupted by Ctrl-C (or left running by a killed process and then failed by the
    heartbeat) did not get to finish, so a resumed study runs it again; duplicates and surplus
    trials did no work.
    """
    from optuna.trial import TrialState

    return sum(
        1
        for t in study.get_trials(deepcopy=False)
        if t.state != TrialState.RUNNING and coord.counts(t)
    )


def run_search(
    table: MultiModalTable,
    folds: list[Fold],
    space: SearchSpace,
    settings: SearchSettings,
    *,
    cache: FeatureCache | None = None,
    hooks: TrialHooks | None = None,
    on_trial: Callable[[Any, Any], None] | None = None,
    study: Any = None,
    optimize: bool = True,
) -> SearchOutcome:
    """Run (or resume, or join) the study until its trial budget or deadline is spent.

    ``study``: one the caller opened with :func:`open_study` (e.g. to attach tracking to it
    first). ``optimize=False`` runs no trial: the outcome of what the study holds.
    """

    space.check_names()
    hooks = hooks or TrialHooks()
    study = study if study is not None else open_study(settings)
    settings = _shared_budget(study, settings)
    _report_abandoned(study, hooks)
    objective = _Objective(table, folds, space, settings, cache, hooks)
    before = finished_trials(study)
    start = time.perf_counter()
    timeout = settings.timeout
    if settings.deadline.at is not None:
        timeout = max(0.0, min(timeout or math.inf, settings.deadline.remaining()))
    spent = coord.budget_taken(study) >= settings.n_trials or (timeout is not None and timeout <= 0)
    if optimize and not spent:
        study.optimize(
            objective,
            timeout=timeout,
            catch=(TrialFailed, _Skipped),
            callbacks=[*([on_trial] if on_trial else []), objective.stop_when_spent],
            gc_after_trial=False,
        )
    seconds = time.perf_counter() - start
    best = best_trial(study)
    if best is None:
        message = no_trial_message(study)
        declined = _all_declined(study)
        if declined:
            left = settings.deadline.remaining()
            raise NothingFits(message, declined[0].user_attrs.get(ENCODE_RATE_ATTR), left)
        raise MMBenchError(message)
    spec = PipelineSpec.model_validate(best.user_attrs["pipeline"])
    return SearchOutcome(
        study=study,
        best_spec=spec,
        best_cv=objective.results.get(best.number),
        n_new_trials=finished_trials(study) - before,
        seconds=seconds,
        optuna_seconds=max(0.0, seconds - objective.seconds_in_objective),
        results=objective.results,
    )


def no_trial_message(study: Any) -> str:
    """Why a study has no completed trial, and what to do: when the budget check declined every
    candidate, the reason of the first (the portfolio's cheapest) says what it needed."""
    declined = _all_declined(study)
    message = f"study {study.study_name!r} has no completed trial"
    if declined:
        first = declined[0].user_attrs.get("reason", "")
        return (
            f"{message}: the time budget fits no candidate — all {len(declined)} were declined, "
            f"the first (the cheapest known) because {first}; raise budget.timeout_s (or "
            "--timeout), or subsample with max_rows"
        )
    trials = study.get_trials(deepcopy=False)
    cut = [t for t in trials if "reason" in t.user_attrs and not t.user_attrs.get("declined")]
    if cut and not any("error" in t.user_attrs for t in trials):
        first = cut[0]
        return (
            f"{message}: the search's deadline came first — trial {first.number} was cut "
            f"({first.user_attrs['reason']}); raise budget.timeout_s (or --timeout), or "
            "subsample with max_rows"
        )
    return f"{message}; see failures above"


def _cheapest_known(trial: Any) -> bool:
    """Whether ``trial`` is the portfolio's first entry (its cheapest encoders: when their
    encoding does not fit, no other candidate's does)."""
    if not trial.user_attrs.get("portfolio"):
        return False
    earlier = trial.study.get_trials(deepcopy=False)[: trial.number]
    return not any(t.user_attrs.get("portfolio") for t in earlier)


def _all_declined(study: Any) -> list[Any]:
    """The study's declined trials when every trial that used budget was declined, else []."""
    declined = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("declined")]
    if len(declined) == sum(1 for t in study.trials if coord.counts(t)):
        return declined
    return []


def _shared_budget(study: Any, settings: SearchSettings) -> SearchSettings:
    """A worker (or ``finalize``, or a resume without ``--trials``) adopts the budget the
    study's creator wrote (trials and deadline)."""
    import dataclasses

    budget = coord.read_budget(study)
    if (settings.worker is None and not settings.adopt_budget) or not budget:
        return settings
    deadline = settings.deadline
    if budget.get("deadline") is not None:
        deadline = Deadline.after(float(budget["deadline"]) - time.time())
    return dataclasses.replace(
        settings, n_trials=int(budget.get("n_trials", settings.n_trials)), deadline=deadline
    )


def best_trial(study: Any) -> Any:
    """The best completed trial; for multi-objective, the best primary score on the front."""
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    if len(study.directions) == 1:
        return study.best_trial
    sign = 1 if study.directions[0].name == "MAXIMIZE" else -1
    return max(study.best_trials, key=lambda t: sign * t.values[0])


class _Objective:
    """Callable Optuna objective; remembers each trial's CV result for the caller."""

    def __init__(
        self,
        table: MultiModalTable,
        folds: list[Fold],
        space: SearchSpace,
        settings: SearchSettings,
        cache: FeatureCache | None,
        hooks: TrialHooks,
    ) -> None:
        self.table, self.folds, self.space, self.settings = table, folds, space, settings
        self.cache, self.hooks = cache, hooks
        self.results: dict[int, CVResult] = {}
        self.seconds_in_objective = 0.0
        self.costs = CostModel()
        self.encode_rates: dict[str, float] = {}
        self.sign = 1.0 if METRICS.get(settings.primary).higher_is_better else -1.0
        self.duplicates_in_a_row = 0
        self.declined_in_a_row = 0
        self.exhausted = False
        multi = bool(settings.objectives)  # Optuna cannot prune multi-objective trials
        self.rung: Rung | None = None if multi or not settings.rungs else make_rung(table, folds)
        self.step0 = 0 if self.rung is None else 1  # the rung reports step 0, fold i step i+1

    def stop_when_spent(self, study: Any, trial: Any) -> None:
        """An Optuna callback: stop once the study's budget is taken (by any worker), the
        deadline has passed, or the sampler keeps proposing configurations already run. Also
        retries the trials of workers on this host that died meanwhile (they run next)."""
        if retry_dead_local_trials(study):
            _report_abandoned(study, self.hooks)
        if (
            self.settings.deadline.expired()
            or self.exhausted
            or coord.budget_taken(study) >= self.settings.n_trials
        ):
            study.stop()

    def __call__(self, trial: Any) -> float | tuple[float, ...]:
        start = time.perf_counter()
        try:
            return self._evaluate(trial)
        except TrialFailed as exc:
            trial.set_user_attr("error", str(exc))
            raise
        except _Skipped:
            self.duplicates_in_a_row += 1
            self.exhausted = self.duplicates_in_a_row >= coord.MAX_CONSECUTIVE_DUPLICATES
            raise
        except KeyboardInterrupt:
            # Optuna stores the trial as FAILED; mark it so resume does not count it as budget
            trial.set_user_attr("interrupted", True)
            raise
        finally:
            self.seconds_in_objective += time.perf_counter() - start

    def _evaluate(self, trial: Any) -> float | tuple[float, ...]:
        import optuna

        try:
            spec = sample_pipeline(self.space, trial, self.table.modalities)
        except MMBenchError as exc:  # the space itself is wrong: every trial would fail so
            trial.set_user_attr("error", str(exc))
            raise MMBenchError(
                f"trial {trial.number} drew parameters the pipeline rejects ({exc}); fix the "
                "search space (`mmbench validate` checks names and bounds)"
            ) from None
        self._skip_if_repeated(trial)
        self.duplicates_in_a_row = 0
        trial.set_user_attr("pipeline", spec.model_dump(mode="json"))
        trial.set_user_attr("worker", worker_id())
        if self.hooks.start:
            self.hooks.start(trial, spec)
        done: list[FoldResult] = []
        started = time.perf_counter()
        encode, ran = 0.0, started
        try:
            if self.rung is not None:
                # judged on the rung even when the full table's encoding cannot follow in the
                # time left: its rung score is a measured answer (and teaches the sampler),
                # its rung features are cached for the next candidate with the same encoders,
                # and only a promoted candidate then needs the full table (checked below)
                self._score_rung(trial, spec, self.rung)
            first = not self.results and best_trial(trial.study) is None
            encode = self._check_cost(spec, first=first)
            ran = time.perf_counter()  # the cost probe is not part of a trial's cost
            cv = evaluate_pipeline(
                self.table,
                spec,
                self.folds,
                cache=self.cache,
                on_fold=lambda r, i: self._report(trial, r, i, done),
                on_epoch=self._epoch_hook(trial),
                reraise=(optuna.TrialPruned,),
                deadline=self.settings.deadline,
            )
        except _TooExpensive as exc:
            trial.set_user_attr("reason", str(exc))
            trial.set_user_attr("declined", True)
            if exc.per_row is not None:
                trial.set_user_attr(ENCODE_RATE_ATTR, exc.per_row)
            self.declined_in_a_row += 1
            if self.results == {} and (
                self.declined_in_a_row >= MAX_DECLINED_IN_A_ROW
                or (exc.per_row is not None and _cheapest_known(trial))
            ):
                self.exhausted = True  # nothing fits the time left: stop asking
            self._end(trial, "declined", spec, done, str(exc))
            raise optuna.TrialPruned(str(exc)) from None
        except DeadlineReached as exc:  # it took at least this long: remember that
            self.costs.record(spec.fusion.name, time.perf_counter() - ran - encode)
            trial.set_user_attr("reason", str(exc))
            self._end(trial, "pruned", spec, done, str(exc))
            raise optuna.TrialPruned(str(exc)) from None
        except optuna.TrialPruned:
            self._end(trial, "pruned", spec, done, trial.user_attrs.get("pruned_by"))
            raise
        except KeyboardInterrupt:
            self._end(trial, "interrupted", spec, done, "interrupted by the user")
            raise
        except TrialFailed as exc:  # on the rung
            self._end(trial, "failed", spec, done, str(exc))
            raise
        self.declined_in_a_row = 0
        if not cv.ok:
            reason = cv.failures[0]
            self._end(trial, "failed", spec, done, reason)
            raise TrialFailed(reason)
        self.results[trial.number] = cv
        if self.settings.trial_dir is not None:
            coord.save_trial_cv(self.settings.trial_dir, trial.study.study_name, trial.number, cv)
        # warm cost: what the trial took beyond encoding rows no cache held yet, so a later
        # trial of this head is not declined for an encoding it will not repeat
        warm = max(cv.seconds.get("fit", 0.0), time.perf_counter() - ran - encode)
        self.costs.record(spec.fusion.name, warm)
        trial.set_user_attr("seconds", round(time.perf_counter() - started, 3))
        values = self._values(cv)
        self._end(trial, "complete", spec, done, None)
        return values

    def _skip_if_repeated(self, trial: Any) -> None:
        """End at once a trial another worker's budget already covers, or one that repeats a
        configuration that ran; neither uses budget."""
        study = trial.study
        if coord.budget_taken(study, before=trial.number) >= self.settings.n_trials:
            trial.set_user_attr("surplus", True)
            self.exhausted = True  # the budget is spent: this worker is done
            raise _Skipped("the study's trial budget was taken by other workers")
        earlier = coord.duplicate_of(study, trial)
        if earlier is not None:
            trial.set_user_attr("duplicate_of", earlier)
            raise _Skipped(f"duplicate of trial {earlier}")

    def _score_rung(self, trial: Any, spec: PipelineSpec, rung: Rung) -> None:
        """Score ``spec`` on the rung; prune it (raise) unless its score is among the best
        third of the study's rung scores."""
        import optuna

        self._check_cost(spec, rung.table, head=False)
        start = time.perf_counter()
        cv = evaluate_pipeline(
            rung.table,
            spec,
            [rung.fold],
            cache=self.cache,
            reraise=(optuna.TrialPruned,),
            deadline=self.settings.deadline,
        )
        if not cv.ok:
            raise TrialFailed(f"on the rung ({rung.describe()}): {cv.failures[0]}")
        score = cv.mean(self.settings.primary)
        others = rung_scores(trial.study, exclude=trial.number)
        promoted = promotes(score, others, self.sign > 0)
        record = {"rows": rung.rows, "score": round(score, 6), "promoted": promoted}
        record["seconds"] = round(time.perf_counter() - start, 3)
        trial.set_user_attr(RUNG_ATTR, record)
        trial.report(score, 0)
        if promoted:
            self._check_full_cost(cv, rung)
        else:
            why = (
                f"rung: {self.settings.primary} {score:.4f} on {rung.describe()} is not among "
                f"the best third of {len(others) + 1} rung scores"
            )
            trial.set_user_attr("pruned_by", why)
            raise optuna.TrialPruned(why)

    def _check_full_cost(self, rung_cv: CVResult, rung: Rung) -> None:
        """Decline a promoted candidate whose full CV, extrapolated from its own rung (fit
        seconds scale with training rows, times the folds), cannot finish in the time left."""
        deadline = self.settings.deadline
        if deadline.at is None:
            return
        rows = sum(len(f.train) for f in self.folds)
        took = rung_cv.seconds.get("fit", 0.0)
        estimate = took * rows / max(1, len(rung.fold.train))
        left = deadline.remaining()
        if estimate > left:
            raise _TooExpensive(
                f"its rung's fit took {took:.1f} s: full CV would take ~{estimate:.0f} s; "
                f"{left:.0f} s left"
            )

    def _check_cost(
        self,
        spec: PipelineSpec,
        table: MultiModalTable | None = None,
        head: bool = True,
        first: bool = False,
    ) -> float:
        """Decline, before any work, a candidate that cannot finish in the time left; returns
        the seconds it is expected to spend encoding uncached rows.

        Two measured costs: seconds to encode the rows its frozen encoders have not cached yet
        (a probe of a few rows; 0 when cached), and the longest *warm* cost of a finished trial
        with the same head (its time without encoding uncached rows), so one cold trial does
        not make every later trial of that head look expensive. ``table``: encode these rows
        instead (the rung's); ``head=False``: check the encoding only (before and on the rung,
        which costs a fraction of a full trial; the head's cost is checked after promotion).
        ``first``: no trial of the study has completed yet, so the head's cost is unknown; its
        encoding may take at most :data:`FIRST_ENCODE_SHARE` of the time left (the rest is for
        cross-validating it), else it is declined — and if every candidate is, the job goes on
        with a subsample whose encoding fits (:class:`NothingFits`).
        """
        deadline = self.settings.deadline
        if deadline.at is None:
            return 0.0
        left = deadline.remaining()
        encode = encode_seconds(
            self.table if table is None else table, spec, self.cache, self.encode_rates
        )
        if encode > (FIRST_ENCODE_SHARE if first else 1.0) * left:
            rows = len(self.table if table is None else table)
            why = f"encoding would take ~{encode:.0f} s; {left:.0f} s left"
            if first and encode <= left:
                why += ", and a first result needs time to cross-validate too"
            raise _TooExpensive(why, per_row=encode / rows)
        if head and not self.costs.fits(spec.fusion.name, deadline.earlier(encode)):
            took = self.costs.estimate(spec.fusion.name)
            raise _TooExpensive(
                f"a {spec.fusion.name} trial takes ~{took:.0f} s with cached features "
                f"(+ ~{encode:.0f} s encoding); {left:.0f} s left"
            )
        return encode

    def _values(self, cv: CVResult) -> float | tuple[float, ...]:
        primary = cv.mean(self.settings.primary)
        if not math.isfinite(primary):
            raise TrialFailed(f"{self.settings.primary} is not finite")
        extra = []
        for name in self.settings.objectives:
            if name != "latency_ms":
                raise MMBenchError(f"unknown extra objective {name!r}; known: latency_ms")
            extra.append(_mean_info(cv, "predict_ms_per_row"))
        return (primary, *extra) if extra else primary

    def _report(self, trial: Any, result: FoldResult, step: int, done: list[FoldResult]) -> None:
        import optuna

        done.append(result)
        if not result.ok or len(self.settings.objectives) > 0:
            return
        value = result.metrics[self.settings.primary]
        if not math.isfinite(value):  # undefined in this fold (it lacks a class): no evidence
            return  # either way, and Optuna's pruners prune a trial that reports NaN
        trial.report(value, step + self.step0)
        # after the last fold the score is complete: pruning it would save nothing
        if step < len(self.folds) - 1 and trial.should_prune():
            raise optuna.TrialPruned(f"pruned after fold {result.key}")

    def _epoch_hook(self, trial: Any) -> Callable[[Fold, int, float], None] | None:
        if self.hooks.epoch is None:
            return None
        hook = self.hooks.epoch
        return lambda fold, epoch, score: hook(trial, fold, epoch, score)

    def _end(
        self, trial: Any, state: str, spec: PipelineSpec, done: list[FoldResult], err: str | None
    ) -> None:
        # the fold scores stay with the trial, so tracking can be filled in later
        trial.set_user_attr("folds", [f.metrics for f in done if f.ok])
        if self.hooks.end:
            self.hooks.end(trial, state, spec, done, err)


def _mean_info(cv: CVResult, key: str) -> float:
    values = [float(f.info[key]) for f in cv.folds if f.ok and f.info.get(key) is not None]
    return sum(values) / len(values) if values else float("nan")


def study_report(storage: str, suite: str, top: int = 5) -> list[dict[str, Any]]:
    """The best ``top`` trials of every study of ``suite`` in ``storage``, best first."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows: list[dict[str, Any]] = []
    summaries = optuna.get_all_study_summaries(storage)
    for summary in sorted(summaries, key=lambda s: s.study_name):
        if not summary.study_name.startswith(f"{suite}."):
            continue
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        sign = -1.0 if study.directions[0].name == "MAXIMIZE" else 1.0
        states = {s.name.lower(): 0 for s in TrialState}
        for t in study.get_trials(deepcopy=False):
            states[t.state.name.lower()] += 1
        for rank, t in enumerate(sorted(done, key=lambda t: sign * t.values[0])[:top], 1):
            rows.append(
                {
                    "study": study.study_name,
                    "rank": rank,
                    "trial": t.number,
                    "value": t.values[0],
                    "params": t.params,
                    "states": {k: v for k, v in states.items() if v},
                }
            )
    return rows

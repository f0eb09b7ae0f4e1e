"""One Optuna study per (suite, dataset): open (or resume, or join) it and run it.

The study's storage, sampler and pruner come from :mod:`mmbench.search.storage`; each trial is
:mod:`mmbench.search.objective` (Wilcoxon pruning by default: made for k-fold instances).
Bookkeeping (MLflow) is not done here: callers pass :class:`TrialHooks` (e.g.
:meth:`mmbench.tracking.JobTracker.trial_hooks`), and the storage URL (by default
:meth:`mmbench.results.ResultLayout.study_storage`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from mmbench.budget import Deadline
from mmbench.config import PipelineSpec
from mmbench.data.table import MultiModalTable
from mmbench.errors import MMBenchError
from mmbench.evaluation import METRICS, Fold
from mmbench.pipeline import CVResult
from mmbench.pipeline.cache import FeatureCache
from mmbench.search import coordination as coord
from mmbench.search.coordination import redact_url, retry_dead_local_trials
from mmbench.search.objective import ENCODE_RATE_ATTR, TrialFailed, _Objective, _Skipped
from mmbench.search.settings import SearchSettings, TrialHooks
from mmbench.search.storage import make_pruner, make_sampler, make_storage
from mmbench.search.trials import (
    _all_declined,
    _report_abandoned,
    best_trial,
    finished_trials,
    no_trial_message,
)
from mmbench.space import SearchSpace


class NothingFits(MMBenchError):
    """The search ended with no completed trial because the budget check declined every
    candidate. ``per_row``: seconds per row the first (the portfolio's cheapest) would have
    spent encoding, when that is what did not fit; ``left``: seconds the search had left."""

    def __init__(self, message: str, per_row: float | None, left: float) -> None:
        super().__init__(message)
        self.per_row, self.left = per_row, left


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


def _study_index(name: str) -> int:
    _, _, k = name.rpartition("#")
    return int(k) if "#" in name and k.isdigit() else 1


def _direction(metric: str) -> Literal["maximize", "minimize"]:
    return "maximize" if METRICS.get(metric).higher_is_better else "minimize"


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

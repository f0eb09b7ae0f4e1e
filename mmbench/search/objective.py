"""One trial of a study: the Optuna objective.

It samples a :class:`PipelineSpec`, declines it before any work when its measured cost does not
fit the time left, scores it on a row subsample first (the rung) when the table is large,
cross-validates it with :func:`mmbench.pipeline.evaluate_pipeline` and reports each fold's score
so that a pruner can stop a hopeless candidate early. A candidate whose folds fail is a FAILED
trial with its reason and the study goes on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from mmbench.budget import CostModel, DeadlineReached
from mmbench.config import PipelineSpec
from mmbench.data.table import MultiModalTable
from mmbench.errors import MMBenchError
from mmbench.evaluation import METRICS, Fold
from mmbench.pipeline import CVResult, FoldResult, encode_seconds, evaluate_pipeline
from mmbench.pipeline.cache import FeatureCache
from mmbench.search import coordination as coord
from mmbench.search.coordination import retry_dead_local_trials, worker_id
from mmbench.search.fidelity import RUNG_ATTR, Rung, make_rung, promotes, rung_scores
from mmbench.search.sampling import sample_pipeline
from mmbench.search.settings import SearchSettings, TrialHooks
from mmbench.search.trials import _report_abandoned, best_trial
from mmbench.space import SearchSpace

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


class _Skipped(Exception):
    """A trial that does no work and uses no budget: a duplicate or a surplus trial."""


def _cheapest_known(trial: Any) -> bool:
    """Whether ``trial`` is the portfolio's first entry (its cheapest encoders: when their
    encoding does not fit, no other candidate's does)."""
    if not trial.user_attrs.get("portfolio"):
        return False
    earlier = trial.study.get_trials(deepcopy=False)[: trial.number]
    return not any(t.user_attrs.get("portfolio") for t in earlier)


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
                on_fold=lambda r, i: self._report(trial, r, i, done, spec),
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

    def _report(
        self,
        trial: Any,
        result: FoldResult,
        step: int,
        done: list[FoldResult],
        spec: PipelineSpec,
    ) -> None:
        import optuna

        done.append(result)
        if not result.ok or len(self.settings.objectives) > 0:
            return
        why = cannot_finish(done, len(self.folds), self.settings.deadline.remaining())
        if why is not None:
            # what it took so far, as a trial cut by the deadline records: a full trial of this
            # head costs at least that (its projection is this configuration's, not the head's)
            self.costs.record(spec.fusion.name, sum(f.seconds for f in done))
            trial.set_user_attr("reason", f"projected: {why}")
            raise optuna.TrialPruned(why)
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


def _fold_seconds(done: list[FoldResult]) -> float:
    """A fold's head-fitting seconds, from the folds done (encoding excluded: it is cached for
    the folds to come)."""
    seconds = [float(f.info.get("fit_s", f.seconds)) for f in done if f.ok]
    return sum(seconds) / len(seconds) if seconds else 0.0


def cannot_finish(done: list[FoldResult], n_folds: int, left: float) -> str | None:
    """Why a trial with folds ``done`` of ``n_folds`` cannot finish in ``left`` seconds (its
    remaining folds at its own pace, head fitting only), or None. Stopping it now leaves that
    time to other candidates instead of spending it on a trial the deadline would cut anyway."""
    remaining = n_folds - len(done)
    if remaining <= 0 or not math.isfinite(left):
        return None
    need = remaining * _fold_seconds(done)
    if need <= left:
        return None
    return f"its {remaining} remaining fold(s) need ~{need:.0f} s at its pace; {left:.0f} s left"


def _mean_info(cv: CVResult, key: str) -> float:
    values = [float(f.info[key]) for f in cv.folds if f.ok and f.info.get(key) is not None]
    return sum(values) / len(values) if values else float("nan")

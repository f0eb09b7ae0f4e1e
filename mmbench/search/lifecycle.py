"""One process's part in a study's life, in one place: open (create, resume or join) the study,
run its trials, decide whether this process finalizes it, and read back what the final phase
needs (every completed trial's CV, from this process or the trial store; the best trial; the
study's counts and work across workers).

:mod:`.study` opens and runs a study, :mod:`.coordination` is how workers agree through its
storage, :mod:`.trials` reads its trials; a search job (:mod:`mmbench.run.search_job`) talks to
a :class:`StudyRun` only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mmbench.data.table import MultiModalTable
from mmbench.evaluation import Fold
from mmbench.pipeline import CVResult
from mmbench.pipeline.cache import FeatureCache
from mmbench.search import coordination as coord
from mmbench.search.settings import SearchSettings, TrialHooks
from mmbench.search.study import SearchOutcome, open_study, run_search
from mmbench.search.trials import best_trial, finished_trials
from mmbench.space import SearchSpace

SUBSAMPLE_ATTR = "subsample"
"""Study user attribute of a study searched on a subsample: ``rows``, ``of``, ``seed``,
``by_group``, ``reason``; resuming or finalizing it works on the same rows."""


class TrialStatus:
    """What a progress bar shows after a trial: its state and the best score so far."""

    def __init__(self, study: Any, trial: Any) -> None:
        self.key = f"trial {trial.number}"
        self.error = None
        state = trial.state.name.lower()
        try:
            best = study.best_value if len(study.directions) == 1 else None
        except ValueError:
            best = None
        self.text = f"{self.key} {state}" + (f", best {best:.3f}" if best is not None else "")


class StudyRun:
    """A study as one process works on it: :meth:`open`, :meth:`run`, :meth:`finalizes`, then
    :meth:`candidates` and the counts the result file reports."""

    def __init__(self, settings: SearchSettings) -> None:
        self.settings = settings
        self.study: Any = None
        self.outcome: SearchOutcome | None = None

    def open(self) -> Any:
        """Create, resume or join the study (:func:`~mmbench.search.study.open_study`)."""
        self.study = open_study(self.settings)
        return self.study

    @property
    def subsample(self) -> dict[str, Any] | None:
        """The subsample of rows the study was searched on (:data:`SUBSAMPLE_ATTR`), if any."""
        return self.study.user_attrs.get(SUBSAMPLE_ATTR)

    def record_subsample(self, record: dict[str, Any]) -> None:
        self.study.set_user_attr(SUBSAMPLE_ATTR, record)

    def run(
        self,
        table: MultiModalTable,
        folds: list[Fold],
        space: SearchSpace,
        *,
        cache: FeatureCache | None,
        hooks: TrialHooks,
        on_trial: Callable[[TrialStatus], None],
        optimize: bool,
    ) -> SearchOutcome:
        """Run the study's trials (none with ``optimize=False``: the trials other processes ran
        are reported to ``on_trial`` first), until its budget or deadline is spent."""
        study = self.study
        if not optimize:  # trials other processes ran, read from the study
            for trial in self.finished():
                on_trial(TrialStatus(study, trial))
        self.outcome = run_search(
            table,
            folds,
            space,
            self.settings,
            cache=cache,
            hooks=hooks,
            on_trial=lambda study, trial: on_trial(TrialStatus(study, trial)),
            study=study,
            optimize=optimize,
        )
        return self.outcome

    def finished(self) -> list[Any]:
        """The trials that ended and hold budget (not duplicates, surplus or interrupted)."""
        return [
            t
            for t in self.study.get_trials(deepcopy=False)
            if coord.counts(t) and t.state.is_finished()
        ]

    def finalizes(self, mode: str, say: Callable[[str], None]) -> bool:
        """Whether this process writes the study's results: the one that ends it, exactly once.

        ``mode``: ``always``/``only`` (yes), ``never`` (the parent process does), ``claim``
        (the worker that ends the study, through :func:`~.coordination.claim`); ``say`` is told
        why not."""
        from optuna.trial import TrialState

        if mode != "claim":
            return mode in ("always", "only")
        study = self.study
        if study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            say("trials still run on other workers; the last one finalizes")
            return False
        if not coord.claim(study, f"finalize.{finished_trials(study)}", coord.worker_id()):
            say(f"another worker finalized study {study.study_name}")
            return False
        return True

    def candidates(
        self, table: MultiModalTable, folds: list[Fold], cache: FeatureCache | None
    ) -> tuple[dict[int, CVResult], coord.TrialReads]:
        """The CV results of the study's completed trials: this process's, and those other
        processes kept in the trial store; the best trial's evaluated again if no process kept
        it (or its kept file is unreadable). With what the store gave back."""
        from optuna.trial import TrialState

        from mmbench.pipeline import evaluate_pipeline

        study, outcome = self.study, self.outcome
        assert outcome is not None, "run the study first"
        done = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        results = dict(outcome.results)
        missing = [n for n in done if n not in results]
        reads = coord.load_trial_cvs(self.settings.trial_dir, study.study_name, missing)
        results.update(reads.cvs)
        best = self.best_number()
        if best is not None and best not in results:
            results[best] = evaluate_pipeline(table, outcome.best_spec, folds, cache=cache)
        return results, reads

    def completed(self) -> int:
        from optuna.trial import TrialState

        return len(self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))

    def best_number(self) -> int | None:
        best = best_trial(self.study)
        return None if best is None else best.number

    def state_counts(self) -> dict[str, int]:
        """Trials per state (``complete``, ``pruned``, ``fail``, ...)."""
        counts: dict[str, int] = {}
        for t in self.study.get_trials(deepcopy=False):
            counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
        return counts

    def trials_cut(self) -> int:
        """Trials the budget cut short (they record a ``reason``)."""
        return sum(1 for t in self.study.trials if "reason" in t.user_attrs)

    def work(self, since: float | None) -> dict[str, Any]:
        """What the whole study did (:func:`~.coordination.study_work`)."""
        return coord.study_work(self.study, since)

    @property
    def storage_shown(self) -> str:
        """The storage URL without its password ("" for the in-memory default)."""
        storage = self.settings.storage
        return coord.redact_url(storage) if storage else ""

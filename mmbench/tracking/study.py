"""Optuna trials as MLflow child runs, fed by the search's :class:`~mmbench.search.TrialHooks`."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from mmbench.errors import MMBenchError
from mmbench.tracking.client import Tracker, cv_metrics, fold_steps

STATUS = {"complete": "FINISHED", "pruned": "KILLED", "interrupted": "KILLED", "failed": "FAILED"}


class StudyRecorder:
    """Mirrors an Optuna study's trials as nested MLflow child runs, one to one.

    Each trial run carries the pipeline's flat params, per-fold metrics (``fold.<metric>`` by
    step), mean metrics (``cv.<metric>``), per-epoch validation curves, its state and error.
    """

    def __init__(
        self,
        tracker: Tracker,
        parent_id: str,
        tags: Mapping[str, Any],
        warn: Callable[[str], None] = print,
    ) -> None:
        self.tracker, self.parent_id, self.tags, self.warn = tracker, parent_id, dict(tags), warn
        self.runs: dict[int, str] = {}
        self._curves: dict[int, list[tuple[str, float, int]]] = {}
        self._started: dict[int, float] = {}

    def start(self, trial: Any, spec: Any) -> None:
        """Open the trial's run; a tracking failure is warned about once and never fails the
        trial (the tracker then refuses every later call at once)."""
        if self.tracker.failed is not None:
            return
        tags = {**self.tags, "mmbench.kind": "trial", "mmbench.trial": trial.number}
        tags["mmbench.study"] = trial.study.study_name
        try:
            run_id = self.tracker.start_run(f"trial-{trial.number:03d}", tags, self.parent_id)
        except MMBenchError as exc:
            self.warn(f"MLflow failed, the search goes on untracked: {exc}")
            return
        trial.set_user_attr("mlflow_run_id", run_id)
        self.runs[trial.number] = run_id
        self._curves[trial.number] = []
        self._started[trial.number] = time.perf_counter()

    def abandoned(self, trial: Any) -> None:
        """Close as KILLED the run of a trial whose process died (idempotent: a run that is
        no longer RUNNING is left as it is)."""
        run_id = trial.user_attrs.get("mlflow_run_id")
        if run_id is None or self.tracker.failed is not None:
            return
        try:
            run = self.tracker.timed(self.tracker.client.get_run, run_id)
            if run.info.status == "RUNNING":
                self.tracker.end_run(run_id, "KILLED")
        except MMBenchError as exc:
            self.warn(f"MLflow failed, the search goes on untracked: {exc}")

    def epoch(self, trial: Any, fold: Any, epoch: int, score: float) -> None:
        if trial.number in self._curves:
            self._curves[trial.number].append((f"epoch.val_score.{fold.key}", score, epoch))

    def end(self, trial: Any, state: str, spec: Any, folds: list[Any], error: str | None) -> None:
        if trial.number not in self.runs or self.tracker.failed is not None:
            return
        try:
            self._end(trial, state, spec, folds, error)
        except MMBenchError as exc:
            self.warn(f"MLflow failed, the search goes on untracked: {exc}")

    def _end(self, trial: Any, state: str, spec: Any, folds: list[Any], error: str | None) -> None:
        from mmbench.evaluation import summarize

        run_id = self.runs[trial.number]
        ok = [f.metrics for f in folds if f.error is None]
        duration = time.perf_counter() - self._started.pop(trial.number)
        tags = {"mmbench.state": state}
        if error:
            tags["mmbench.error"] = error[:5000]
        self.tracker.log(
            run_id,
            params=spec.flat_params(),
            metrics={**cv_metrics(summarize(ok)), "duration_s": duration, "folds_done": len(ok)},
            steps=fold_steps(ok) + self._curves.pop(trial.number, []),
            tags=tags,
        )
        self.tracker.end_run(run_id, STATUS.get(state, "FAILED"))

    def backfill(self, study: Any, trial: Any) -> bool:
        """Log a finished trial (a FrozenTrial) from what the study holds, if its run is missing
        or was left RUNNING (tracking failed mid-trial); True when something was logged.
        Idempotent: a trial whose run has ended is left as it is."""
        from mmbench.config import PipelineSpec

        state = {"COMPLETE": "complete", "PRUNED": "pruned"}.get(trial.state.name, "failed")
        run_id = self._trial_run(study, trial)
        if run_id is not None:
            run = self.tracker.timed(self.tracker.client.get_run, run_id)
            if run.info.status != "RUNNING":
                return False
        else:
            tags = {**self.tags, "mmbench.kind": "trial", "mmbench.trial": trial.number}
            tags["mmbench.study"] = study.study_name
            run_id = self.tracker.start_run(f"trial-{trial.number:03d}", tags, self.parent_id)
        self.runs[trial.number] = run_id
        self._started[trial.number] = time.perf_counter() - float(
            trial.user_attrs.get("seconds", 0.0)
        )
        spec = PipelineSpec.model_validate(trial.user_attrs["pipeline"])
        folds = [_Fold(m) for m in trial.user_attrs.get("folds", [])]
        error = trial.user_attrs.get("error") or trial.user_attrs.get("reason")
        self._end(trial, state, spec, folds, error)
        return True

    def _trial_run(self, study: Any, trial: Any) -> str | None:
        """The trial's run at this tracking URI: the id the trial recorded, else by its tags."""
        known = trial.user_attrs.get("mlflow_run_id")
        if known is not None and self._search(f"attributes.run_id = '{known}'"):
            return str(known)
        found = self._search(
            f"tags.`mlflow.parentRunId` = '{self.parent_id}' and "
            f"tags.`mmbench.study` = '{study.study_name}' and "
            f"tags.`mmbench.trial` = '{trial.number}'"
        )
        return found[0] if found else None

    def _search(self, query: str) -> list[str]:
        runs = self.tracker.timed(
            self.tracker.client.search_runs, [self.tracker.experiment_id], filter_string=query
        )
        return sorted(str(r.info.run_id) for r in runs)


class _Fold:
    """A fold's metrics as the trial kept them (what :meth:`StudyRecorder._end` reads)."""

    def __init__(self, metrics: Mapping[str, float]) -> None:
        self.metrics, self.error = dict(metrics), None

"""Optuna trials as MLflow child runs, fed by the search's :class:`~mmbench.search.TrialHooks`.

One score per trial everywhere: a complete trial's ``cv.<primary>`` is its CV mean, which is
Optuna's value; a pruned trial's is the value Optuna records for it — the score of the last fold
it reported — not a mean of the folds that ran, which Optuna never shows. Pruned trials end
``FINISHED`` with ``mmbench.state=pruned`` (they ran to a decision), so the red ✗ of ``FAILED``
means a crash. A trial the budget check *declined* before any fold ran (Optuna stores it as
pruned, with ``declined`` among its user attributes) ends ``KILLED`` with
``mmbench.state=declined``, ``(declined)`` in its name, no score and a description that says
why; ``KILLED`` otherwise means an interruption.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from mmbench.errors import MMBenchError
from mmbench.results.build import trial_outcome
from mmbench.search.fidelity import RUNG_ATTR
from mmbench.tracking.client import Tracker, cv_metrics, fold_steps
from mmbench.tracking.naming import optuna_name_tags, run_params, trial_run_name
from mmbench.tracking.summary import run_link

DEFAULT_UI = "http://127.0.0.1:5000"
"""Where ``mlflow ui`` serves a local store by default: the base of links to its runs."""

STATUS = {
    "complete": "FINISHED",
    "pruned": "FINISHED",
    "declined": "KILLED",
    "interrupted": "KILLED",
    "failed": "FAILED",
}


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
        primary: str | None = None,
    ) -> None:
        self.tracker, self.parent_id, self.tags, self.warn = tracker, parent_id, dict(tags), warn
        self.primary = primary
        """The objective's metric: a pruned trial's score is its last reported fold's."""
        self.runs: dict[int, str] = {}
        self._curves: dict[int, dict[int, list[float]]] = {}
        self._started: dict[int, float] = {}

    def start(self, trial: Any, spec: Any) -> None:
        """Open the trial's run; a tracking failure is warned about once and never fails the
        trial (the tracker then refuses every later call at once)."""
        if self.tracker.failed is not None:
            return
        tags = {**self.tags, "mmbench.kind": "trial", "mmbench.trial": trial.number}
        tags["mmbench.study"] = trial.study.study_name
        name = trial_run_name(
            str(self.tags.get("mmbench.dataset", "study")), trial.study.study_name, trial.number
        )
        try:
            run_id = self.tracker.start_run(name, tags, self.parent_id)
        except MMBenchError as exc:
            self.warn(f"MLflow failed, the search goes on untracked: {exc}")
            return
        trial.set_user_attr("mlflow_run_id", run_id)
        dashboard_note(trial, name, run_link(self.tracker, run_id, DEFAULT_UI))
        self.runs[trial.number] = run_id
        self._curves[trial.number] = {}
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
            self._curves[trial.number].setdefault(epoch, []).append(score)

    def end(self, trial: Any, state: str, spec: Any, folds: list[Any], error: str | None) -> None:
        if trial.number not in self.runs or self.tracker.failed is not None:
            return
        try:
            self._end(trial, state, spec, folds, error)
        except MMBenchError as exc:
            self.warn(f"MLflow failed, the search goes on untracked: {exc}")

    def _end(self, trial: Any, state: str, spec: Any, folds: list[Any], error: str | None) -> None:
        run_id = self.runs[trial.number]
        ok = [f.metrics for f in folds if f.error is None]
        duration = time.perf_counter() - self._started.pop(trial.number)
        tags = {"mmbench.state": state, **optuna_name_tags(trial.params)}
        if error:
            tags["mmbench.error"] = error[:5000]
        if state == "pruned":
            tags["mmbench.pruned"] = "true"
            tags["mlflow.note.content"] = pruned_note(folds, error)
        if state == "declined":
            tags["mlflow.note.content"] = declined_note(error)
            name = trial_run_name(
                str(self.tags.get("mmbench.dataset", "study")), _study_name(trial), trial.number
            )
            self.tracker.timed(self.tracker.client.update_run, run_id, name=f"{name} (declined)")
        study = getattr(trial, "study", None)  # a FrozenTrial (backfill) has none: one objective
        multi = len(getattr(study, "directions", ())) > 1
        metrics = self.scores(state, ok, reported=not multi)
        rung = trial.user_attrs.get(RUNG_ATTR)
        if rung is not None:  # the search's low-fidelity score (mmbench.search.fidelity)
            metrics[f"rung.{self.primary or 'score'}"] = rung["score"]
            metrics["rung.rows"] = rung["rows"]
            tags["mmbench.fidelity"] = (
                "full CV" if rung["promoted"] else f"{rung['rows']} rows, 1 fold"
            )
        tags["mmbench.outcome"] = trial_outcome(trial, state)[:5000]
        curve = self._curves.pop(trial.number, {})
        self.tracker.log(
            run_id,
            params=run_params(spec) if spec is not None else {},
            metrics={**metrics, "duration_s": duration, "folds_done": len(ok)},
            steps=fold_steps(ok) + epoch_curve(curve),
            tags=tags,
        )
        self.tracker.end_run(run_id, STATUS.get(state, "FAILED"))

    def scores(
        self, state: str, ok: list[dict[str, float]], reported: bool = True
    ) -> dict[str, float]:
        """``cv.*`` of a trial: the CV summary, or for a pruned one only the score Optuna
        records for it (its last reported fold; none when folds are not reported, as in a
        multi-objective study), so MLflow and Optuna show one number."""
        from mmbench.evaluation import summarize

        if state == "declined":
            return {}
        if state != "pruned" or self.primary is None:
            return cv_metrics(summarize(ok))
        if not reported:
            return {}
        reported_scores = [m[self.primary] for m in ok if self.primary in m]
        return {f"cv.{self.primary}": reported_scores[-1]} if reported_scores else {}

    def backfill(self, study: Any, trial: Any) -> bool:
        """Log a finished trial (a FrozenTrial) from what the study holds, if its run is missing
        or was left RUNNING (tracking failed mid-trial); True when something was logged.
        Idempotent: a trial whose run has ended is left as it is."""
        from mmbench.config import PipelineSpec

        state = {"COMPLETE": "complete", "PRUNED": "pruned"}.get(trial.state.name, "failed")
        state = "declined" if trial.user_attrs.get("declined") else state
        run_id = self._trial_run(study, trial)
        if run_id is not None:
            run = self.tracker.timed(self.tracker.client.get_run, run_id)
            if run.info.status != "RUNNING":
                return False
        else:
            tags = {**self.tags, "mmbench.kind": "trial", "mmbench.trial": trial.number}
            tags["mmbench.study"] = study.study_name
            dataset = str(self.tags.get("mmbench.dataset", "study"))
            name = trial_run_name(dataset, study.study_name, trial.number)
            run_id = self.tracker.start_run(name, tags, self.parent_id)
        self.runs[trial.number] = run_id
        self._curves[trial.number] = {}
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


def dashboard_note(trial: Any, run_name: str, link: str) -> None:
    """A Markdown note on the trial linking its MLflow run, for optuna-dashboard (which shows
    user attributes such as ``mlflow_run_id`` as plain text); skipped without optuna-dashboard.
    """
    try:
        from optuna_dashboard import save_note
    except ImportError:
        return
    try:
        save_note(trial, f"MLflow run: [{run_name}]({link})")
    except Exception:  # a note is a convenience: never a reason to fail the trial
        return


def epoch_curve(curve: Mapping[int, list[float]]) -> list[tuple[str, float, int]]:
    """One ``epoch.val_score`` curve: the mean over the folds that reached each epoch."""
    return [("epoch.val_score", sum(v) / len(v), e) for e, v in sorted(curve.items()) if v]


def pruned_note(folds: list[Any], reason: str | None) -> str:
    """The run description of a pruned trial: why, and what its score means."""
    done = [f.key for f in folds if f.error is None]
    why = reason or (f"pruned after fold {done[-1]}" if done else "pruned")
    return (
        f"**Pruned** ({why}; {len(done)} fold(s) ran). Its `cv.*` score is the value Optuna "
        "records for a pruned trial: the score of the last fold it reported."
    )


def declined_note(reason: str | None) -> str:
    """The run description of a declined trial: it never ran, and why."""
    return (
        f"**Declined** before any fold ran: {reason or 'it would not fit in the time left'}. "
        "No fold was scored, so it has no score; Optuna lists it as pruned."
    )


def _study_name(trial: Any) -> str:
    study = getattr(trial, "study", None)
    return str(getattr(study, "study_name", ""))


class _Fold:
    """A fold's metrics as the trial kept them (what :meth:`StudyRecorder._end` reads)."""

    def __init__(self, metrics: Mapping[str, float]) -> None:
        self.metrics, self.error = dict(metrics), None

"""One benchmark job's MLflow runs, behind the few hooks the runner calls.

The runner knows only this API: :func:`start_job` (a :class:`JobTracker`, or None when MLflow
is unavailable), then :meth:`JobTracker.trial_hooks` for a search, :meth:`~JobTracker.record_result`
and :meth:`~JobTracker.record_ablation` after the result file is written, and
:meth:`~JobTracker.close`. Like an Optuna integration, none of it is needed for a run: a
tracking failure is reported through ``warn`` and never costs a result file.
"""

from __future__ import annotations

import math
import tempfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmbench._io import git_commit
from mmbench.errors import MMBenchError
from mmbench.results import AblationReport, RunResult, TrackingIds
from mmbench.tracking.client import Tracker, cv_metrics, fold_steps
from mmbench.tracking.naming import result_run_name, run_params
from mmbench.tracking.summary import EXPERIMENT_KIND, best_trial_tags, log_search_summary

if TYPE_CHECKING:
    from mmbench.data.table import MultiModalTable
    from mmbench.pipeline import CVResult
    from mmbench.search.settings import TrialHooks
    from mmbench.suite import Modalities

Warn = Callable[[str], None]


@dataclass(frozen=True)
class JobInfo:
    """What one job's runs are named and tagged with."""

    suite: str
    dataset: str
    label: str
    """Parent run name: ``<dataset>/search``, ``<dataset>/default`` or
    ``<dataset>/<reference pipeline>`` (:func:`~mmbench.tracking.naming.job_run_name`)."""
    kind: str
    """Parent run kind: ``study`` (the suite's own pipeline or search) or ``reference``."""
    seed: int
    fingerprint: str
    source: str
    device: str
    card: dict[str, str] | None = None
    """The dataset card (homepage, license, citation, task), tagged ``mmbench.dataset.<field>``."""

    def tags(self, kind: str) -> dict[str, Any]:
        """Tags every run of the job carries, so the MLflow UI can filter by any of them."""
        from mmbench import __version__

        return {
            "mmbench.suite": self.suite,
            "mmbench.dataset": self.dataset,
            "mmbench.kind": kind,
            "mmbench.version": __version__,
            "mmbench.git_commit": git_commit() or "unknown",
            "mmbench.seed": self.seed,
            "mmbench.device": self.device,
            "mmbench.fingerprint": self.fingerprint,
            "mmbench.source": self.source,
            **{f"mmbench.dataset.{k}": v for k, v in (self.card or {}).items() if v},
        }


def start_job(
    info: JobInfo, *, uri: str | None, warn: Warn, study: Any = None
) -> JobTracker | None:
    """Open the experiment ``mmbench/<suite>`` and the job's parent run; None (warned) on failure.

    A search job passes its Optuna ``study``: the study keeps its parent run's id, so a resumed
    study, and every worker on it, logs under one parent run (the first worker to record its
    run id wins; the others delete the run they opened and join that one).
    """
    try:
        tracker = Tracker(uri, f"mmbench/{info.suite}")
        return JobTracker(tracker, info, warn, parent_id=study_parent(tracker, info, study))
    except MMBenchError as exc:
        warn(f"MLflow unavailable, running untracked (results are still written): {exc}")
        return None


PARENT_CLAIM = "mlflow_parent_run"
"""Study attribute (one per tracking store) holding the study's parent MLflow run id."""


def study_parent(tracker: Tracker, info: JobInfo, study: Any) -> str | None:
    """The study's parent run (reopened), a new one it now records, or None without a study."""
    from mmbench.search.coordination import claim, claimed

    if study is None:
        return None
    key = f"{PARENT_CLAIM}.{zlib.crc32(tracker.uri.encode()):08x}"  # one per tracking store
    known = claimed(study, key)
    if known is None:
        tags = {**info.tags(info.kind), "mmbench.study": study.study_name}
        mine = tracker.start_run(info.label, tags)
        if claim(study, key, mine):
            return mine
        tracker.timed(tracker.client.delete_run, mine)
        known = claimed(study, key)
    tracker.timed(tracker.client.update_run, known, status="RUNNING")
    return str(known)


class JobTracker:
    """The parent run of one job and everything logged under it."""

    def __init__(
        self, tracker: Tracker, info: JobInfo, warn: Warn, parent_id: str | None = None
    ) -> None:
        self.tracker, self.info, self.warn = tracker, info, warn
        for key, value in EXPERIMENT_KIND.items():  # open on the runs, not on GenAI traces
            tracker.timed(tracker.client.set_experiment_tag, tracker.experiment_id, key, value)
        self.parent_id = parent_id or tracker.start_run(info.label, info.tags(info.kind))

    @property
    def seconds(self) -> float:
        """Time spent talking to MLflow so far (reported in a search's result)."""
        return self.tracker.seconds

    def trial_hooks(self, primary: str | None = None) -> TrialHooks:
        """Hooks that mirror each Optuna trial as a child run of the parent; ``primary`` is the
        objective's metric (a pruned trial's score is its last reported fold's, as in Optuna)."""
        from mmbench.search.settings import TrialHooks
        from mmbench.tracking.study import StudyRecorder

        tags = self.info.tags("trial")
        rec = StudyRecorder(self.tracker, self.parent_id, tags, self.warn, primary=primary)
        return TrialHooks(start=rec.start, epoch=rec.epoch, end=rec.end, abandoned=rec.abandoned)

    def record_result(
        self,
        result: RunResult,
        cv: CVResult | None = None,
        *,
        table: MultiModalTable | None = None,
        modalities: Modalities | None = None,
        model_path: Path | None = None,
        study: Any = None,
        register: bool = False,
    ) -> TrackingIds | None:
        """Log the chosen pipeline; its ids for :func:`mmbench.results.attach_tracking`, or None.

        Without a search this is the parent run itself; after a search it is a child run tagged
        ``mmbench.kind=best`` beside the trial runs. Everything logged comes from the result
        file, so that ``mmbench track`` can log it later; the CV's pictures and the model need
        ``cv``, ``table`` and ``model_path``. With ``register`` the model is the job's final
        model (the ensemble, else the best or default pipeline) and is registered as the
        suite's and dataset's model (:func:`mmbench.tracking.serving.registered_name`).
        """
        try:
            run_id = self._log_result(result, cv, table, study)
            if model_path is not None and modalities is not None and table is not None:
                self._log_model(run_id, model_path, modalities, table, result if register else None)
            if result.search is not None:
                self.tracker.end_run(run_id, "FINISHED")
        except MMBenchError as exc:
            self.warn(f"MLflow logging failed (result file kept): {exc}")
            return None
        return TrackingIds(
            run_id=run_id,
            parent_run_id=self.parent_id,
            experiment_id=self.tracker.experiment_id,
            tracking_uri=self.tracker.uri,
        )

    def record_ablation(self, report: AblationReport, files: Mapping[str, Path]) -> dict[str, str]:
        """One child run per ablation subset, the report ``files`` as artifacts of the parent."""
        from mmbench.tracking.ablation import track_ablation

        try:
            tags = self.info.tags("ablation")
            return track_ablation(self.tracker, self.parent_id, report, tags, files)
        except MMBenchError as exc:
            self.warn(f"MLflow logging of ablations failed (files kept): {exc}")
            return {}

    def close(self, status: str) -> None:
        """End the parent run (``FINISHED`` or ``FAILED``)."""
        try:
            self.tracker.end_run(self.parent_id, status)
        except MMBenchError as exc:
            self.warn(f"MLflow: {exc}")

    def _log_result(
        self, result: RunResult, cv: CVResult | None, table: MultiModalTable | None, study: Any
    ) -> str:
        """Params, per-fold, mean and per-class metrics, test metrics, pictures and what the
        pipeline is (run name, tags, description); returns the run id."""
        from mmbench.results.identity import identify

        tracker = self.tracker
        ident = identify(result)
        if result.search is None:
            run_id = self.parent_id
            kind = "best" if result.pipeline_name == "default" else "reference"
            tracker.log(
                run_id, tags={"mmbench.kind": kind, "mmbench.pipeline": result.pipeline_name}
            )
            name = result_run_name(f"{self.info.dataset}/{result.pipeline_name}", ident.short)
        else:  # after a search: the best trial ("best") or the final ensemble ("ensemble")
            kind = "ensemble" if result.ensemble is not None else "best"
            self._delete_children(kind)  # a resumed or finalized-again study: one of each
            tags = {**self.info.tags(kind), **best_trial_tags(study)} if kind == "best" else {}
            name = result_run_name(f"{self.info.dataset}/{kind}", ident.short)
            run_id = tracker.start_run(name, tags or self.info.tags(kind), self.parent_id)
        tracker.timed(tracker.client.update_run, run_id, name=name)
        metrics = {**cv_metrics(result.metrics), "duration_s": result.durations["wall"]}
        metrics.update({f"test.{k}": v for k, v in (result.test_metrics or {}).items()})
        metrics.update(class_metrics(result))
        tracker.log(
            run_id,
            params={**run_params(result.pipeline), **protocol_params(result)},
            metrics=metrics,
            steps=fold_steps([f.metrics for f in result.folds if f.error is None]),
            tags=identity_tags(ident),
        )
        if cv is not None and table is not None:
            with tempfile.TemporaryDirectory() as tmp:
                for path in pictures(cv, table, study, Path(tmp)):
                    tracker.log_artifact(run_id, path, "plots")
        self._link_parent(run_id, result, study, ident)
        if result.budget is not None:
            budget = result.budget
            tracker.log(
                run_id,
                metrics={
                    "budget.wall_s": budget.wall_s,
                    "budget.trials_run": budget.trials_run,
                    "budget.ablation_s": budget.ablation_s or math.nan,  # NaN: not logged
                },
                tags={"mmbench.budget.timeout_s": budget.timeout_s},
            )
        return str(run_id)

    def _delete_children(self, kind: str) -> None:
        """Delete earlier child runs of ``kind`` under the parent run."""
        query = f"tags.`mlflow.parentRunId` = '{self.parent_id}' and tags.`mmbench.kind` = '{kind}'"
        runs = self.tracker.timed(
            self.tracker.client.search_runs, [self.tracker.experiment_id], filter_string=query
        )
        for run in runs:
            self.tracker.timed(self.tracker.client.delete_run, run.info.run_id)

    def _link_parent(self, run_id: str, result: RunResult, study: Any, ident: Any) -> None:
        """After a search, the parent run points at the ensemble or best run and, for the
        best, summarizes its study and is named after it (``<dataset>/search: best ...``)."""
        tracker = self.tracker
        if result.ensemble is not None:
            members = ", ".join(
                f"trial {m.trial} × {m.weight:.2f}" for m in result.ensemble.members
            )
            tracker.log(run_id, tags={"mmbench.ensemble.members": members})
            tracker.log(self.parent_id, tags={"mmbench.ensemble_run_id": run_id})
        elif result.search is not None:
            best = {"mmbench.best_run_id": run_id, "mmbench.best.pipeline": ident.summary[:5000]}
            tracker.log(self.parent_id, metrics=cv_metrics(result.metrics), tags=best)
            log_search_summary(tracker, self.parent_id, result.search, study, self.info.dataset)
            name = result_run_name(self.info.label, f"best {ident.short}")
            tracker.timed(tracker.client.update_run, self.parent_id, name=name)

    def _log_model(
        self,
        run_id: str,
        model_path: Path,
        modalities: Modalities,
        table: MultiModalTable,
        final: RunResult | None,
    ) -> None:
        """The saved model as a pyfunc model; the ``final`` result's model is also registered,
        its version tagged with the held-out metrics. A failure warns; the file is kept."""
        from mmbench.results import SCHEMA_VERSION
        from mmbench.tracking.serving import log_pyfunc, registered_name, tag_version

        registered = registered_name(final.suite, final.dataset.name) if final else None
        try:
            name = model_name(self.info.dataset, model_path.stem)
            version = self.tracker.timed(
                log_pyfunc, self.tracker.uri, run_id, model_path, modalities, table,
                name=name, registered=registered,
            )  # fmt: skip
            if final is not None and registered is not None and version is not None:
                tags: dict[str, Any] = {
                    f"test.{k}": v for k, v in (final.test_metrics or {}).items()
                }
                tags.update(
                    {"mmbench.pipeline": final.pipeline_name, "mmbench.schema": SCHEMA_VERSION}
                )
                self.tracker.timed(tag_version, self.tracker.uri, registered, version, tags)
                self.tracker.log(
                    run_id, tags={"mmbench.registered_model": f"{registered}/{version}"}
                )
        except Exception as exc:  # MLflow raises many types; the model file is what counts
            self.warn(f"MLflow model logging failed ({exc}); the model is saved at {model_path}")


def identity_tags(ident: Any) -> dict[str, str]:
    """What the pipeline is, as tags (filterable) and as the run's description."""
    tags = {
        "mmbench.pipeline.description": ident.summary,
        "mmbench.pipeline.encoders": ident.encoders,
        "mmbench.pipeline.head": ident.head,
    }
    if ident.members:
        tags["mmbench.pipeline.members"] = ident.members
    if ident.caveats:
        tags["mmbench.caveats"] = "; ".join(ident.caveats)
    note = [f"**{ident.summary}**"] + [f"⚠ {c}" for c in ident.caveats]
    tags["mlflow.note.content"] = "\n\n".join(note)
    return {k: v[:5000] for k, v in tags.items() if v}


def class_metrics(result: RunResult) -> dict[str, float]:
    """``class.<name>.precision|recall|f1|support`` from the result's diagnostics."""
    from mmbench.tracking.naming import metric_key

    diag = result.diagnostics
    if diag is None or diag.per_class is None:
        return {}
    out: dict[str, float] = {}
    for name, m in diag.per_class.items():
        for field in ("precision", "recall", "f1", "support"):
            out[metric_key(f"class.{name}.{field}")] = float(getattr(m, field))
    return out


def model_name(dataset: str, pipeline: str) -> str:
    """``<dataset>-<pipeline>``: what a logged model is called, so models of a suite differ."""
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{dataset}-{pipeline}")


def protocol_params(result: RunResult) -> dict[str, Any]:
    """The evaluation protocol as run params, so runs of different protocols are not compared."""
    return {
        "protocol.folds": result.protocol.folds,
        "protocol.repeats": result.protocol.repeats,
        "protocol.primary_metric": result.protocol.primary_metric,
        "seed": result.seed,
    }


def pictures(cv: CVResult, table: MultiModalTable, study: Any, directory: Path) -> list[Path]:
    """Confusion matrix and ROC/PR curves of the out-of-fold predictions; Optuna plots if any."""
    from mmbench.results.build import oof_average
    from mmbench.tracking import pictures as plots

    proba, mask = oof_average(cv.oof)
    y, classes = table.labels[mask], table.classes
    out = [
        plots.confusion_matrix_png(y, proba[mask], classes, directory / "confusion_matrix.png"),
        plots.roc_pr_png(y, proba[mask], classes, directory / "roc_pr_curves.png"),
    ]
    if study is not None:
        from mmbench.tracking.naming import mlflow_param

        out += plots.optuna_pngs(study, directory, rename=mlflow_param)
    return out

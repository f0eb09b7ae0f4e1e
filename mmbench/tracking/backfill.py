"""``mmbench track SUITE``: log to MLflow afterwards what a run could not (a tracking server
that was down, ``--no-track``), from the result files and the Optuna studies.

Idempotent: a result file whose run exists at the tracking URI is skipped, a trial whose run
has ended is left as it is, a trial run left RUNNING (the server died mid-trial) is completed,
and a search's parent run is the one its study recorded for this tracking store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmbench.errors import MMBenchError
from mmbench.results import ResultLayout, RunResult, attach_tracking, read_result
from mmbench.tracking.client import Tracker
from mmbench.tracking.job import JobInfo, JobTracker, Warn, study_parent
from mmbench.tracking.study import StudyRecorder


@dataclass
class BackfillReport:
    results: list[str] = field(default_factory=list)
    """Result files logged now."""
    trials: int = 0
    """Trial runs created or completed now."""
    already: int = 0
    """Result files already tracked at this URI."""
    problems: list[str] = field(default_factory=list)


def backfill(
    layout: ResultLayout, *, uri: str | None, storage: str | None, warn: Warn
) -> BackfillReport:
    """Log every result file of ``layout`` (and its study's trials) that is not in MLflow yet."""
    tracker = Tracker(uri, f"mmbench/{layout.suite}")
    report = BackfillReport()
    for path in layout.result_files():
        try:
            result = read_result(path)
            if _tracked(tracker, result):
                report.already += 1
                continue
            report.trials += _backfill_one(tracker, path, result, storage, warn)
            report.results.append(str(path))
        except MMBenchError as exc:
            report.problems.append(f"{path}: {exc}")
            if tracker.failed is not None:  # the server is gone: the rest would fail too
                break
    return report


def _backfill_one(
    tracker: Tracker, path: Path, result: RunResult, storage: str | None, warn: Warn
) -> int:
    """Parent run, missing trial runs and the result's run; the file gets the run ids."""
    info = job_info(result)
    study = _study(result, storage) if result.search is not None else None
    job = JobTracker(tracker, info, warn, parent_id=study_parent(tracker, info, study))
    trials = 0
    if study is not None:
        from mmbench.search.coordination import counts

        recorder = StudyRecorder(tracker, job.parent_id, info.tags("trial"), warn)
        for t in study.get_trials(deepcopy=False):
            if counts(t) and t.state.name != "RUNNING" and "pipeline" in t.user_attrs:
                trials += recorder.backfill(study, t)
    ids = job.record_result(result)
    if ids is None:
        raise MMBenchError("MLflow logging failed; run `mmbench track` again")
    attach_tracking(path, ids)
    tracker.end_run(job.parent_id, "FINISHED")
    return trials


def job_info(result: RunResult) -> JobInfo:
    """The job a result file came from, as :class:`JobInfo` names and tags its runs."""
    from mmbench.tracking.naming import job_run_name

    dataset = result.dataset.name
    own = result.pipeline_name in ("search", "ensemble", "default")
    return JobInfo(
        suite=result.suite,
        dataset=dataset,
        label=job_run_name(dataset, result.pipeline_name, searches=result.search is not None),
        kind="study" if own else "reference",
        seed=result.seed,
        fingerprint=result.dataset.fingerprint,
        source=result.dataset.source,
        device=str(result.provenance.hardware.get("device", "cpu")),
        card=result.dataset.card,
    )


def _tracked(tracker: Tracker, result: RunResult) -> bool:
    ids = result.tracking
    if ids is None or ids.tracking_uri != tracker.uri:
        return False
    runs = tracker.timed(
        tracker.client.search_runs,
        [tracker.experiment_id],
        filter_string=f"attributes.run_id = '{ids.run_id}'",
    )
    return bool(runs)


def _study(result: RunResult, storage: str | None) -> Any:
    import optuna

    assert result.search is not None
    url = storage or result.search.storage
    if "***" in url:
        raise MMBenchError(f"the study's storage has a password: pass --storage ({url})")
    try:
        return optuna.load_study(study_name=result.search.study, storage=url)
    except Exception as exc:  # KeyError (no such study), database errors
        raise MMBenchError(f"cannot load study {result.search.study!r} from {url}: {exc}") from None

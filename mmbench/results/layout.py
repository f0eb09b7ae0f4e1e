"""The one place that knows where every file of a suite lives, and how result files are read
and written.

:class:`ResultLayout` is the layout of a suite's files under a results directory (results,
ablations, models, the Optuna database, the leaderboard); every reader and writer asks it for
paths instead of joining them itself. A job's result file is written once, complete, before any
tracking call; :func:`attach_tracking` then adds the MLflow run ids as the one later step.
:func:`hold_results` keeps two runs from writing one results folder at once.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from mmbench._io import write_json_atomic
from mmbench.errors import MMBenchError
from mmbench.results.schema import (
    ABLATION_READABLE_VERSIONS,
    READABLE_VERSIONS,
    AblationReport,
    RunResult,
    TrackingIds,
)

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class ResultLayout:
    """Where the files of one suite live under a results directory::

    <results>/<suite>/<dataset>/<pipeline>.json      one result file per job
    <results>/<suite>/<dataset>/ablation/<pipeline>/ablation.*  its ablation (csv, json, md, png)
    <results>/<suite>/<dataset>/models/<pipeline>.joblib   the refitted pipeline
    <results>/<suite>/<dataset>/runs/trials/<study>/trial-NNNNN.joblib   trials' CV results
    <results>/<suite>/optuna.db                      the suite's Optuna studies
    <results>/<suite>/LEADERBOARD.md                 generated from the result files
    <results>/<suite>/report.html                    the HTML report, from the same files
    """

    results_dir: Path
    suite: str

    @property
    def root(self) -> Path:
        return Path(self.results_dir) / self.suite

    def result_file(self, dataset: str, pipeline: str) -> Path:
        return self.root / dataset / f"{pipeline}.json"

    def ablation_dir(self, dataset: str, pipeline: str | None = None) -> Path:
        """``<dataset>/ablation/<pipeline>/``: one set per ablated pipeline (without a
        pipeline: the single folder of files written before ablations were keyed)."""
        base = self.root / dataset / "ablation"
        return base if pipeline is None else base / pipeline

    def trials_dir(self, dataset: str) -> Path:
        """Each completed trial's CV result, kept for the process that finalizes the study."""
        return self.root / dataset / "runs" / "trials"

    def model_file(self, dataset: str, pipeline: str) -> Path:
        return self.root / dataset / "models" / f"{pipeline}.joblib"

    @property
    def study_db(self) -> Path:
        return self.root / "optuna.db"

    def study_storage(self) -> str:
        """SQLite URL of :attr:`study_db` (absolute, so it survives a ``cd``); creates its folder."""
        path = self.study_db.resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"

    @property
    def leaderboard_file(self) -> Path:
        return self.root / "LEADERBOARD.md"

    @property
    def run_lock(self) -> Path:
        """Held by the process that runs or finalizes the suite here (:func:`hold_results`)."""
        return self.root / "run.lock"

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        """This process alone runs the suite in this folder while the block runs."""
        return hold_results(self.run_lock)

    @property
    def report_file(self) -> Path:
        return self.root / "report.html"

    def result_files(self) -> list[Path]:
        """Every result file, sorted by dataset and pipeline (temporary dot-files skipped)."""
        return sorted(p for p in self.root.glob("*/*.json") if not p.name.startswith("."))

    def write(self, result: RunResult) -> Path:
        """Atomically write ``result`` to its canonical path; returns the path."""
        path = self.result_file(result.dataset.name, result.pipeline_name)
        write_json_atomic(path, result.model_dump(mode="json"))
        return path

    def load(self) -> list[RunResult]:
        return [read_result(p) for p in self.result_files()]

    def load_readable(self) -> tuple[list[RunResult], list[str]]:
        """Every result file that can be read, and one problem line per file that cannot
        (so one broken file does not hide the others)."""
        results, problems = [], []
        for path in self.result_files():
            try:
                results.append(read_result(path))
            except MMBenchError as exc:
                problems.append(str(exc))
        return results, problems


def write_result(result: RunResult, results_dir: Path) -> Path:
    """Write ``result`` where :class:`ResultLayout` puts it under ``results_dir``."""
    return ResultLayout(results_dir, result.suite).write(result)


def load_results(results_dir: Path, suite: str) -> list[RunResult]:
    """Every result file of ``suite`` under ``results_dir``, sorted by dataset and pipeline."""
    return ResultLayout(results_dir, suite).load()


def attach_tracking(path: Path, ids: TrackingIds) -> RunResult:
    """Add the MLflow ids to a written result file: the one step after tracking that edits it."""
    result = read_result(path)
    result.tracking = ids
    write_json_atomic(path, result.model_dump(mode="json"))
    return result


def read_result(path: Path) -> RunResult:
    return _read_versioned(path, RunResult, "result", READABLE_VERSIONS)


def read_ablation(path: Path) -> AblationReport:
    """An ``ablation.json`` written by :func:`mmbench.ablation.write_report`."""
    return _read_versioned(path, AblationReport, "ablation report", ABLATION_READABLE_VERSIONS)


def _read_versioned(path: Path, model: type[M], what: str, versions: tuple[int, ...]) -> M:
    """Load a JSON file of ``model``; a wrong schema version or shape names the file."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise MMBenchError(f"{path}: cannot read {what} file: {exc}") from None
    found = data.get("schema_version") if isinstance(data, dict) else None
    if found not in versions:
        readable = " or ".join(str(v) for v in versions)
        raise MMBenchError(
            f"{path}: {what} schema version {found!r}, this mmbench reads {readable}"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise MMBenchError(f"{path}: invalid {what} file: {exc}") from None


_HELD: set[Path] = set()
"""Run locks this process holds (``run --workers`` finalizes inside its own run)."""


@contextlib.contextmanager
def hold_results(lock_path: Path) -> Iterator[None]:
    """Hold the suite's run lock, or fail naming the process that holds it.

    Two processes running one suite into one results folder would each open a study of their
    own, search the same trials and overwrite each other's result files; workers that share a
    study (``run --workers``, ``mmbench worker``) coordinate through the storage instead and
    take no lock. The lock is an OS file lock (``filelock``), released by the kernel when its
    process dies, so a crashed run never leaves a stale lock; the holder's pid, host and
    command are written beside it (``run.lock.owner``) for the message of whoever finds it
    held.
    """
    from filelock import FileLock, Timeout

    lock_path = Path(lock_path).resolve()
    if lock_path in _HELD:
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise MMBenchError(_busy_message(lock_path)) from None
    owner = _owner_file(lock_path)
    _HELD.add(lock_path)
    try:
        write_json_atomic(owner, _owner())
        yield
    finally:
        _HELD.discard(lock_path)
        owner.unlink(missing_ok=True)
        lock.release()


def _owner_file(lock_path: Path) -> Path:
    return lock_path.with_name(lock_path.name + ".owner")


def _owner() -> dict[str, Any]:
    import socket
    import sys

    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["mmbench", *sys.argv[1:]]),
    }


def _busy_message(lock_path: Path) -> str:
    """Who holds the lock (as it wrote beside it) and what to do instead."""
    try:
        owner = json.loads(_owner_file(lock_path).read_text())
        who = (
            f"pid {owner['pid']} on {owner['host']}, since {owner['started']}: `{owner['command']}`"
        )
    except (OSError, ValueError, KeyError):
        who = f"its pid and host are not in {_owner_file(lock_path)} yet"
    return (
        f"{lock_path.parent} is in use by another mmbench run ({who}). Two runs into one "
        "results folder would search the same trials twice and overwrite each other's result "
        "files: wait for it to finish (or stop it), or give this run another --results. To "
        "search a study with several processes, start them together with `mmbench run "
        "--workers N`, or as `mmbench worker` processes on a shared --storage"
    )

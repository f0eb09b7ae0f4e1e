"""Many workers on one Optuna study: created once, one shared budget, no repeated configuration,
finalized once.

The storage (a SQLite file, PostgreSQL, a journal file) is the only thing workers share, so
every agreement between them goes through it:

- **Creation** is ``create_study(load_if_exists=False)``: exactly one worker creates the study
  (and enqueues the portfolio, and writes the budget), every other one gets
  ``DuplicatedStudyError`` and loads it. Opening a fresh database retries, because Optuna
  creating its tables from several processes at once can fail in all but one of them.
- **The budget** (trials and the wall-clock deadline) is written into the study by its creator,
  so workers started later or elsewhere stop at the same point. A trial counts once it is
  running or has used budget (:func:`counts`); a trial that finds the budget already taken by
  trials numbered before it is a *surplus* trial: it ends at once, recorded but not counted.
- **Configurations** are compared by their sampled parameters: a trial that repeats one that ran
  (or is running on another worker) is recorded as a failed *duplicate* without any work.
- **Finalizing** (refit, ensemble, held-out scoring, result files) is claimed by inserting a
  study attribute under a unique key: the database lets exactly one insert succeed.
"""

from __future__ import annotations

import json
import os
import random
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BUDGET_ATTR = "mmbench.budget"
"""Study user attribute: ``{"n_trials": int, "deadline": epoch seconds or None}``."""
SKIP_ATTRS = ("duplicate_of", "surplus")
"""User attributes of trials that did no work and use no budget."""
MAX_CONSECUTIVE_DUPLICATES = 25
"""A worker whose sampler proposes only known configurations this many times in a row stops:
the search space is exhausted (or nearly so) for this sampler."""


def create_or_join(storage: Any, name: str, **create: Any) -> tuple[Any, bool]:
    """The study ``name``: created by this call (``True``) or loaded as another worker made it."""
    import optuna

    for attempt in range(4):
        try:
            return optuna.create_study(storage=storage, study_name=name, **create), True
        except optuna.exceptions.DuplicatedStudyError:
            kwargs = {k: v for k, v in create.items() if k in ("sampler", "pruner")}
            return optuna.load_study(study_name=name, storage=storage, **kwargs), False
        except optuna.exceptions.StorageInternalError:  # a concurrent first write: try again
            if attempt == 3:
                raise
            time.sleep(0.2 + random.random() * 0.3)
    raise AssertionError("unreachable")


def worker_seed(seed: int, worker: int | None) -> int:
    """The sampler seed of one worker: ``seed`` for a lone process (reproducible), else distinct
    per worker (by index, or by host and process id for a worker started on its own), so that
    workers do not propose the same configurations."""
    import socket

    if worker is None:
        return seed
    if worker < 0:
        worker = zlib.crc32(f"{socket.gethostname()}:{os.getpid()}".encode()) % 100_000
    return seed + 7919 * (worker + 1)


def write_budget(study: Any, n_trials: int, deadline_epoch: float | None) -> None:
    study.set_user_attr(BUDGET_ATTR, {"n_trials": n_trials, "deadline": deadline_epoch})


def read_budget(study: Any) -> dict[str, Any]:
    """The budget the study's creator wrote (empty for a study made by an older mmbench)."""
    return dict(study.user_attrs.get(BUDGET_ATTR) or {})


def counts(t: Any) -> bool:
    """Whether trial ``t`` holds part of the budget: running, or finished for a reason of its
    own. Trials interrupted (Ctrl-C, a dead worker), duplicates and surplus trials do not."""
    from optuna.trial import TrialState

    if any(k in t.user_attrs for k in SKIP_ATTRS):
        return False
    if t.state in (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return t.state == TrialState.FAIL and "error" in t.user_attrs


def budget_taken(study: Any, before: int | None = None) -> int:
    """Trials that hold budget (numbered below ``before`` when given)."""
    return sum(
        1
        for t in study.get_trials(deepcopy=False)
        if (before is None or t.number < before) and counts(t)
    )


def study_work(study: Any, since: float | None = None) -> dict[str, Any]:
    """What the whole study did, across workers, hosts and resumed sessions.

    ``trials``: trials that used budget (finished for a reason of their own); ``new_trials``:
    those of them that started at or after ``since`` (epoch seconds: this command's start);
    ``search_s``: seconds in which at least one trial ran (the union of the trials' intervals,
    so parallel workers are not added up and the gap before a ``--resume`` is not counted);
    ``trial_s``: the trials' seconds added up (worker-seconds).
    """
    from optuna.trial import TrialState

    intervals, trials, new = [], 0, 0
    for t in study.get_trials(deepcopy=False):
        if t.datetime_start is None:
            continue
        begin = t.datetime_start.timestamp()
        if t.state != TrialState.RUNNING and counts(t):
            trials += 1
            new += since is None or begin >= since
        if t.datetime_complete is not None:
            intervals.append((begin, t.datetime_complete.timestamp()))
    covered, trial_s, reach = 0.0, 0.0, -float("inf")
    for begin, end in sorted(intervals):
        trial_s += end - begin
        covered += max(0.0, end - max(begin, reach))
        reach = max(reach, end)
    return {"trials": trials, "new_trials": int(new), "search_s": covered, "trial_s": trial_s}


def config_key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def duplicate_of(study: Any, trial: Any) -> int | None:
    """The number of an earlier trial that ran (or runs) the same parameters as ``trial``."""
    key = config_key(trial.params)
    for t in study.get_trials(deepcopy=False):
        if t.number != trial.number and counts(t) and config_key(t.params) == key:
            return int(t.number)
    return None


def claim(study: Any, key: str, value: Any) -> bool:
    """Atomically record ``key`` in the study; True for exactly one caller per key.

    On a database the unique (study, key) index of Optuna's study attributes decides; on a
    journal file an exclusively created marker file does; an in-memory study is one process.
    """
    from optuna.storages import JournalStorage, RDBStorage

    storage = study._storage
    rdb = getattr(storage, "_backend", storage)  # under Optuna's in-process cache wrapper
    key = f"mmbench.claim.{key}"
    if isinstance(rdb, RDBStorage):
        return _insert_unique(rdb, study._study_id, key, value)
    journal = storage._backend if isinstance(storage, JournalStorage) else None
    path = getattr(journal, "_file_path", None)
    if path is not None:
        try:
            os.close(os.open(f"{path}.{study.study_name}.{key}", os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return False
    elif key in _system_attrs(study):
        return False
    study._storage.set_study_system_attr(study._study_id, key, value)
    return True


def claimed(study: Any, key: str) -> Any:
    """What the winner of :func:`claim` recorded under ``key`` (None if nobody claimed it)."""
    return _system_attrs(study).get(f"mmbench.claim.{key}")


def _system_attrs(study: Any) -> dict[str, Any]:
    return dict(study._storage.get_study_system_attrs(study._study_id))


def _insert_unique(storage: Any, study_id: int, key: str, value: Any) -> bool:
    from optuna.storages._rdb import models
    from sqlalchemy.exc import IntegrityError

    table = models.StudySystemAttributeModel.__table__
    row = {"study_id": study_id, "key": key, "value_json": json.dumps(value)}
    try:
        with storage.engine.begin() as conn:
            conn.execute(table.insert().values(**row))
    except IntegrityError:
        return False
    return True


def trial_cv_url(store: str | Path, study: str, number: int) -> str:
    """Where trial ``number``'s outputs live in a trial store (a folder or any fsspec URL)."""
    return f"{str(store).rstrip('/')}/{_safe(study)}/trial-{number:05d}.joblib"


def save_trial_cv(store: str | Path, study: str, number: int, cv: Any) -> None:
    """Keep a completed trial's outputs (out-of-fold probabilities, fold scores and seconds,
    its pipeline) where any finalizing process can read them: a local folder, or a URL
    (``s3://bucket/prefix``, any fsspec filesystem) when workers share no disk.

    Atomic and idempotent: the bytes go to a temporary name first and are then moved onto
    the final one (a whole object in one step on an object store, ``rename`` on a disk), so a
    reader never sees half a trial, and a retry rewrites the same bytes."""
    import io
    import uuid

    import fsspec
    import joblib

    buffer = io.BytesIO()
    joblib.dump(cv, buffer)
    fs, path = fsspec.core.url_to_fs(trial_cv_url(store, study, number))
    fs.makedirs(fs._parent(path), exist_ok=True)
    partial = f"{path}.partial-{uuid.uuid4().hex[:12]}"
    fs.pipe_file(partial, buffer.getvalue())
    fs.mv(partial, path)


@dataclass
class TrialReads:
    """What a trial store gave back for the trials asked for.

    "Not there" (a trial no process kept: an older mmbench, another store) is ``missing``; a
    file that is there but cannot be read (corrupt, foreign, no permission, the store
    unreachable) is ``unreadable``, never silently dropped: the finalizer counts it and
    refuses to build the final model without it.
    """

    url: str
    cvs: dict[int, Any] = field(default_factory=dict)
    missing: list[int] = field(default_factory=list)
    unreadable: dict[int, str] = field(default_factory=dict)
    """Trial number -> ``"<url>: <error>"``."""

    @property
    def shown_url(self) -> str:
        """The store's URL without its password ("" when there is no store)."""
        return redact_url(self.url) if self.url else ""


def redact_url(url: str | None) -> str:
    """A storage URL without its password, for messages and result files."""
    import re

    return re.sub(r"://([^:/@]+):[^@]+@", r"://\1:***@", url or "sqlite:///:memory:")


def load_trial_cvs(store: str | Path | None, study: str, numbers: list[int]) -> TrialReads:
    """The kept outputs of trials ``numbers`` from ``store``: read, missing or unreadable
    (why, naming the file with any password of the store's URL as ``***``)."""
    reads = TrialReads(url="" if store is None else str(store))
    if store is None or not numbers:
        reads.missing = list(numbers)
        return reads
    for n in numbers:
        url = trial_cv_url(store, study, n)
        try:
            reads.cvs[n] = _read_trial_cv(url)
        except FileNotFoundError:
            reads.missing.append(n)
        except Exception as exc:  # corrupt, foreign, permission, network: each is a loss
            reads.unreadable[n] = f"{redact_url(url)}: {type(exc).__name__}: {exc}"
    return reads


def _read_trial_cv(url: str) -> Any:
    """One kept trial's CV result; FileNotFoundError when it is not there, else why not."""
    import io

    import fsspec
    import joblib

    from mmbench.pipeline import CVResult

    fs, path = fsspec.core.url_to_fs(url)
    cv = joblib.load(io.BytesIO(fs.cat_file(path)))
    if not isinstance(cv, CVResult):
        raise TypeError(f"holds a {type(cv).__name__}, not a trial's CV result")
    return cv


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


class QuietSkips:
    """A filter for Optuna's two "Trial N failed" lines about a duplicate or surplus trial,
    which did no work (its reason is a user attribute of the trial), and about a trial
    interrupted by Ctrl-C, whose 40-line traceback would bury mmbench's own one-line message
    (the trial is marked ``interrupted`` and runs again on ``--resume``)."""

    def __init__(self) -> None:
        self.skipped: set[str] = set()

    def filter(self, record: Any) -> bool:
        text = record.getMessage()
        number = text.split(" ", 2)[1] if text.startswith("Trial ") else ""
        interrupted = record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt)
        if "_Skipped(" in text or interrupted or "error: KeyboardInterrupt()" in text:
            self.skipped.add(number)
            return False
        if number in self.skipped and "failed with value" in text:
            self.skipped.discard(number)
            return False
        return True


def worker_id() -> dict[str, Any]:
    """Which process runs a trial (a user attribute), so a resume can tell a dead one."""
    import os
    import socket

    return {"host": socket.gethostname(), "pid": os.getpid()}


def retry_dead_local_trials(study: Any) -> list[int]:
    """Fail the RUNNING trials whose process on this host is gone and queue each again.

    The heartbeat does the same for any worker, but only after its grace period; a process
    killed on this machine is known dead at once, so an immediate ``--resume`` retries its trial
    first (queued trials run before new ones) instead of leaving it RUNNING.
    """
    import os

    from optuna.trial import TrialState

    here = worker_id()["host"]
    retried = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker") or {}
        if worker.get("host") != here or worker.get("pid") == os.getpid():
            continue
        if _alive(int(worker["pid"])):
            continue
        study._storage.set_trial_user_attr(t._trial_id, "interrupted", "its worker process died")
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
        retried.append(t.number)
    return retried


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True

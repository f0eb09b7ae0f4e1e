"""Typed, versioned result files, and the one place that knows where every file lives.

Leaderboards and regression gates are built from these files only, never from memory. Every
file carries what is needed to reproduce it: mmbench version, git commit, package versions,
dataset revision and fingerprint, seed, protocol and hardware.

:class:`ResultLayout` is the layout of a suite's files under a results directory (results,
ablations, models, the Optuna database, the leaderboard); every reader and writer asks it for
paths instead of joining them itself. A job's result file is written once, complete, before any
tracking call; :func:`attach_tracking` then adds the MLflow run ids as the one later step.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

import mmbench
from mmbench._io import git_commit, write_json_atomic
from mmbench.config import PeerSpec, PipelineSpec
from mmbench.errors import MMBenchError
from mmbench.evaluation import OWN_THRESHOLD, DecisionName
from mmbench.suite import Protocol

SCHEMA_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
"""Version 2 added ``diagnostics`` and ``search.history``; version 3 added per-class metrics
(``diagnostics.per_class``), the ablation's time in ``budget`` and ``durations``, and fit and
predict seconds in ``durations`` (all optional); version 4 added ``search.trial_store``, the
count of folds whose metric is undefined (``metrics[name]["undefined"]``) and ``decision`` (the
rule the scores were counted with): older files read as they are, without them."""
ABLATION_SCHEMA_VERSION = 2
ABLATION_READABLE_VERSIONS = (1, 2)
"""Version 2 added ``pipeline_name`` (which pipeline was ablated) and ``skipped`` (subsets the
budget cut); version 1 reports read without them."""
SCORE_PACKAGES = (
    "numpy", "scipy", "pandas", "scikit-learn", "xgboost", "lightgbm", "torch", "torchvision",
    "timm", "pillow", "librosa", "soundfile", "sentence-transformers", "transformers",
    "tokenizers",
)  # fmt: skip
"""Packages whose version can move a score on the same data: the CI gate's baseline records
them and ``mmbench regress`` names a mismatch instead of reporting a regression."""
PACKAGES = (*SCORE_PACKAGES, "optuna", "mlflow", "datasets", "aeon")
"""What a result file records; ``aeon`` (the sensor extra: MiniRocket) only where installed,
and outside the gate's list, whose suite has no sensors."""
M = TypeVar("M", bound=BaseModel)
AblationKind = Literal["full", "leave-one-out", "single", "subset"]
MeanStd = dict[str, float]
"""``{"mean": ..., "std": ...}`` (robustness entries add ``drop`` and ``drop_std``)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Provenance(_Model):
    mmbench_version: str
    git_commit: str | None
    python: str
    packages: dict[str, str]
    hardware: dict[str, Any]
    created_at: str


class DatasetInfo(_Model):
    name: str
    source: str
    revision: str | None = None
    fingerprint: str
    n_rows: int
    n_classes: int
    classes: list[str]
    modalities: list[str]
    recipe: dict[str, Any] | None = None
    groups: int | None = None
    """Distinct values of ``protocol.group_column`` (grouped folds); None: rows are independent."""
    card: dict[str, str] | None = None
    """The suite's dataset card: homepage, license, citation, task, notes."""
    subsample: dict[str, Any] | None = None
    """Set when the job used a stratified subsample of the training rows (``n_rows`` of them):
    ``max_rows`` (the suite asked for it), or ``rows``, ``of`` and ``reason`` (the time budget
    fitted no candidate on every row)."""


class DecisionRecord(_Model):
    """The decision rule a result's label metrics were counted with, in CV and on held-out rows
    (:func:`mmbench.evaluation.decide`): the same rule for every row of a leaderboard."""

    rule: DecisionName
    weights: list[float] | None = None
    """The tuned per-class weights (on every out-of-fold row) the model applies to new rows;
    each fold's CV score used weights tuned on the other folds' rows."""
    gain: float | None = None
    """Cross-fitted gain in the primary metric over the candidate's own decisions that adopted
    (or refused) the tuned weights; None when the metric scores probabilities."""

    @classmethod
    def of(cls, rule: Any) -> DecisionRecord:
        """The record of a :class:`mmbench.evaluation.DecisionRule`."""
        weights = None if rule.weights is None else [float(w) for w in rule.weights]
        gain = round(float(rule.gain), 6) if math.isfinite(rule.gain) else None
        return cls(rule=rule.name, weights=weights, gain=gain)

    def short(self) -> str:
        """A few words for a table cell: ``arg-max``, ``tuned 1.00/0.45``, ``own threshold``."""
        if self.weights is not None:
            return "tuned " + "/".join(f"{w:.2f}" for w in self.weights)
        return "own threshold" if self.rule == OWN_THRESHOLD else self.rule


class FoldRecord(_Model):
    key: str
    metrics: dict[str, float]
    seconds: float
    error: str | None = None


class TrialPoint(_Model):
    """One trial of a search, for its history: what it was, how it ended, what it scored."""

    number: int
    state: str
    value: float | None
    """Optuna's value (a pruned trial's is its last reported fold's score; none when declined)."""
    fusion: str | None = None
    seconds: float | None = None
    fidelity: str | None = None
    """The most it was evaluated on: "1,500 rows, 1 fold" (the search's rung), "3 of 5 folds"."""
    outcome: str | None = None
    """Why it ended, in words: which rule pruned it, the deadline, the budget check."""
    rung_score: float | None = None
    """Its score on the rung (:mod:`mmbench.search.fidelity`), when the study used one."""


class TrialStoreReads(_Model):
    """The trials the finalizer read back from the trial store (those no process of this
    command kept in memory): how many were read, which were not there, which were there but
    unreadable (schema 4). An unreadable trial the final model would lack fails the final
    phase; one listed here was recovered (the best trial, evaluated again)."""

    url: str
    """The trial store (a folder or an fsspec URL, any password redacted)."""
    read: int
    missing: list[int] = Field(default_factory=list)
    """Completed trials with no kept outputs: left out of the ensemble's candidates."""
    unreadable: list[int] = Field(default_factory=list)


class SearchSummary(_Model):
    """How the chosen pipeline was found: the Optuna study and where the time went."""

    study: str
    storage: str
    """Storage URL with any password redacted."""
    n_trials: int
    new_trials: int
    states: dict[str, int]
    best_trial: int | None
    seconds: float
    optuna_seconds: float
    tracking_seconds: float
    history: list[TrialPoint] = Field(default_factory=list)
    """Every trial of the study in order (schema 2; empty in older files)."""
    trial_store: TrialStoreReads | None = None
    """What was read back from the trial store; None when every trial was in memory."""


class BudgetSummary(_Model):
    """The job's wall-clock contract: what it was given and what it used."""

    timeout_s: float | None
    """The dataset's ``budget.timeout_s``: search, final model, test scoring and ablation."""
    wall_s: float
    """Seconds from the job's start (the dataset's loading, for its first job) to the end of
    its last step (the ablation when there is one; before writing and tracking)."""
    search_s: float
    """From the job's start (loading included for a dataset's first job) to the search's end;
    or, when longer, the time in which any worker ran a trial of the study (workers, resumed
    sessions: a parent that only finalizes)."""
    final_s: float
    """Refitting the final model(s) and scoring the held-out rows."""
    trials_run: int
    """Trials of the study that used budget, whichever worker or session ran them."""
    trials_cut: int
    """Trials stopped or declined because of the deadline (recorded with their reason)."""
    trial_s: float | None = None
    """The trials' seconds added up over workers (``search_s`` is the span they covered)."""
    ablation_s: float | None = None
    """Seconds the modality ablation took (schema 3; None: no ablation or an older file)."""
    ablation_reserved_s: float | None = None
    """Seconds of ``timeout_s`` the search left for the ablation (``ablation.budget_share``)."""
    ablation_skipped: int = 0
    """Ablation subsets the deadline cut or declined."""


class EnsembleMember(_Model):
    trial: int
    weight: float
    pipeline: PipelineSpec
    fit: Literal["folds", "refit"]
    """Its CV's fold models averaged, or one refit on all training rows (as fitted)."""


class EnsembleSummary(_Model):
    """Greedy ensemble selection over the search's trials (see :mod:`mmbench.final.selection`)."""

    members: list[EnsembleMember]
    oof_score: float
    """The blend's primary metric on the out-of-fold rows it was selected on (optimistic)."""
    best_single_oof_score: float
    candidates: int
    decision_weights: list[float] | None = None
    """Per-class decision weights of the final model's combiner (the blend's or the stacker's),
    tuned on that combiner's out-of-fold predictions (the result's ``decision``)."""
    dropped: list[int]
    """Members selected but not refitted because the budget ran out (weights renormalized)."""
    final_model: str
    """What was fitted, member by member (:meth:`mmbench.final.FinalModel.describe`)."""
    combiner: Literal["blend", "stack"] = "blend"
    """How the members' probabilities are combined: the greedy blend's weights, or a stacked
    logistic regression, whichever scored better nested in the folds (:attr:`nested`)."""
    nested: dict[str, float] = Field(default_factory=dict)
    """The blend's and the stacker's primary metric, each on folds its combination (members,
    stacker inputs and fit, decision rule) was not chosen on, over the folds where the metric is
    defined for both; ``undefined_folds`` counts the others (a mean that is undefined on every
    fold is absent). The candidate trials they combine were still searched on all folds, so
    neither is free of that optimism."""


class Curve(_Model):
    """A one-vs-rest curve, thinned to at most a few dozen points, and the area under it."""

    x: list[float]
    y: list[float]
    area: float


class ClassMetrics(_Model):
    """One class's out-of-fold precision, recall, F1 and support (rows of that class)."""

    precision: float
    recall: float
    f1: float
    support: int


class Diagnostics(_Model):
    """Out-of-fold confusion matrix and one-vs-rest ROC and precision-recall curves, so a report
    can draw them from the result file alone (schema 2)."""

    classes: list[str]
    confusion: list[list[int]]
    """``confusion[true][predicted]`` (arg-max decision), classes in :attr:`classes` order."""
    roc: dict[str, Curve]
    """Class -> false-positive rate (x) vs true-positive rate (y), ROC-AUC as area."""
    pr: dict[str, Curve]
    """Class -> recall (x) vs precision (y), average precision as area."""
    per_class: dict[str, ClassMetrics] | None = None
    """Class -> precision, recall, F1 and support of the arg-max decision (schema 3)."""

    def normalized_confusion(self) -> list[list[float]]:
        """Each true class's row divided by its support: the share predicted as each class."""
        return [[c / (sum(row) or 1) for c in row] for row in self.confusion]


class TrackingIds(_Model):
    """Where the job's runs are in MLflow; added by :func:`attach_tracking` after the write."""

    run_id: str
    parent_run_id: str
    experiment_id: str
    tracking_uri: str


# --------------------------------------------------------------------------- ablation report


class AblationRow(_Model):
    """One subset of modalities, cross-validated on the shared folds."""

    modalities: tuple[str, ...]
    kind: AblationKind
    metrics: dict[str, MeanStd]
    folds: list[dict[str, float]]
    """Per-fold metrics, aligned with :attr:`AblationReport.fold_keys`; ``{}`` for a failed fold."""
    failures: list[str] = Field(default_factory=list)
    seconds: float = 0.0
    cache: dict[str, float] = Field(default_factory=dict)

    @property
    def label(self) -> str:
        return "+".join(self.modalities)

    def fold_scores(self, metric: str) -> list[float]:
        return [f.get(metric, float("nan")) for f in self.folds]


class AblationReport(_Model):
    """Subset scores, Shapley values and test-time robustness of one pipeline on one dataset.

    Computed by :func:`mmbench.ablation.run_ablation`; serialized as ``ablation.json`` beside the
    result file (read it back with :func:`read_ablation`).
    """

    schema_version: int = ABLATION_SCHEMA_VERSION
    dataset: str
    primary: str
    higher_is_better: bool
    modalities: list[str]
    fold_keys: list[str]
    chance: list[float]
    """Per-fold chance level of the primary metric (the value of the empty subset)."""
    rows: list[AblationRow]
    shapley: dict[str, MeanStd] | None
    """Modality -> mean/std over folds; None when there were too many modalities for all subsets."""
    shapley_folds: dict[str, list[float]] | None
    """Modality -> Shapley value in each fold (aligned with :attr:`fold_keys`)."""
    leave_one_out: dict[str, MeanStd]
    """Modality -> mean/std over folds of the primary-metric drop when it is left out of training."""
    robustness: dict[str, MeanStd]
    """Modality removed at test time -> mean/std of the primary metric and of its drop vs full."""
    pipeline: PipelineSpec
    """The pipeline that was ablated."""
    pipeline_name: str | None = None
    """The result file's pipeline this ablates (``default``, ``search``...; schema 2)."""
    skipped: list[str] = Field(default_factory=list)
    """Subsets not run because the job's time budget ran out (schema 2)."""

    def row(self, modalities: Sequence[str]) -> AblationRow:
        wanted = set(modalities)
        for r in self.rows:
            if set(r.modalities) == wanted:
                return r
        raise KeyError(f"no ablation row for modalities {sorted(wanted)}")

    @property
    def full(self) -> AblationRow:
        return self.row(self.modalities)

    def ranking(self) -> list[str]:
        """Modalities from most to least helpful: by Shapley value, else by leave-one-out drop."""
        sign = 1.0 if self.higher_is_better else -1.0
        if self.shapley:
            key = {m: sign * v["mean"] for m, v in self.shapley.items()}
        else:
            key = {m: v["mean"] for m, v in self.leave_one_out.items()}
        return sorted(key, key=lambda m: -key[m] if math.isfinite(key[m]) else math.inf)


class AblationSummary(_Model):
    """What a result file keeps of its ablation: attribution, ranking and the report's files."""

    shapley: dict[str, MeanStd] | None
    ranking: list[str]
    robustness: dict[str, MeanStd]
    files: dict[str, str]

    @classmethod
    def of(cls, report: AblationReport, files: Mapping[str, Path]) -> AblationSummary:
        return cls(
            shapley=report.shapley,
            ranking=report.ranking(),
            robustness=report.robustness,
            files={k: str(v) for k, v in files.items()},
        )


# --------------------------------------------------------------------------- result file


class RunResult(_Model):
    """Everything a leaderboard or a regression gate needs about one pipeline on one dataset."""

    schema_version: int = SCHEMA_VERSION
    suite: str
    dataset: DatasetInfo
    pipeline_name: str
    pipeline: PipelineSpec | PeerSpec
    seed: int
    protocol: Protocol
    metrics: dict[str, dict[str, float]]
    chance: dict[str, float] = Field(
        default_factory=dict, description="score of predicting the class prior for every row"
    )
    folds: list[FoldRecord]
    test_metrics: dict[str, float] | None = None
    durations: dict[str, float] = Field(default_factory=dict)
    search: SearchSummary | None = None
    budget: BudgetSummary | None = None
    ensemble: EnsembleSummary | None = None
    ablation: AblationSummary | None = None
    diagnostics: Diagnostics | None = None
    decision: DecisionRecord | None = None
    """The decision rule of the label metrics, CV and held-out (schema 4; None: older file)."""
    tracking: TrackingIds | None = None
    provenance: Provenance

    def primary(self) -> tuple[str, float, float]:
        """(metric, mean, std) of the protocol's primary metric."""
        name = self.protocol.primary_metric
        m = self.metrics.get(name, {})
        return name, m.get("mean", float("nan")), m.get("std", float("nan"))

    def undefined_folds(self, metric: str | None = None) -> int:
        """Folds that ran but whose ``metric`` (default: the primary) is undefined (NaN), left
        out of its mean: from the summary, or counted in the folds of a file older than the
        count (schema 4)."""
        name = metric or self.protocol.primary_metric
        stats = self.metrics.get(name, {})
        if "undefined" in stats:
            return int(stats["undefined"])
        scored = [f.metrics.get(name, math.nan) for f in self.folds if f.error is None]
        return sum(1 for v in scored if not math.isfinite(v))


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (missing packages are left out)."""
    packages = {}
    for name in names:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return packages


def provenance(device: str = "cpu") -> Provenance:
    packages = package_versions()
    hardware: dict[str, Any] = {
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "device": device,
    }
    if device.startswith("cuda"):
        import torch

        hardware["gpu"] = torch.cuda.get_device_name(0)
    return Provenance(
        mmbench_version=mmbench.__version__,
        git_commit=git_commit(),
        python=platform.python_version(),
        packages=packages,
        hardware=hardware,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


# --------------------------------------------------------------------------- layout


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

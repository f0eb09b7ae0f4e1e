"""The typed, versioned result files: one :class:`RunResult` per job, one :class:`AblationReport`
per ablation, with their schema versions.

Leaderboards and regression gates are built from these files only, never from memory. Every
file carries what is needed to reproduce it: mmbench version, git commit, package versions,
dataset revision and fingerprint, seed, protocol and hardware (:mod:`.provenance`).

Length: every model of the result file in one module (~400 lines, mostly field docs), so the
schema and its version history read in one place.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mmbench.config import PeerSpec, PipelineSpec
from mmbench.evaluation import OWN_THRESHOLD, DecisionName
from mmbench.results.rows import OutOfFold
from mmbench.suite import Protocol

SCHEMA_VERSION = 5
READABLE_VERSIONS = (1, 2, 3, 4, 5)
"""Version 2 added ``diagnostics`` and ``search.history``; version 3 added per-class metrics
(``diagnostics.per_class``), the ablation's time in ``budget`` and ``durations``, and fit and
predict seconds in ``durations`` (all optional); version 4 added ``search.trial_store``, the
count of folds whose metric is undefined (``metrics[name]["undefined"]``) and ``decision`` (the
rule the scores were counted with); version 5 added ``out_of_fold`` (row-level predictions) and
``provenance.hardware["gpu"]``: older files read as they are, without them."""
ABLATION_SCHEMA_VERSION = 2
ABLATION_READABLE_VERSIONS = (1, 2)
"""Version 2 added ``pipeline_name`` (which pipeline was ablated) and ``skipped`` (subsets the
budget cut); version 1 reports read without them."""
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


class InferredModalities(_Model):
    """What ``modalities: auto`` typed: column -> ``text``, ``categorical``, ``numeric``,
    ``image``, ``audio`` or ``video``, and the notes on borderline or left-out columns."""

    columns: dict[str, str]
    notes: list[str] = Field(default_factory=list)


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
    inferred_modalities: InferredModalities | None = None
    """Set when the suite said ``modalities: auto``: each inferred column's type and the
    decisions taken (:mod:`mmbench.data.infer`); None: every column was named."""
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
    out_of_fold: OutOfFold | None = None
    """Every row's out-of-fold prediction, as its folds were scored (schema 5): what a
    leaderboard compares row by row; None in older files and when the folds were not known."""
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

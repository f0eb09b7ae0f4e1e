"""What a search is given: its settings (:class:`SearchSettings`) and the callbacks of its
bookkeeping (:class:`TrialHooks`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmbench.budget import NO_DEADLINE, Deadline
from mmbench.config import PipelineSpec
from mmbench.evaluation import Fold
from mmbench.pipeline import FoldResult
from mmbench.search.storage import PrunerName, SamplerName


@dataclass
class SearchSettings:
    study_name: str
    storage: str | None = None
    n_trials: int = 10
    timeout: float | None = None
    sampler: SamplerName = "tpe"
    pruner: PrunerName = "wilcoxon"
    primary: str = "f1_macro"
    objectives: list[str] = field(default_factory=list)  # extra: "latency_ms"
    seed: int = 0
    resume: bool = False
    heartbeat_s: int = 30
    deadline: Deadline = NO_DEADLINE
    """When trials must be over; checked between folds, epochs and boosting rounds."""
    portfolio: list[dict[str, Any]] = field(default_factory=list)
    """Optuna params of known-strong trials, enqueued (in order) when the study is new."""
    worker: int | None = None
    """None: a lone process (the study's budget is this one's, seed as given). Else one of
    several workers on the study: its sampler seed is its own, the budget the study's
    (:mod:`mmbench.search.coordination`); -1: derive the seed from host and process id."""
    exact_name: bool = False
    """Join or create ``study_name`` itself (workers told which study to share)."""
    trial_dir: str | Path | None = None
    """The trial store: where each completed trial's outputs are kept (a folder, or an fsspec
    URL such as ``s3://bucket/prefix`` when workers share no disk), so a finalizing process
    (another worker or host, a resume) builds the ensemble from every trial of the study."""
    existing: bool = False
    """The study must already exist (``--resume``, ``mmbench finalize``): a missing one is an
    error that names the study and the storage, never a silently started new study."""
    adopt_budget: bool = False
    """Use the budget stored in the study (trials and deadline) instead of this one's, as a
    worker does: ``mmbench finalize``, and ``--resume`` without ``--trials``."""
    rungs: bool = True
    """Score each candidate first on a row subsample of one fold and cross-validate only the
    promising ones (:mod:`mmbench.search.fidelity`; large tables, single objective only)."""


@dataclass
class TrialHooks:
    """Callbacks for bookkeeping; every one is optional."""

    start: Callable[[Any, PipelineSpec], None] | None = None
    epoch: Callable[[Any, Fold, int, float], None] | None = None
    end: Callable[[Any, str, PipelineSpec, list[FoldResult], str | None], None] | None = None
    abandoned: Callable[[Any], None] | None = None
    """Called on resume with each failed trial whose process died before it ended (heartbeat
    expired, or a dead local worker), so its bookkeeping (e.g. an MLflow run) can be closed."""

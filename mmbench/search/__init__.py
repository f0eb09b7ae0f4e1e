"""Optuna search over the pipeline space (:mod:`mmbench.space`, :mod:`.sampling`, :mod:`.study`);
a study's life cycle in one process is :class:`StudyRun` (:mod:`.lifecycle`)."""

from __future__ import annotations

from mmbench.search.lifecycle import StudyRun, TrialStatus
from mmbench.search.sampling import sample_pipeline
from mmbench.search.settings import SearchSettings, TrialHooks
from mmbench.search.study import NothingFits, SearchOutcome, run_search
from mmbench.space import SearchSpace

__all__ = [
    "NothingFits",
    "SearchOutcome",
    "SearchSettings",
    "SearchSpace",
    "StudyRun",
    "TrialHooks",
    "TrialStatus",
    "run_search",
    "sample_pipeline",
]

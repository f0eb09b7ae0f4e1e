"""Optuna search over the pipeline space (:mod:`mmbench.space`, :mod:`.sampling`, :mod:`.study`)."""

from __future__ import annotations

from mmbench.search.sampling import sample_pipeline
from mmbench.search.study import SearchOutcome, SearchSettings, TrialHooks, run_search
from mmbench.space import SearchSpace

__all__ = [
    "SearchOutcome",
    "SearchSettings",
    "SearchSpace",
    "TrialHooks",
    "run_search",
    "sample_pipeline",
]

"""Optuna search over the pipeline space (:mod:`mmbench.space`, :mod:`.sampling`, :mod:`.study`)."""

from __future__ import annotations

from mmbench.search.sampling import sample_pipeline
from mmbench.search.settings import SearchSettings, TrialHooks
from mmbench.search.study import SearchOutcome, run_search
from mmbench.space import SearchSpace

__all__ = [
    "SearchOutcome",
    "SearchSettings",
    "SearchSpace",
    "TrialHooks",
    "run_search",
    "sample_pipeline",
]

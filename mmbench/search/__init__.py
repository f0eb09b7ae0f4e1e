"""Optuna search over the pipeline space (see :mod:`mmbench.search.space`, :mod:`.study`)."""

from __future__ import annotations

from mmbench.search.space import SearchSpace
from mmbench.search.study import SearchOutcome, SearchSettings, TrialHooks, run_search

__all__ = ["SearchOutcome", "SearchSettings", "SearchSpace", "TrialHooks", "run_search"]

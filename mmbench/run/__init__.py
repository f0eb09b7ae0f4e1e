"""A benchmark run: a suite's datasets, each one job or more, composed from the layers below.

- :mod:`.runner` — :func:`run_suite`: load, fold, evaluate or search, ablate, write, track.
- :mod:`.context` — :class:`RunOptions` and what one dataset's job steps share.
- :mod:`.fixed` — a dataset's fixed pipeline cross-validated, as ``mmbench regress`` also does.
- :mod:`.search_job` — a search job: run, join or finalize the study, then the final model;
  :mod:`.subsample` — its rows cut to what the budget fits.
- :mod:`.reference_job` — a reference job: a named reference pipeline or a peer tool.
- :mod:`.workers` — ``run --workers N``: worker processes (local or Dask) on each study.

``from mmbench.run import RunOptions, run_suite`` is the entry point for Python callers.
"""

from __future__ import annotations

from mmbench.run.runner import DatasetOutcome, Reporter, RunOptions, run_dataset, run_suite

__all__ = ["DatasetOutcome", "Reporter", "RunOptions", "run_dataset", "run_suite"]

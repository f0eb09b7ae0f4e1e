"""Everything MLflow, kept out of the benchmark's core the way Optuna keeps its integrations.

Layout: one experiment per suite (``mmbench/<suite>``); a parent run per job (a dataset's own
pipeline or search, or one reference pipeline); nested child runs per trial, for the chosen
pipeline after a search and per ablation subset, all tagged ``mmbench.kind``.

- :mod:`.client` — :class:`Tracker`: the MLflow client, batched logging, metric naming.
- :mod:`.job` — :func:`start_job` and :class:`JobTracker`: the hooks the runner calls.
- :mod:`.naming` — what trials' params and runs are called (used params, concept names).
- :mod:`.study` — :class:`StudyRecorder`: Optuna trials as child runs.
- :mod:`.summary` — a study's summary on its parent run, the best run's link to its trial.
- :mod:`.ablation` — :func:`track_ablation`: ablation subsets as child runs.
- :mod:`.serving` — the refitted pipeline as a pyfunc model (imports MLflow when loaded).
- :mod:`.pictures` — confusion matrix, ROC/PR curves and a study's history and importances
  as PNG files on the job's run.
"""

from __future__ import annotations

from mmbench.tracking.ablation import track_ablation
from mmbench.tracking.client import Tracker, cv_metrics, fold_steps, tracking_uri
from mmbench.tracking.job import JobInfo, JobTracker, start_job
from mmbench.tracking.study import StudyRecorder

__all__ = [
    "JobInfo",
    "JobTracker",
    "StudyRecorder",
    "Tracker",
    "cv_metrics",
    "fold_steps",
    "start_job",
    "track_ablation",
    "tracking_uri",
]

"""The final model of a search, in one place: which trials to blend and how, and the fitted blend.

- :mod:`~mmbench.final.selection`: greedy ensemble selection (Caruana et al., 2004) over the
  trials' out-of-fold probabilities, with replacement and a log-loss tie-break.
- :mod:`~mmbench.final.model`: the plan (members, weights, the per-class decision rule tuned on
  the blend's out-of-fold predictions) and :class:`FinalModel`, its members' fold models or
  refits fitted before the deadline; what the result file scores, what MLflow serves.
"""

from __future__ import annotations

from mmbench.final.model import (
    MAX_CANDIDATES,
    EnsemblePlan,
    FinalModel,
    fit_final,
    plan_ensemble,
)
from mmbench.final.selection import EnsembleSelection, oof_rows, select_ensemble

__all__ = [
    "MAX_CANDIDATES",
    "EnsemblePlan",
    "EnsembleSelection",
    "FinalModel",
    "fit_final",
    "oof_rows",
    "plan_ensemble",
    "select_ensemble",
]

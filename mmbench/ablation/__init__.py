"""Modality ablations: what each modality contributes, and how a model copes without it.

A benchmark score says how good a pipeline is, not *why*. Three complementary views answer that:

- **Subsets** — the same pipeline cross-validated on the full set of modalities, without each one
  (leave-one-out), on each one alone and, when there are few modalities, on every non-empty
  subset. All runs share the folds and seeds, and the feature cache serves every subset from the
  full run's features, so the only thing that changes between rows is which modalities the head
  sees.
- **Shapley values** — each modality's average marginal contribution over all orders in which
  modalities could be added, with the empty set scored at the chance level. Unlike leave-one-out
  drops, they split the credit for redundant modalities fairly and sum to ``full − chance``.
  Because the folds are shared, subset scores of one fold form a complete game; Shapley values
  are computed per fold and reported as mean ± std across folds, which shows whether a ranking
  is more than fold noise.
- **Robustness** — the *full* model with one modality removed at test time only (no retraining):
  how badly a deployed model degrades when an input goes missing.

Values are in the units of the primary metric: for a lower-is-better metric (log-loss) a helpful
modality has a *negative* Shapley value; :meth:`AblationReport.ranking` and the "drop" columns
respect the direction so that positive always means "helps" / "hurts when removed".

:mod:`.plan` picks the subsets, :mod:`.run` cross-validates them, :mod:`.attribution` turns
their scores into the report, :mod:`.files` writes it.
"""

from __future__ import annotations

from mmbench.ablation.attribution import (
    build_report,
    fold_shapley,
    robustness,
    row_from_cv,
    shapley_values,
)
from mmbench.ablation.files import plot_report, render_markdown, report_frame, write_report
from mmbench.ablation.plan import expected_seconds, plan_subsets, subset_kind
from mmbench.ablation.run import ProgressFn, run_ablation
from mmbench.results import AblationReport, AblationRow

__all__ = [
    "AblationReport",
    "AblationRow",
    "ProgressFn",
    "build_report",
    "expected_seconds",
    "fold_shapley",
    "plan_subsets",
    "plot_report",
    "render_markdown",
    "report_frame",
    "robustness",
    "row_from_cv",
    "run_ablation",
    "shapley_values",
    "subset_kind",
    "write_report",
]

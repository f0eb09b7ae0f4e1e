"""The evaluation protocol: every split, every metric and the decision rule, in one place.

Candidates only produce out-of-fold probabilities; this package turns them into scores.

- :mod:`~mmbench.evaluation.metrics`: the metric registry (:data:`METRICS`),
  :func:`compute_metrics` and the fold summaries (:func:`summarize`, :func:`mean_std`).
- :mod:`~mmbench.evaluation.splits`: every split the harness makes: the outer folds
  (:func:`cv_folds`), the inner early-stopping hold-out (:func:`inner_split`) and the
  stratified subsample of a table (:func:`stratified_subsample`).
- :mod:`~mmbench.evaluation.decision`: the decision rule that turns a candidate's probabilities
  into labels, the same for every row of a comparison (:func:`decide`).
- :mod:`~mmbench.evaluation.protocol`: the :class:`Protocol` a suite declares.
"""

from __future__ import annotations

from mmbench.evaluation.decision import (
    ARG_MAX,
    MIN_DECISION_GAIN,
    OWN_THRESHOLD,
    TUNED_WEIGHTS,
    DecisionName,
    DecisionRule,
    decide,
    fit_decision_rule,
    tune_binary_threshold,
    tune_class_weights,
)
from mmbench.evaluation.metrics import (
    METRICS,
    FoldScores,
    Metric,
    ScoredFold,
    chance_level,
    compute_metrics,
    format_score,
    macro_f1,
    mean_std,
    metric_names,
    predict_labels,
    summarize,
    undefined_note,
)
from mmbench.evaluation.protocol import MetricName, Protocol
from mmbench.evaluation.splits import (
    Fold,
    cv_folds,
    derive_seed,
    inner_split,
    no_holdout_reason,
    stratified_subsample,
)

__all__ = [
    "ARG_MAX",
    "METRICS",
    "MIN_DECISION_GAIN",
    "OWN_THRESHOLD",
    "TUNED_WEIGHTS",
    "DecisionName",
    "DecisionRule",
    "Fold",
    "FoldScores",
    "Metric",
    "MetricName",
    "Protocol",
    "ScoredFold",
    "chance_level",
    "compute_metrics",
    "cv_folds",
    "decide",
    "derive_seed",
    "fit_decision_rule",
    "format_score",
    "inner_split",
    "macro_f1",
    "mean_std",
    "metric_names",
    "no_holdout_reason",
    "predict_labels",
    "stratified_subsample",
    "summarize",
    "tune_binary_threshold",
    "tune_class_weights",
    "undefined_note",
]

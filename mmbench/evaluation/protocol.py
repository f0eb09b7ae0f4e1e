"""The evaluation protocol a suite declares: folds, repeats, primary metric, grouping."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from mmbench.config import StrictModel
from mmbench.evaluation.metrics import metric_names

if TYPE_CHECKING:
    MetricName = str
else:  # the vocabulary is the metric registry: a new metric is valid in suites at once
    MetricName = Literal[tuple(metric_names())]


class Protocol(StrictModel):
    """Evaluation protocol: repeated stratified k-fold CV."""

    folds: int = Field(5, ge=2)
    repeats: int = Field(1, ge=1)
    primary_metric: MetricName = "f1_macro"
    group_column: str | None = Field(
        None,
        description="rows sharing this column's value (a speaker, a patient, a device) are "
        "never split across folds: stratified group k-fold",
    )

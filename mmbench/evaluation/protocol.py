"""The evaluation protocol a suite declares: folds, repeats, primary metric, grouping, and the
cheaper hold-out protocol of large tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from mmbench.config import StrictModel
from mmbench.evaluation.metrics import metric_names
from mmbench.evaluation.splits import Fold, cv_folds

if TYPE_CHECKING:
    MetricName = str
else:  # the vocabulary is the metric registry: a new metric is valid in suites at once
    MetricName = Literal[tuple(metric_names())]


LARGE_TABLE_ROWS = 10_000
"""From this many rows on, a table is scored by default on one fold of its k-fold split."""


class Protocol(StrictModel):
    """Evaluation protocol: repeated stratified k-fold CV; on a large table, its first folds.

    Full k-fold CV trains every candidate k times. On a table of ``large_table_rows`` rows or
    more that leaves a time-bounded search room for one or two candidates, so such a table is
    scored on the first ``large_table_folds`` folds of each repeat instead (by default one: a
    stratified hold-out of 1/k of the rows, as AutoGluon does without bagging). It is the same
    k-fold split, cut short: every pipeline on the dataset (searched, reference, peer) is scored
    on the same folds and rows, out-of-fold predictions cover the evaluated folds' rows (what the
    ensemble, the decision rule and the regression gate use; a lone fold's decision rule is
    cross-fitted between its halves), and the final model's members are bagged over the whole
    k-fold split when that fits in the time left, else refitted on all rows. ``large_table_rows: null`` keeps all k folds at any size.
    """

    folds: int = Field(5, ge=2)
    repeats: int = Field(1, ge=1)
    primary_metric: MetricName = "f1_macro"
    group_column: str | None = Field(
        None,
        description="rows sharing this column's value (a speaker, a patient, a device) are "
        "never split across folds: stratified group k-fold",
    )
    large_table_rows: int | None = Field(
        LARGE_TABLE_ROWS,
        ge=2,
        description="tables of at least this many rows are scored on the first "
        "`large_table_folds` folds of each repeat only; null: every fold at any size",
    )
    large_table_folds: int = Field(1, ge=1)

    def folds_for(
        self, labels: np.ndarray, seed: int, groups: np.ndarray | None = None
    ) -> list[Fold]:
        """The folds this protocol scores a table of ``labels`` on (see the class)."""
        folds = self.split(labels, seed, groups)
        if self.large_table_rows is None or len(labels) < self.large_table_rows:
            return folds
        return [f for f in folds if f.fold < self.large_table_folds]

    def split(self, labels: np.ndarray, seed: int, groups: np.ndarray | None = None) -> list[Fold]:
        """Every fold of the k-fold split, at any size: what a hold-out fold is the first of,
        and what the final model bags its members over."""
        return cv_folds(labels, self.folds, self.repeats, seed, groups)

    def describe(self, rows: int) -> str:
        """The protocol a table of ``rows`` rows is scored with, in words."""
        k = f"{self.folds}-fold" + (f" x {self.repeats}" if self.repeats > 1 else "")
        if self.large_table_rows is None or rows < self.large_table_rows:
            return f"stratified {k} CV"
        used = min(self.large_table_folds, self.folds)
        return (
            f"the first {used} of {self.folds} folds of stratified {k} (a table of {rows:,} "
            f"rows, at least large_table_rows {self.large_table_rows:,})"
        )

"""Multi-fidelity: judge each candidate cheaply first, spend full cross-validation on the good.

At a fixed wall-clock budget on a large table, full k-fold CV of every candidate leaves room for
two or three of them. So a study on a table of at least :data:`MIN_TABLE_ROWS` rows scores every
candidate first at a *rung*: one fold, on a stratified row subsample of that fold (about one
eighth of the table; never fewer than :data:`MIN_RUNG_ROWS` rows). A candidate then goes on to
full CV only if its rung score is among the best ``1 / eta`` of the rung scores the study has
seen (asynchronous successive halving, as ASHA promotes); otherwise it is pruned by that rule,
with its rung score as its value, so the sampler learns from it.

Every candidate is scored on the *same* rung rows, so rung scores compare with each other. The
rows are a subset of the study's first fold, split as that fold is (grouped folds stay grouped,
every group keeping its share of the rows),
and the rung table has its own fingerprint, so frozen features of the rung rows are cached (a
promoted candidate encodes the full table once more; the rung rows are about 1/8 of it).
A candidate whose full-table encoding would not fit in the time left is still scored on the
rung (only a promoted one needs the full table), so slow encoders are judged, not skipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmbench.data.table import MultiModalTable
from mmbench.evaluation import Fold

MIN_TABLE_ROWS = 4000
"""Below this a candidate's full CV costs seconds to a minute: rungs would add noise, not trials."""
RUNG_FRACTION = 1 / 8
MIN_RUNG_ROWS = 1500
ETA = 3
"""Promote the best third of the rung (successive halving's usual reduction factor)."""
MIN_SCORES = 2
"""Rung scores the study must hold before the rule prunes anything: the first two candidates
(the portfolio's cheapest) always reach full CV."""


@dataclass(frozen=True)
class Rung:
    """The low-fidelity evaluation: a sub-table and the one fold every candidate is scored on."""

    table: MultiModalTable
    fold: Fold

    @property
    def rows(self) -> int:
        return len(self.table)

    def describe(self) -> str:
        return f"{self.rows:,} rows, 1 fold"


def make_rung(table: MultiModalTable, folds: list[Fold]) -> Rung | None:
    """The rung for ``table`` cross-validated on ``folds``, or None when the table is small."""
    n = len(table)
    if n < MIN_TABLE_ROWS or not folds:
        return None
    rows = max(MIN_RUNG_ROWS, int(n * RUNG_FRACTION))
    first = folds[0]
    share = len(first.valid) / (len(first.train) + len(first.valid))
    n_valid = max(table.n_classes * 2, round(rows * share))
    train = _sample(first.train, table, rows - n_valid, first.seed)
    valid = _sample(first.valid, table, n_valid, first.seed + 1)
    index = np.concatenate([train, valid])
    sub = table.rows_of(index)
    fold = Fold(
        repeat=0,
        fold=0,
        train=np.arange(len(train)),
        valid=np.arange(len(train), len(index)),
        seed=first.seed,
    )
    return Rung(sub, fold)


def _sample(rows: np.ndarray, table: MultiModalTable, n: int, seed: int) -> np.ndarray:
    """``n`` of ``rows`` keeping their class proportions (every class they hold kept) and, on
    a grouped table, every group's share (so the rung's inner hold-out has groups to hold out)."""
    from mmbench.evaluation import stratified_subsample

    if n >= len(rows):
        return np.sort(rows)
    groups = None if table.groups is None else table.groups[rows]
    return np.sort(rows[stratified_subsample(table.labels[rows], n, seed, groups)])


def promotes(score: float, others: list[float], higher_is_better: bool = True) -> bool:
    """Whether a rung ``score`` is among the best ``1 / ETA`` of itself and ``others``.

    With fewer than :data:`MIN_SCORES` earlier scores every candidate is promoted.
    """
    if len(others) < MIN_SCORES:
        return True
    if not math.isfinite(score):
        return False
    sign = 1.0 if higher_is_better else -1.0
    ranked = sorted((sign * s for s in [*others, score] if math.isfinite(s)), reverse=True)
    keep = max(1, len(ranked) // ETA)
    return sign * score >= ranked[keep - 1]


RUNG_ATTR = "rung"
"""The trial user attribute holding its rung result: rows, score, seconds, promoted."""


def rung_scores(study: Any, exclude: int | None = None) -> list[float]:
    """Rung scores of the study's trials so far (every worker's), except trial ``exclude``."""
    return [
        float(t.user_attrs[RUNG_ATTR]["score"])
        for t in study.get_trials(deepcopy=False)
        if t.number != exclude
        and RUNG_ATTR in t.user_attrs
        and t.user_attrs[RUNG_ATTR].get("score") is not None
    ]


def fidelity_of(trial: Any, n_folds: int) -> str:
    """In words, the most a trial was evaluated on: for result files and MLflow."""
    rung = trial.user_attrs.get(RUNG_ATTR)
    folds = len(trial.user_attrs.get("folds", []))
    if rung is not None and not rung.get("promoted"):
        return f"{rung['rows']:,} rows, 1 fold"
    if folds:
        return f"{folds} of {n_folds} folds"
    return "none"

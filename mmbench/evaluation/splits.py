"""Every split the harness makes: outer cross-validation folds, the inner early-stopping
hold-out of a fold's training rows, and the stratified subsample of a table.

All of them stratify by class, and on a grouped table (a speaker, a patient, a device per row)
keep the rows of one group on one side, so a model never scores by recognising a group it has
seen. Seeds are derived from the suite's seed (:func:`derive_seed`), so every candidate of a
comparison gets the same splits.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np


def derive_seed(*parts: object) -> int:
    """A stable 31-bit seed from any parts (suite seed, dataset, repeat, fold...)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@dataclass(frozen=True)
class Fold:
    repeat: int
    fold: int
    train: np.ndarray
    valid: np.ndarray
    seed: int

    @property
    def key(self) -> str:
        return f"r{self.repeat}f{self.fold}"


def cv_folds(
    labels: np.ndarray, folds: int, repeats: int, seed: int, groups: np.ndarray | None = None
) -> list[Fold]:
    """Stratified k-fold, repeated with a fresh shuffle per repeat; seeds derived from ``seed``.

    With ``groups`` (one value per row: a speaker, a patient, a device) the folds are
    stratified *group* k-fold: the rows of one group are all in the same fold, so a model
    cannot score by recognising a group it has seen in training (which plain stratified folds
    allow, and which overstates every score on data whose rows share a source).
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    labels = np.asarray(labels)
    out: list[Fold] = []
    for r in range(repeats):
        split_seed = derive_seed(seed, "split", r)
        if groups is None:
            splitter: Any = StratifiedKFold(n_splits=folds, shuffle=True, random_state=split_seed)
        else:
            splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=split_seed)
        splits = splitter.split(np.zeros(len(labels)), labels, groups)
        for k, (train, valid) in enumerate(splits):
            out.append(Fold(r, k, train, valid, derive_seed(seed, "fit", r, k)))
    return out


def stratified_subsample(
    labels: np.ndarray, n: int, seed: int, groups: np.ndarray | None = None
) -> np.ndarray:
    """``n`` sorted row indices keeping class proportions (largest remainder, >= 1 per class).

    With ``groups`` the strata are (group, class) pairs: every group keeps its share of the
    rows and every class within it, so the subsample holds the groups the table holds and
    grouped folds split it as evenly as they split the table. (Whole groups drawn at random
    would leave fewer groups than folds on data of few large groups: six speakers, five
    folds.) When there are more pairs than ``n`` rows, each class keeps its share and its rows
    come from groups drawn at random in proportion to their size. Without groups the draw is
    the plain class-stratified one.
    """
    rng = np.random.default_rng(seed)
    if groups is not None:
        keys = np.array([f"{g}\x1f{y}" for g, y in zip(groups, labels, strict=True)])
        strata = np.unique(keys, return_inverse=True)[1]
        if strata.max(initial=-1) + 1 > n:
            return _spread_over_groups(labels, groups, n, rng)
        labels = strata
    classes, counts = np.unique(labels, return_counts=True)
    keep = _largest_remainder(counts, n)
    chosen = [
        rng.choice(np.flatnonzero(labels == c), size=k, replace=False)
        for c, k in zip(classes, keep, strict=True)
    ]
    return np.sort(np.concatenate(chosen))


def _largest_remainder(counts: np.ndarray, n: int) -> np.ndarray:
    """``n`` split over strata of sizes ``counts`` in proportion, each one kept when ``n``
    allows (ties go to the earlier stratum)."""
    keep = np.minimum(counts, 1)
    spare = n - keep.sum()
    if spare < 0:
        keep = np.zeros_like(counts)
        spare = n
    ideal = spare * counts / counts.sum()
    keep = np.minimum(counts, keep + np.floor(ideal).astype(int))
    for i in np.argsort(-(ideal - np.floor(ideal)), kind="stable"):
        if keep.sum() >= n:
            break
        keep[i] += int(keep[i] < counts[i])
    return keep


def _spread_over_groups(
    labels: np.ndarray, groups: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` rows, each class's share of them drawn over its groups (in random order, so
    that equal groups are not taken by name)."""
    classes, counts = np.unique(labels, return_counts=True)
    chosen = []
    for c, k in zip(classes, _largest_remainder(counts, n), strict=True):
        rows = np.flatnonzero(labels == c)
        inverse, sizes = np.unique(groups[rows], return_inverse=True, return_counts=True)[1:]
        order = rng.permutation(len(sizes))
        take = np.zeros_like(sizes)
        take[order] = _largest_remainder(sizes[order], int(k))
        chosen += [
            rng.choice(rows[inverse == j], size=t, replace=False) for j, t in enumerate(take)
        ]
    return np.sort(np.concatenate(chosen))


INNER_HOLDOUT = 0.15


MIN_ROWS_FOR_HOLDOUT = 40


def inner_split(
    labels: np.ndarray, seed: int, groups: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """Stratified hold-out of training rows for early stopping; None when there is none to draw.

    With ``groups`` the hold-out is whole groups (one fold of a stratified group k-fold of
    about ``1 / INNER_HOLDOUT`` folds), so the stopping rule and the decision threshold are
    tuned on groups the head has not seen, as the outer folds score it: a hold-out of rows
    from seen groups rewards memorising the groups. Without groups the split is the plain
    stratified one. :func:`no_holdout_reason` says when there is none.
    """
    if no_holdout_reason(labels, groups) is not None:
        return None
    if groups is not None:
        return _group_holdout(labels, groups, seed)
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    counts = np.bincount(labels)
    stratify = labels if counts[counts > 0].min() >= 2 else None
    fit_idx, stop_idx = train_test_split(
        idx, test_size=INNER_HOLDOUT, random_state=seed, stratify=stratify
    )
    return np.sort(fit_idx), np.sort(stop_idx)


def no_holdout_reason(labels: np.ndarray, groups: np.ndarray | None = None) -> str | None:
    """Why no inner hold-out is drawn from these training rows, or None when one is.

    A head without one trains its full schedule and no threshold is tuned. On grouped rows
    that is the choice when fewer than two groups remain: a hold-out of rows from the one
    group would be a hold-out of a seen group, exactly what grouping rules out.
    """
    if len(labels) < MIN_ROWS_FOR_HOLDOUT:
        return f"{len(labels)} training rows, fewer than {MIN_ROWS_FOR_HOLDOUT}"
    if groups is not None and len(np.unique(groups)) < 2:
        return "the training rows hold one group; a grouped hold-out needs two"
    return None


def _group_holdout(labels: np.ndarray, groups: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    from sklearn.model_selection import StratifiedGroupKFold

    n_groups = len(np.unique(groups))
    splits = min(n_groups, max(2, round(1 / INNER_HOLDOUT)))
    splitter = StratifiedGroupKFold(n_splits=splits, shuffle=True, random_state=seed)
    fit_idx, stop_idx = next(splitter.split(np.zeros(len(labels)), labels, groups))
    return np.sort(fit_idx), np.sort(stop_idx)

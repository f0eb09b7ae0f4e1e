"""Which subsets of modalities an ablation runs, in which order, and what the next one should
cost (from the rows already run)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from mmbench.results import AblationKind, AblationRow


def plan_subsets(
    modalities: Sequence[str], max_subset_modalities: int
) -> list[tuple[tuple[str, ...], AblationKind]]:
    """(subset, kind) pairs to evaluate, full set first so that it fills the feature cache.

    Then each leave-one-out and single-modality subset, then (few modalities) the other subsets,
    largest first: a deadline that cuts the plan short keeps the most telling rows. Subsets keep
    the table's canonical modality order, so the full row is exactly the normal run.
    """
    n = len(modalities)
    loo = [tuple(m for m in modalities if m != left) for left in modalities] if n > 2 else []
    first = [tuple(modalities), *loo, *((m,) for m in modalities)]
    rest = []
    if n <= max_subset_modalities:
        rest = [c for size in range(n - 2, 1, -1) for c in itertools.combinations(modalities, size)]
    subsets = list(dict.fromkeys([*first, *rest]))
    return [(s, subset_kind(s, n)) for s in subsets]


def subset_kind(subset: Sequence[str], n_modalities: int) -> AblationKind:
    if len(subset) == n_modalities:
        return "full"
    if len(subset) == 1:
        return "single"
    return "leave-one-out" if len(subset) == n_modalities - 1 else "subset"


def expected_seconds(rows: Sequence[AblationRow], walls: Sequence[float], size: int) -> float:
    """Wall seconds a subset of ``size`` modalities should take, from the rows already run
    (``walls[i]`` is ``rows[i]``'s): the slowest of that size (cautious, like
    :class:`~mmbench.budget.CostModel`), else the quickest larger one other than the full set
    (fewer modalities cost no more); 0 before any row."""
    same = [w for r, w in zip(rows, walls, strict=True) if len(r.modalities) == size]
    if same:
        return max(same)
    larger = [
        w for r, w in zip(rows, walls, strict=True) if len(r.modalities) > size and r.kind != "full"
    ]
    return min(larger, default=0.0)

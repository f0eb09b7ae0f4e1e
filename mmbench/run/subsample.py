"""A search job on fewer rows: when the budget fits no candidate's encoding of every training
row, the largest stratified subsample whose encoding fits, the same rows again on resume or
finalize (the study records them, :data:`mmbench.search.lifecycle.SUBSAMPLE_ATTR`)."""

from __future__ import annotations

from typing import Any

from mmbench.run.context import JobContext

SUBSAMPLE_SHARE = 0.4
"""When no candidate can encode every training row in the time left, the share of that time
the subsample's encoding may take (the rest is for cross-validating on it; below the search's
``FIRST_ENCODE_SHARE``, so the subsample's first candidate is not declined in turn)."""
MIN_SUBSAMPLE_ROWS = 50


def fit_rows_to_budget(ctx: JobContext, exc: Any) -> bool:
    """After a search in which the budget check declined every candidate because even the
    cheapest one's encoding of all training rows could not fit, go on with the largest
    stratified subsample of rows whose encoding fits :data:`SUBSAMPLE_SHARE` of the time left
    (a result on fewer rows rather than none; its study records it,
    :data:`~mmbench.search.lifecycle.SUBSAMPLE_ATTR`).
    False when that is not possible: the encoding was not what failed to fit, the study is
    shared (workers, resume, finalize), or too few rows would fit to cross-validate."""
    options = ctx.options
    shared = options.worker is not None or options.resume or options.finalize != "always"
    if exc.per_row is None or exc.per_row <= 0 or shared or ctx.loaded is not None:
        return False
    table, protocol = ctx.table, ctx.spec.protocol
    rows = min(len(table) - 1, int(SUBSAMPLE_SHARE * exc.left / exc.per_row))
    if rows < max(MIN_SUBSAMPLE_ROWS, 2 * protocol.folds * table.n_classes):
        return False
    record = {
        "rows": rows,
        "of": len(table),
        "seed": ctx.suite.seed,
        "by_group": table.groups is not None,
        "reason": f"the time budget fits no candidate on all rows ({exc})",
    }
    if not use_subsample(ctx, record):
        return False
    ctx.warn(
        f"even the cheapest candidate cannot encode all {len(table):,} "
        f"training rows in the {exc.left:.0f} s left (~{exc.per_row * len(table):.0f} s); "
        f"searching a stratified subsample of {rows:,} rows instead, the most whose encoding "
        f"fits {SUBSAMPLE_SHARE:.0%} of that time. Raise the budget to use every row."
    )
    ctx.end("KILLED")  # as its declined trials; the subsample's study gets its own run
    return True


def use_subsample(ctx: JobContext, record: dict[str, Any]) -> bool:
    """Work on the stratified subsample ``record`` describes (``rows`` of ``of``, ``seed``):
    for the same table always the same rows, so a study searched on it can be resumed or
    finalized. ``by_group``: drawn per (group, class), keeping every group's share of rows
    (:func:`~mmbench.evaluation.stratified_subsample`). False when the table is not the one
    it was drawn from or the subsample cannot be cross-validated (e.g. too few groups)."""
    import numpy as np

    from mmbench.errors import MMBenchError
    from mmbench.evaluation import stratified_subsample

    table, protocol = ctx.table, ctx.spec.protocol
    if record.get("of") != len(table):
        return False
    rows, seed = int(record["rows"]), int(record["seed"])
    groups = table.groups if record.get("by_group") else None  # as the study's rows were drawn
    index = np.sort(stratified_subsample(table.labels, rows, seed, groups))
    sub = table.rows_of(index, salt="budget:")
    try:  # sklearn's ValueError: fewer groups (or rows of a class) than folds
        folds = protocol.folds_for(sub.labels, ctx.suite.seed, sub.groups)
    except (MMBenchError, ValueError):
        return False
    sub.meta["subsample"] = dict(record)
    ctx.use_rows(sub, folds)
    return True

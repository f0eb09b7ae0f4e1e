"""Leaderboards, built from result files only: one ranked table per dataset of a suite, and the
pipelines' mean rank and normalized score across datasets.

- :mod:`.ranking` — ranks, normalized scores, the aggregate; rows on other data or decided by
  another rule are shown, not ranked; a suite's published scores, marked comparable or not.
- :mod:`.table` — the rows (:class:`Entry`, :class:`Overall`, :class:`PublishedRow`) and the
  :class:`Leaderboard`, rendered as Markdown or CSV; :mod:`.terminal`, as rich tables.
- :mod:`.aggregate` — across datasets and suites: Bradley–Terry/Elo with bootstrap intervals,
  mean rank, win rate, failures imputed, cost, hardware, Pareto front; :mod:`.stats`, rows tied
  with a dataset's best and critical differences; :mod:`.export`, the raw results as Parquet/CSV.
- :mod:`.files` — :func:`load_leaderboard` from a results folder, :func:`write_leaderboard`
  (``LEADERBOARD.md``).
"""

from __future__ import annotations

from mmbench.leaderboard.files import (
    load_leaderboard,
    write_leaderboard,
)
from mmbench.leaderboard.ranking import (
    aggregate,
    build_leaderboard,
    mark_other_rows,
    mark_other_rules,
    normalized_score,
    provenance_summary,
    published_rows,
    rank_dataset,
    reference_fingerprint,
)
from mmbench.leaderboard.table import (
    CAVEAT,
    CSV_COLUMNS,
    DATASET_HEADER,
    NOT_RANKED,
    OVERALL_HEADER,
    TERMINAL_HEADER,
    Entry,
    Leaderboard,
    Overall,
    PublishedRow,
    caveat_lines,
    dataset_rows,
    overall_rows,
    published_cells,
    published_notes,
    rank_cell,
    render_csv,
    render_markdown,
    source_lines,
)
from mmbench.leaderboard.terminal import render, render_rich

__all__ = [
    "CAVEAT",
    "CSV_COLUMNS",
    "DATASET_HEADER",
    "NOT_RANKED",
    "OVERALL_HEADER",
    "TERMINAL_HEADER",
    "Entry",
    "Leaderboard",
    "Overall",
    "PublishedRow",
    "aggregate",
    "build_leaderboard",
    "caveat_lines",
    "dataset_rows",
    "load_leaderboard",
    "mark_other_rows",
    "mark_other_rules",
    "normalized_score",
    "overall_rows",
    "provenance_summary",
    "published_cells",
    "published_notes",
    "published_rows",
    "rank_cell",
    "rank_dataset",
    "reference_fingerprint",
    "render",
    "render_csv",
    "render_markdown",
    "render_rich",
    "source_lines",
    "write_leaderboard",
]

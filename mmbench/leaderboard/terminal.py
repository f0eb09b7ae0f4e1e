"""A leaderboard in the terminal: rich tables, overall first, then one per dataset; and
:func:`render`, the text of any ``--format``. The board across datasets
(:class:`~mmbench.leaderboard.aggregate.CrossBoard`) as cells, Markdown and a rich table."""

from __future__ import annotations

import io
import math
from typing import Any

from mmbench.errors import MMBenchError
from mmbench.leaderboard.aggregate import ANCHOR_ELO, BOOTSTRAPS, IMPUTED_WITH, CrossBoard
from mmbench.leaderboard.table import (
    DATASET_HEADER,
    OVERALL_HEADER,
    TERMINAL_HEADER,
    Leaderboard,
    caveat_lines,
    dataset_rows,
    metric_title,
    overall_rows,
    published_cells,
    published_notes,
    render_csv,
    render_markdown,
)


def render_rich(board: Leaderboard) -> list[Any]:
    """Rich tables (overall first, then one per dataset) for the terminal; cells are text, not
    markup (a published row's ``[published: source]`` is shown as written)."""
    from rich.markup import escape
    from rich.table import Table

    tables = []
    overall = Table(title=f"{board.suite}: overall")
    for col in OVERALL_HEADER:
        overall.add_column(col, justify="left" if col == "pipeline" else "right")
    for row in overall_rows(board):
        overall.add_row(*row)
    tables.append(overall)
    for name, entries in board.datasets.items():
        published = board.published.get(name, [])
        notes = "\n".join([*caveat_lines(entries), *published_notes(published)]).strip()
        caption = escape(notes) if notes else None
        table = Table(title=f"{name}: {metric_title(entries)}", caption=caption)
        rows = dataset_rows(entries, short=True)
        extra = published_cells(published, short=True)
        optional = ("test", "decision", "predict ms/row")  # left out when no row has one
        keep = [
            i
            for i, col in enumerate(DATASET_HEADER)
            if col not in optional or any(row[i] != "—" for row in rows + extra)
        ]
        for i in keep:
            col = DATASET_HEADER[i]
            table.add_column(
                TERMINAL_HEADER[i],
                justify="left" if col in ("pipeline", "what it is") else "right",
                min_width={"what it is": 24}.get(col),
                no_wrap=col == "CV mean ± std",
                overflow="fold",
            )
        for n, row in enumerate(rows):
            table.add_row(*(escape(row[i]) for i in keep), style="bold" if n == 0 else None)
        for row in extra:
            table.add_row(*(escape(row[i]) for i in keep), style="italic")
        tables.append(table)
    return tables


def render(board: Leaderboard, fmt: str) -> str:
    """``markdown`` or ``csv`` text, or the rich tables rendered as plain text (``table``)."""
    if fmt == "markdown":
        return render_markdown(board)
    if fmt == "csv":
        return render_csv(board)
    if fmt == "table":
        from rich.console import Console

        console = Console(file=io.StringIO(), width=120, color_system=None)
        for t in render_rich(board):
            console.print(t)
        return console.file.getvalue()  # type: ignore[attr-defined]
    raise MMBenchError(f"unknown leaderboard format {fmt!r}; use table, markdown or csv")


# --------------------------------------------------------------------------- rendering

STANDING_HEADER = [
    "pipeline",
    "Elo [95% CI]",
    "mean rank",
    "win rate",
    "normalized",
    "datasets",
    "imputed",
    "tied best",
    "fit s",
    "predict ms/1k",
    "hardware",
    "Pareto",
]


def _fmt(value: float | None, digits: int) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def standing_rows(board: CrossBoard) -> list[list[str]]:
    """Cells of the cross-dataset table, strongest first."""
    return [
        [
            s.pipeline + (" (anchor)" if s.pipeline == board.anchor else ""),
            f"{s.elo:.0f} [{s.elo_low:.0f}, {s.elo_high:.0f}]",
            _fmt(s.mean_rank, 2),
            _fmt(s.win_rate, 2),
            _fmt(s.mean_normalized, 3),
            f"{s.n_datasets}/{len(board.datasets)}",
            f"{s.imputed_share:.0%}",
            str(s.tied_best),
            _fmt(s.fit_s, 1 if (s.fit_s or 0) < 100 else 0),
            _fmt(s.predict_ms_1k, 1),
            s.hardware,
            "✓" if s.pareto else "",
        ]
        for s in board.standings
    ]


def board_notes(board: CrossBoard) -> list[str]:
    """What the columns mean and what was imputed or dropped, in words."""
    notes = [
        f"Elo: Bradley–Terry on every dataset's pairwise games, {board.anchor} = "
        f"{ANCHOR_ELO:.0f}; 95 % interval from {BOOTSTRAPS} resamples of the "
        f"{len(board.datasets)} dataset(s). Failed or missing runs are scored as {IMPUTED_WITH} "
        "(imputed: their share). fit s: median seconds to produce the row (a search: its "
        "whole job, the trials included; a fixed pipeline or a peer: fitting over the CV "
        "folds). Pareto ✓: no other row is both stronger and faster.",
    ]
    imputed: dict[str, list[str]] = {}
    for c in board.cells:
        if c.imputed:
            imputed.setdefault(c.pipeline, []).append(f"{c.suite}/{c.dataset} ({c.imputed})")
    notes += [f"imputed: {p} on {', '.join(where)}" for p, where in imputed.items()]
    if board.dropped:
        names = ", ".join(f"{s}/{d}" for s, d in board.dropped)
        notes.append(f"--complete-only left out {len(board.dropped)} dataset(s): {names}")
    return notes + board.notes


def render_cross_markdown(board: CrossBoard) -> str:
    rows = standing_rows(board)
    lines = ["## Across datasets: " + ", ".join(board.suites), ""]
    lines += ["| " + " | ".join(STANDING_HEADER) + " |", "|" + "---|" * len(STANDING_HEADER)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join([*lines, "", *(f"- {n}" for n in board_notes(board))]) + "\n"


TERMINAL_STANDING = {
    "Elo [95% CI]": "Elo [95% CI]",
    "mean rank": "rank",
    "win rate": "win",
    "normalized": "norm.",
    "datasets": "ran",
    "imputed": "imp.",
    "tied best": "tied",
    "fit s": "fit s",
    "predict ms/1k": "ms/1k",
    "Pareto": "✓",
}
"""The terminal's columns (hardware goes under the table), so a row fits 80 columns."""


def render_cross_rich(board: CrossBoard) -> object:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    hardware = sorted({s.hardware for s in board.standings})
    lines = board_notes(board) + [f"hardware: {h}" for h in hardware]
    table = Table(
        title=f"across {len(board.datasets)} dataset(s) of {', '.join(board.suites)}",
        caption=escape("\n".join(lines)),
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        padding=0,
        pad_edge=False,
    )
    keep = [i for i, col in enumerate(STANDING_HEADER) if col in TERMINAL_STANDING]
    table.add_column("pipeline", no_wrap=True, max_width=18, overflow="ellipsis")
    for i in keep:
        table.add_column(TERMINAL_STANDING[STANDING_HEADER[i]], justify="right", no_wrap=True)
    for s, row in zip(board.standings, standing_rows(board), strict=True):
        table.add_row(escape(s.pipeline), *(escape(row[i]) for i in keep))
    return table

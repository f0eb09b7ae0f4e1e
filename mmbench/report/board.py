"""The report's leaderboard across datasets: Elo with intervals, ties, failures, cost (a table
that sorts by any column), the critical-difference diagram and the Pareto plot of Elo against
fit time (see :mod:`mmbench.leaderboard.aggregate` and :mod:`mmbench.leaderboard.stats`).
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from mmbench.leaderboard.aggregate import cross_board
from mmbench.leaderboard.terminal import STANDING_HEADER, board_notes, standing_rows
from mmbench.report import charts

if TYPE_CHECKING:
    from mmbench.report.data import ReportData

SORT_SCRIPT = """
document.querySelectorAll('table.sortable').forEach(t => {
  t.querySelectorAll('th').forEach((th, col) => th.addEventListener('click', () => {
    const body = t.tBodies[0], up = th.dataset.dir !== 'asc';
    const key = r => { const s = r.cells[col].innerText.trim(), v = parseFloat(s);
                       return isNaN(v) ? s : v; };
    const rows = [...body.rows].sort((a, b) => { const x = key(a), y = key(b);
      return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1); });
    t.querySelectorAll('th').forEach(h => delete h.dataset.dir);
    th.dataset.dir = up ? 'asc' : 'desc';
    rows.forEach(r => body.appendChild(r));
  }));
});
"""
"""Click a header to sort by that column (again: the other way). Inline, nothing fetched; the
table is ranked by Elo without it."""


def board_section(data: ReportData, kinds: dict[str, str]) -> str:
    """The leaderboard section, or a problem line when no file could be read."""
    out = ['<section id="leaderboard"><h2>Leaderboard across datasets</h2>']
    boards = data.boards or ([data.board] if data.board is not None else [])
    if not boards:
        problem = '<div class="problem">no readable result file: nothing to rank</div>'
        return "".join([*out, problem, "</section>"])
    results = [r for v in data.datasets for r in v.results.values()]
    board = cross_board(boards, results)
    rows = standing_rows(board)
    for row, s in zip(rows, board.standings, strict=True):
        tag = f'<span class="tag">{kinds.get(s.pipeline, "reference")}</span>'
        if s.pipeline == board.anchor:
            tag += '<span class="tag">anchor</span>'
        row[:] = [escape(s.pipeline) + tag, *(escape(c) for c in row[1:])]
    out.append(_sortable(STANDING_HEADER, rows))
    tests = [t for t in (board.critical, board.wilcoxon) if t is not None]
    notes = [n for n in board_notes(board) if n not in {t.summary for t in tests}]  # captions
    out += [f'<p class="muted">{escape(n)}</p>' for n in notes]
    out.append('<div class="charts">')
    if board.critical is None:
        out.append(
            '<figure data-chart="critical-difference"><figcaption>No critical-difference '
            f"diagram: it needs two pipelines on at least five datasets; this board has "
            f"{len(board.datasets)} dataset(s).</figcaption></figure>"
        )
    else:
        svg = charts.critical_difference_svg(board.critical.result)
        out.append(charts.figure(svg, board.critical.summary, "critical-difference"))
    if board.wilcoxon is not None:
        wh = board.wilcoxon
        svg = charts.wilcoxon_holm_svg(wh.mean_ranks, wh.pvalues)
        out.append(charts.figure(svg, wh.summary, "wilcoxon-holm"))
    timed = [(s.pipeline, s.fit_s, s.elo, s.pareto) for s in board.standings if s.fit_s]
    if timed:
        caption = "Elo against median fit seconds; green: the Pareto front (✓ in the table)."
        out.append(charts.figure(charts.pareto_svg(timed), caption, "pareto"))  # type: ignore[arg-type]
    out.append("</div></section>")
    return "".join(out)


def _sortable(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(
        f'<th{" class=name" if i == 0 else ""} title="sort">{escape(h)}</th>'
        for i, h in enumerate(header)
    )
    body = "".join(
        '<tr class="leaderboard-row">'
        + "".join(f"<td{' class=name' if i == 0 else ''}>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return (
        f'<div class="wide"><table class="leaderboard sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div><script>{SORT_SCRIPT}</script>"
    )

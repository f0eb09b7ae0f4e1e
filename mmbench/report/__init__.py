"""``mmbench report SUITE``: one self-contained HTML page of a suite's results.

Like :mod:`mmbench.leaderboard`, it reads result files only (``results/<suite>/...``), never a
run's memory, an MLflow store or an Optuna database, so the page can be regenerated anywhere from
what is committed. It is one file with inline CSS and inline SVG charts (:mod:`.charts`): no
script, no font, no request, so it opens offline and can be attached or shared as is.

A dataset the suite names but no result file covers, and a file that cannot be read, are shown
as such on the page — never dropped silently.
"""

from __future__ import annotations

from pathlib import Path

from mmbench._io import atomic_write
from mmbench.report.data import DatasetView, ReportData, collect
from mmbench.report.page import render_page
from mmbench.results import ResultLayout

__all__ = ["DatasetView", "ReportData", "collect", "render_page", "render_report", "write_report"]


def render_report(results_dir: Path, suite: str, expected: list[str] | None = None) -> str:
    """The HTML page of ``suite``'s results."""
    return render_page(collect(results_dir, suite, expected))


def write_report(
    results_dir: Path, suite: str, expected: list[str] | None = None, path: Path | None = None
) -> Path:
    """Write the page to ``path`` (default ``results/<suite>/report.html``); returns the path."""
    text = render_report(results_dir, suite, expected)
    path = Path(path) if path else ResultLayout(results_dir, suite).report_file
    atomic_write(path, lambda f: f.write(text.encode()))
    return path

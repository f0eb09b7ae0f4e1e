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
from typing import Any

from mmbench._io import atomic_write
from mmbench.report.data import DatasetView, ReportData, collect, collect_suites
from mmbench.report.page import render_page
from mmbench.results import ResultLayout

__all__ = [
    "DatasetView",
    "ReportData",
    "collect",
    "collect_suites",
    "render_page",
    "render_report",
    "write_report",
    "write_suites_report",
]


def render_report(
    results_dir: Path, suite: str, expected: list[str] | None = None, suite_spec: Any = None
) -> str:
    """The HTML page of ``suite``'s results; ``suite_spec`` adds its published scores."""
    data = collect(results_dir, suite, expected)
    if suite_spec is not None and data.board is not None:
        from mmbench.leaderboard import published_rows

        data.board.published = published_rows(suite_spec)
        for view in data.datasets:
            view.published = data.board.published.get(view.name, [])
    return render_page(data)


def write_report(
    results_dir: Path,
    suite: str,
    expected: list[str] | None = None,
    path: Path | None = None,
    suite_spec: Any = None,
) -> Path:
    """Write the page to ``path`` (default ``results/<suite>/report.html``); returns the path."""
    text = render_report(results_dir, suite, expected, suite_spec)
    path = Path(path) if path else ResultLayout(results_dir, suite).report_file
    atomic_write(path, lambda f: f.write(text.encode()))
    return path


def write_suites_report(
    results_dir: Path, suites: list[tuple[str, list[str] | None]], path: Path
) -> Path:
    """One page for several suites (``(name, expected datasets)`` each): the leaderboard across
    every dataset they hold, then each dataset; written to ``path``."""
    text = render_page(collect_suites(results_dir, suites))
    atomic_write(Path(path), lambda f: f.write(text.encode()))
    return Path(path)

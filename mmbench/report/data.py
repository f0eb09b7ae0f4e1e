"""What the report shows, gathered from a suite's result files (see :mod:`mmbench.report`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmbench.errors import MMBenchError
from mmbench.leaderboard import Entry, Leaderboard, build_leaderboard
from mmbench.results import AblationReport, ResultLayout, RunResult, read_ablation


@dataclass
class DatasetView:
    """What the page shows of one dataset."""

    name: str
    entries: list[Entry] = field(default_factory=list)
    """Ranked pipelines, best first (empty: no readable result file)."""
    results: dict[str, RunResult] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    """Unreadable files of this dataset, and a missing ablation that a result refers to."""
    ablation: AblationReport | None = None
    published: list[Any] = field(default_factory=list)
    """Scores published elsewhere (:class:`~mmbench.leaderboard.PublishedRow`), from the suite."""


@dataclass
class ReportData:
    suite: str
    board: Leaderboard | None
    datasets: list[DatasetView]
    problems: list[str]
    """Unreadable files that belong to no dataset folder."""


def collect(results_dir: Path, suite: str, expected: list[str] | None = None) -> ReportData:
    """Everything the page shows, from the result files of ``suite`` under ``results_dir``.

    ``expected``: the datasets the suite declares; one without results is listed as missing.
    """
    layout = ResultLayout(results_dir, suite)
    results, problems = layout.load_readable()
    names = sorted({r.dataset.name for r in results} | set(expected or []))
    names += sorted(
        {_dataset_of(p, layout) for p in problems} - set(names) - {None}  # type: ignore[arg-type]
    )
    if not names and not problems:
        raise MMBenchError(
            f"no result files for suite {suite!r} in {layout.root}/; run the suite first, "
            f"e.g. `mmbench run suites/{suite}.yaml --results {results_dir}`"
        )
    board = build_leaderboard(results, suite) if results else None
    views = [_view(name, results, problems, board, layout) for name in names]
    loose = [p for p in problems if _dataset_of(p, layout) is None]
    return ReportData(suite, board, views, loose)


def _view(
    name: str,
    results: list[RunResult],
    problems: list[str],
    board: Leaderboard | None,
    layout: ResultLayout,
) -> DatasetView:
    view = DatasetView(name)
    view.results = {r.pipeline_name: r for r in results if r.dataset.name == name}
    view.entries = board.datasets.get(name, []) if board is not None else []
    view.problems = [p for p in problems if _dataset_of(p, layout) == name]
    ablation_file = layout.ablation_dir(name) / "ablation.json"
    wants_ablation = any(r.ablation is not None for r in view.results.values())
    if ablation_file.exists() or wants_ablation:
        try:
            view.ablation = read_ablation(ablation_file)
        except MMBenchError as exc:
            view.problems.append(str(exc))
    return view


def _dataset_of(problem: str, layout: ResultLayout) -> str | None:
    """The dataset folder a problem line's file lives in (``<root>/<dataset>/<file>: ...``)."""
    root = str(layout.root) + "/"
    if not problem.startswith(root):
        return None
    rest = problem[len(root) :]
    return rest.split("/", 1)[0] if "/" in rest.split(":", 1)[0] else None

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
    published: list[Any] = field(default_factory=list)
    """Scores published elsewhere (:class:`~mmbench.leaderboard.PublishedRow`), from the suite."""
    ablations: dict[str, AblationReport] = field(default_factory=dict)
    """Ablated pipeline -> its ablation report, best-ranked pipeline first."""

    @property
    def ablation(self) -> AblationReport | None:
        """The best-ranked pipeline's ablation (or the only one)."""
        return next(iter(self.ablations.values()), None)


@dataclass
class ReportData:
    suite: str
    board: Leaderboard | None
    datasets: list[DatasetView]
    problems: list[str]
    """Unreadable files that belong to no dataset folder."""
    boards: list[Leaderboard] = field(default_factory=list)
    """Every suite's leaderboard, pooled by the leaderboard across datasets; empty: ``board``'s
    suite alone."""


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


def collect_suites(results_dir: Path, suites: list[tuple[str, list[str] | None]]) -> ReportData:
    """One page's data for several suites (``(name, expected datasets)`` each): every suite's
    datasets, and the leaderboard across all of them. A dataset name two suites share is shown
    as ``suite/dataset``."""
    parts = [collect(results_dir, name, expected) for name, expected in suites]
    if len(parts) == 1:
        return parts[0]
    seen: dict[str, int] = {}
    for part in parts:
        for view in part.datasets:
            seen[view.name] = seen.get(view.name, 0) + 1
    for part in parts:
        for view in part.datasets:
            if seen[view.name] > 1:
                view.name = f"{part.suite}/{view.name}"
    return ReportData(
        " + ".join(part.suite for part in parts),
        None,
        [view for part in parts for view in part.datasets],
        [problem for part in parts for problem in part.problems],
        boards=[part.board for part in parts if part.board is not None],
    )


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
    view.ablations, missing = _ablations(name, view, layout)
    view.problems += missing
    return view


def _ablations(
    name: str, view: DatasetView, layout: ResultLayout
) -> tuple[dict[str, AblationReport], list[str]]:
    """Each ablated pipeline's report: ``ablation/<pipeline>/ablation.json``, or the single
    ``ablation/ablation.json`` of older runs, attributed to the pipeline it names or whose spec
    it ablated (none: it is shown unattributed)."""
    ranked = [e.pipeline for e in view.entries] or sorted(view.results)
    out: dict[str, AblationReport] = {}
    problems: list[str] = []
    for pipeline in ranked:
        path = layout.ablation_dir(name, pipeline) / "ablation.json"
        if path.exists():
            try:
                out[pipeline] = read_ablation(path)
            except MMBenchError as exc:
                problems.append(str(exc))
    legacy = layout.ablation_dir(name) / "ablation.json"
    wanted = [p for p in ranked if view.results[p].ablation is not None and p not in out]
    if legacy.exists() or (wanted and not out):
        try:
            report = read_ablation(legacy)
        except MMBenchError as exc:
            return out, [*problems, str(exc)]
        owner = report.pipeline_name or next(
            (p for p in wanted if view.results[p].pipeline == report.pipeline), None
        )
        if owner is None or owner not in out:
            out[owner or "(unattributed)"] = report
    return dict(sorted(out.items(), key=lambda kv: _position(kv[0], ranked))), problems


def _position(pipeline: str, ranked: list[str]) -> int:
    return ranked.index(pipeline) if pipeline in ranked else len(ranked)


def _dataset_of(problem: str, layout: ResultLayout) -> str | None:
    """The dataset folder a problem line's file lives in (``<root>/<dataset>/<file>: ...``)."""
    root = str(layout.root) + "/"
    if not problem.startswith(root):
        return None
    rest = problem[len(root) :]
    return rest.split("/", 1)[0] if "/" in rest.split(":", 1)[0] else None

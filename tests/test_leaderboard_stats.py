"""Is the first row really ahead: row-level ties per dataset, critical differences across them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import make_result

from mmbench.cli import main
from mmbench.leaderboard import build_leaderboard
from mmbench.leaderboard.aggregate import cross_board, score_matrix
from mmbench.leaderboard.stats import critical_difference
from mmbench.results import RunResult, write_result
from mmbench.results.rows import OutOfFold

N = 200


def with_rows(
    dataset: str, pipeline: str, pred: np.ndarray, labels: np.ndarray, **kw: object
) -> RunResult:
    """A result whose accuracy per fold is that of ``pred``, which it stores as its rows."""
    folds = np.tile(np.arange(2), N // 2)[None, :]
    scores = [float((pred[folds[0] == f] == labels[folds[0] == f]).mean()) for f in (0, 1)]
    r = make_result(dataset, pipeline, scores=scores, metric="accuracy", chance=1 / 3, **kw)  # type: ignore[arg-type]
    r.out_of_fold = OutOfFold.of(labels, folds, pred[None, :], None, 3)
    return r


def noisy(labels: np.ndarray, wrong: float, rng: np.random.Generator) -> np.ndarray:
    flip = rng.random(len(labels)) < wrong
    return np.where(flip, (labels + rng.integers(1, 3, len(labels))) % 3, labels)


def planted(n_datasets: int = 6) -> list[RunResult]:
    """``winner`` right on 95 % of rows, ``default`` and its identical ``twin`` on ~65 %."""
    rng = np.random.default_rng(0)
    out = []
    for d in range(n_datasets):
        labels = rng.integers(0, 3, N)
        same = noisy(labels, 0.35, rng)
        out += [
            with_rows(f"d{d}", "winner", noisy(labels, 0.05, rng), labels),
            with_rows(f"d{d}", "default", same, labels),
            with_rows(f"d{d}", "twin", same.copy(), labels),
            with_rows(f"d{d}", "other", noisy(labels, 0.45, rng), labels),
        ]
    return out


def test_identical_rows_are_tied_and_a_clear_winner_is_not() -> None:
    results = planted(2)
    board = build_leaderboard(results, "toy")
    for entries in board.datasets.values():
        by = {e.pipeline: e for e in entries}
        assert entries[0].pipeline == "winner" and by["winner"].tied_best
        assert by["default"].tied_best is False and by["other"].tied_best is False
    # without the winner, the identical pair ties for first: one is best, the other tied
    board = build_leaderboard([r for r in results if r.pipeline_name != "winner"], "toy")
    for entries in board.datasets.values():
        by = {e.pipeline: e for e in entries}
        assert by["default"].tied_best and by["twin"].tied_best
        assert by["twin"].tie_p == pytest.approx(1.0)


def test_rows_on_other_folds_are_not_compared_and_say_so() -> None:
    results = planted(1)
    moved = next(r for r in results if r.pipeline_name == "other")
    labels, folds, pred, _ = moved.out_of_fold.arrays()  # type: ignore[union-attr]
    moved.out_of_fold = OutOfFold.of(labels, 1 - folds, pred, None, 3)
    entries = build_leaderboard(results, "toy").datasets["d0"]
    other = next(e for e in entries if e.pipeline == "other")
    assert other.tied_best is None
    assert any("not compared" in c and "same folds" in c for c in other.caveats)


def test_critical_difference_separates_the_winner() -> None:
    results = planted(8)
    board = cross_board([build_leaderboard(results, "toy")], results, bootstraps=20)
    pipelines = [s.pipeline for s in board.standings]
    cd = critical_difference(score_matrix(board.cells, board.datasets, pipelines), pipelines)
    assert cd is not None and cd.pvalue < 0.05
    assert min(cd.mean_ranks, key=cd.mean_ranks.__getitem__) == "winner"
    winner = next(s for s in board.standings if s.pipeline == "winner")
    assert winner.tied_best == 8
    wh = board.wilcoxon
    assert wh is not None and min(wh.mean_ranks, key=wh.mean_ranks.__getitem__) == "winner"
    assert wh.pvalues.loc["default", "twin"] == 1.0  # identical scores: never different
    assert all(wh.pvalues.loc["winner", p] < 0.05 for p in ("default", "twin"))


def test_markdown_marks_the_tied_rank(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for r in planted(2):
        if r.pipeline_name != "winner":
            write_result(r, tmp_path)
    assert main(["leaderboard", "toy", "--results", str(tmp_path), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "| 1.5 ≈ | twin |" in out or "| 1.5 ≈ | default |" in out

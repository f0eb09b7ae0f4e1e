"""The cross-dataset leaderboard: Elo with intervals, failures imputed, cost, the long export."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_result

from mmbench.cli import main
from mmbench.errors import MMBenchError
from mmbench.leaderboard import build_leaderboard
from mmbench.leaderboard.aggregate import Standing, cross_board, mark_pareto
from mmbench.leaderboard.export import LONG_COLUMNS
from mmbench.results import RunResult, load_results, write_result


def planted(n_datasets: int = 8, suite: str = "toy") -> list[RunResult]:
    """``winner`` clearly best everywhere; ``twin`` scores exactly as ``default``; ``other`` noise."""
    rnd = random.Random(0)
    rows = []
    for d in range(n_datasets):
        base = rnd.uniform(0.4, 0.6)
        same = base + rnd.uniform(-0.05, 0.05)
        rows += [
            make_result(f"d{d}", "winner", base + 0.25, suite=suite),
            make_result(f"d{d}", "default", same, suite=suite),
            make_result(f"d{d}", "twin", same, suite=suite),
            make_result(f"d{d}", "other", base + rnd.uniform(-0.05, 0.05), suite=suite),
        ]
    return rows


def board_of(results: list[RunResult], **kw: object):
    suites = sorted({r.suite for r in results})
    boards = [build_leaderboard([r for r in results if r.suite == s], s) for s in suites]
    return cross_board(boards, results, bootstraps=60, **kw)  # type: ignore[arg-type]


def test_a_clear_winner_has_an_elo_interval_above_every_other() -> None:
    board = board_of(planted())
    top, *rest = board.standings
    assert top.pipeline == "winner" and top.win_rate == 1.0 and top.mean_rank == 1.0
    assert all(top.elo_low > s.elo_high for s in rest)
    by = {s.pipeline: s for s in board.standings}
    assert by["default"].elo == pytest.approx(1000.0)  # the anchor
    assert by["twin"].elo == pytest.approx(by["default"].elo, abs=1e-3)


def test_anchor_option_moves_the_scale() -> None:
    board = board_of(planted(), anchor="other")
    by = {s.pipeline: s for s in board.standings}
    assert by["other"].elo == pytest.approx(1000.0)
    assert by["winner"].elo > 1000.0
    with pytest.raises(MMBenchError, match="--anchor 'nope' is not a pipeline"):
        board_of(planted(), anchor="nope")


def test_datasets_of_several_suites_are_pooled() -> None:
    board = board_of(planted(4, "one") + planted(4, "two"))
    assert len(board.datasets) == 8 and board.suites == ["one", "two"]
    assert all(s.n_datasets == 8 for s in board.standings)


def test_a_failed_and_a_missing_run_are_imputed_from_chance_with_their_share() -> None:
    results = [
        r for r in planted(4) if not (r.dataset.name == "d0" and r.pipeline_name == "winner")
    ]
    failed = next(r for r in results if r.dataset.name == "d1" and r.pipeline_name == "winner")
    failed.metrics["f1_macro"]["mean"] = float("nan")  # every fold failed
    for f in failed.folds:
        f.error = "RuntimeError: out of memory"
    board = board_of(results)
    winner = next(s for s in board.standings if s.pipeline == "winner")
    assert winner.n_datasets == 2 and winner.imputed_share == pytest.approx(0.5)
    imputed = {(c.dataset, c.imputed): c.score for c in board.cells if c.imputed}
    assert imputed == {("d0", "no result"): 0.2, ("d1", "failed"): 0.2}  # RunResult.chance
    assert winner.win_rate < 1.0  # the imputed chance score loses those datasets' games
    complete = board_of(results, complete_only=True)
    assert complete.dropped == [("toy", "d0"), ("toy", "d1")]
    assert len(complete.datasets) == 2
    assert all(s.imputed_share == 0.0 for s in complete.standings)


def test_pareto_front_of_elo_against_fit_seconds() -> None:
    def s(name: str, elo: float, fit: float | None) -> Standing:
        return Standing(name, elo, elo, elo, 1.0, 0.5, 0.5, 1, 0.0, fit, None, "")

    rows = [s("strong-slow", 1200, 100), s("weak-fast", 900, 1), s("dominated", 950, 150),
            s("equal-slower", 900, 2), s("untimed", 1300, None)]  # fmt: skip
    mark_pareto(rows)
    assert [r.pipeline for r in rows if r.pareto] == ["strong-slow", "weak-fast"]


def test_cost_and_hardware_columns(tmp_path: Path) -> None:
    results = planted(2)
    for r in results:
        r.durations = {
            "total": 10.0 if r.pipeline_name == "winner" else 2.0,
            "predict_ms_per_row": 0.01,
        }
        r.provenance.hardware = {"cpu_count": 8, "device": "cpu", "gpu": None}
    board = board_of(results)
    by = {s.pipeline: s for s in board.standings}
    assert by["winner"].predict_ms_1k == pytest.approx(10.0)
    assert by["winner"].hardware == "8 CPU, no GPU"
    assert by["winner"].pareto and by["default"].pareto and not by["other"].pareto


def test_a_searchs_cost_is_its_whole_job_not_its_best_trials_fit() -> None:
    """A search spent its budget on every trial: its cost beside a fixed pipeline's fit is the
    job's wall time, so a cheap winning trial does not put it on the Pareto front for free."""
    from mmbench.results.schema import BudgetSummary

    results = planted(2)
    for r in results:
        r.durations = {"total": 2.0 if r.pipeline_name == "winner" else 5.0}
        if r.pipeline_name == "winner":  # a search whose best trial fitted in 2 s
            r.budget = BudgetSummary(
                timeout_s=60.0, wall_s=58.0, search_s=50.0, final_s=8.0,
                trials_run=9, trials_cut=0,
            )  # fmt: skip
    by = {s.pipeline: s for s in board_of(results).standings}
    assert by["winner"].fit_s == pytest.approx(58.0)
    assert by["default"].fit_s == pytest.approx(5.0) and by["default"].pareto


def test_long_export_round_trips_through_pandas(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    results = planted(2)
    results[0].folds[1].error = "ValueError: boom"
    results[0].folds[1].metrics = {}
    for r in results:
        write_result(r, tmp_path)
    for fmt in ("parquet", "csv"):
        out = tmp_path / f"long.{fmt}"
        code = main(
            ["leaderboard", "toy", "--results", str(tmp_path), "--long", "--output", str(out)]
        )
        assert code == 0
        frame = (
            pd.read_parquet(out) if fmt == "parquet" else pd.read_csv(out, keep_default_na=False)
        )
        assert list(frame.columns) == list(LONG_COLUMNS)
        assert len(frame) == 2 * 4 * 2  # datasets x pipelines x folds (one metric)
        row = frame[(frame.dataset == "d0") & (frame.pipeline == "winner") & (frame.fold == "r0f1")]
        assert row.error.item() == "ValueError: boom"
        assert row.git_commit.item() == "a" * 40
    back = pd.read_parquet(tmp_path / "long.parquet")
    loaded = load_results(tmp_path, "toy")
    first = next(r for r in loaded if r.dataset.name == "d0" and r.pipeline_name == "default")
    values = back[(back.dataset == "d0") & (back.pipeline == "default")].value.tolist()
    assert values == pytest.approx([f.metrics["f1_macro"] for f in first.folds])


def test_cli_aggregates_several_suites(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for r in planted(3, "one") + planted(3, "two"):
        write_result(r, tmp_path)
    args = ["leaderboard", "one", "two", "--results", str(tmp_path), "--format", "markdown"]
    assert main([*args, "--complete-only"]) == 0
    out = capsys.readouterr().out
    assert "## Across datasets: one, two" in out and "| winner |" in out
    assert "6/6" in out and "default (anchor)" in out

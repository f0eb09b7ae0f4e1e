from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pytest

from mmbench.cli import main
from mmbench.errors import MMBenchError
from mmbench.leaderboard import (
    build_leaderboard,
    load_leaderboard,
    normalized_score,
    render,
    write_leaderboard,
)
from mmbench.results import (
    DatasetInfo,
    FoldRecord,
    Provenance,
    RunResult,
    load_results,
    write_result,
)


def make_result(
    dataset: str,
    pipeline: str,
    mean: float,
    *,
    metric: str = "f1_macro",
    chance: float = 0.2,
    std: float = 0.01,
    test: float | None = None,
    suite: str = "toy",
    created: str = "2025-01-01T00:00:00+00:00",
    commit: str = "a" * 40,
) -> RunResult:
    return RunResult(
        suite=suite,
        dataset=DatasetInfo(
            name=dataset,
            source="synthetic",
            fingerprint="f" * 16,
            n_rows=100,
            n_classes=3,
            classes=["a", "b", "c"],
            modalities=["image", "text"],
        ),
        pipeline_name=pipeline,
        pipeline={"fusion": {"name": "early"}},
        seed=0,
        protocol={"folds": 2, "repeats": 1, "primary_metric": metric},
        metrics={metric: {"mean": mean, "std": std}},
        chance={metric: chance},
        folds=[FoldRecord(key=f"r0f{i}", metrics={metric: mean}, seconds=1.0) for i in range(2)],
        test_metrics=None if test is None else {metric: test},
        provenance=Provenance(
            mmbench_version="0.1.0",
            git_commit=commit,
            python="3.11",
            packages={},
            hardware={},
            created_at=created,
        ),
    )


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    rows = [
        make_result("alpha", "early", 0.80, test=0.78, created="2025-01-02T00:00:00+00:00"),
        make_result("alpha", "late", 0.60),
        make_result("alpha", "xgb", 0.70),
        make_result("beta", "early", 0.50, chance=0.3, commit="b" * 40 + "-dirty"),
        make_result("beta", "late", 0.90, chance=0.3),
        make_result("beta", "xgb", 0.70, chance=0.3, created="2024-12-31T00:00:00+00:00"),
        make_result("gamma", "early", 0.40, metric="log_loss", chance=1.0),
        make_result("gamma", "late", 0.90, metric="log_loss", chance=1.0),
        make_result("gamma", "xgb", 0.60, metric="log_loss", chance=1.0),
    ]
    for r in rows:
        write_result(r, tmp_path)
    return tmp_path


def test_ranking_per_dataset_respects_metric_direction(results_dir: Path) -> None:
    board = build_leaderboard(load_results(results_dir, "toy"), "toy")
    assert [e.pipeline for e in board.datasets["alpha"]] == ["early", "xgb", "late"]
    assert [e.pipeline for e in board.datasets["beta"]] == ["late", "xgb", "early"]
    # log-loss: lower is better
    assert [e.pipeline for e in board.datasets["gamma"]] == ["early", "xgb", "late"]
    assert [e.rank for e in board.datasets["gamma"]] == [1, 2, 3]
    assert board.datasets["alpha"][0].test == pytest.approx(0.78)
    assert board.datasets["alpha"][1].test is None


def test_normalized_score_and_mean_rank(results_dir: Path) -> None:
    board = build_leaderboard(load_results(results_dir, "toy"), "toy")
    alpha = {e.pipeline: e.normalized for e in board.datasets["alpha"]}
    assert alpha["early"] == pytest.approx(1.0)
    assert alpha["late"] == pytest.approx((0.6 - 0.2) / (0.8 - 0.2))
    gamma = {e.pipeline: e.normalized for e in board.datasets["gamma"]}
    assert gamma["early"] == pytest.approx(1.0)
    assert gamma["late"] == pytest.approx((0.9 - 1.0) / (0.4 - 1.0))  # worse than best, > chance
    overall = {o.pipeline: o for o in board.overall}
    assert overall["early"].mean_rank == pytest.approx((1 + 3 + 1) / 3)
    assert overall["xgb"].mean_rank == pytest.approx(2.0)
    assert overall["late"].mean_rank == pytest.approx((3 + 1 + 3) / 3)
    assert [o.pipeline for o in board.overall] == ["early", "xgb", "late"]
    assert overall["early"].n_datasets == 3
    assert math.isnan(normalized_score(0.5, 0.4, 0.4))


def test_ties_share_the_average_rank() -> None:
    board = build_leaderboard(
        [make_result("d", "a", 0.5), make_result("d", "b", 0.5), make_result("d", "c", 0.9)], "toy"
    )
    assert {e.pipeline: e.rank for e in board.datasets["d"]} == {"c": 1, "a": 2.5, "b": 2.5}


def test_markdown_and_csv_output(results_dir: Path) -> None:
    board = load_leaderboard(results_dir, "toy")
    md = render(board, "markdown")
    assert "# Leaderboard: toy" in md
    assert "## gamma — log-loss (lower is better)" in md
    assert "| 1 | early | 0.800 ± 0.010 | 0.780 | 0.200 | 1.000 | 0 |" in md
    rows = list(csv.DictReader(io.StringIO(render(board, "csv"))))
    assert len(rows) == 9 + 3
    first = rows[0]
    assert (first["scope"], first["dataset"], first["pipeline"], float(first["rank"])) == (
        "dataset",
        "alpha",
        "early",
        1.0,
    )
    overall = [r for r in rows if r["scope"] == "overall"]
    assert [r["pipeline"] for r in overall] == ["early", "xgb", "late"]
    assert "early" in render(board, "table")


def test_write_leaderboard_has_generated_header_and_provenance(results_dir: Path) -> None:
    path = write_leaderboard(results_dir, "toy")
    assert path == results_dir / "toy" / "LEADERBOARD.md"
    text = path.read_text()
    assert text.startswith("<!-- generated by `mmbench leaderboard")
    assert "do not edit" in text
    assert "mmbench versions: 0.1.0" in text
    assert "aaaaaaaaaaaa" in text and "bbbbbbbbbbbb-dirty" in text
    assert "2024-12-31T00:00:00+00:00 … 2025-01-02T00:00:00+00:00" in text
    assert load_results(results_dir, "toy")  # the Markdown file is not mistaken for a result


def test_no_result_files_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MMBenchError, match=r"no result files.*mmbench run"):
        load_leaderboard(tmp_path, "toy")


def write_suite(tmp_path: Path, name: str = "toy") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"name: {name}\ndatasets:\n  - name: alpha\n    source: {{kind: synthetic}}\n"
        "    target: label\n    modalities: {text: text}\n"
    )
    return path


def test_cli_leaderboard(results_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = write_suite(results_dir)
    out = results_dir / "board.csv"
    assert (
        main(
            [
                "leaderboard",
                str(suite),
                "--results",
                str(results_dir),
                "--format",
                "csv",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    assert out.read_text().startswith("scope,dataset,pipeline")
    assert main(["leaderboard", str(suite), "--results", str(results_dir), "--write"]) == 0
    assert (results_dir / "toy" / "LEADERBOARD.md").exists()
    assert main(["leaderboard", str(suite), "--results", str(results_dir / "none")]) == 2
    assert "no result files" in capsys.readouterr().err

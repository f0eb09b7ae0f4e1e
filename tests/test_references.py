"""Published scores as reference rows: beside measured rows, marked, never ranked, compared only
on the same metric and test split."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import make_result

from mmbench.cli import main
from mmbench.leaderboard import load_leaderboard, render
from mmbench.report import render_report
from mmbench.results import ResultLayout
from mmbench.suite import load_suite

REFERENCES = [
    {
        "system": "SysA",
        "metric": "accuracy",
        "split": "test",
        "value": 0.91,
        "source": "Paper A, Table 2",
    },
    {"system": "SysB", "metric": "roc_auc", "split": "test", "value": 0.97, "source": "Paper B"},
    {"system": "SysC", "metric": "accuracy", "split": "cv", "value": 0.88, "source": "Paper C"},
]


def suite_with_references(tmp_path: Path) -> Path:
    source = {"kind": "synthetic", "options": {"n_rows": 60}}
    dataset = {
        "name": "d",
        "source": source,
        "test_source": source,
        "target": "label",
        "modalities": {"text": "text"},
        "protocol": {"folds": 2, "primary_metric": "accuracy"},
        "reference": REFERENCES,
    }
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump({"name": "toy", "datasets": [dataset]}))
    return path


def write_results(results: Path) -> None:
    layout = ResultLayout(results, "toy")
    for name, mean, test in (("default", 0.8, 0.85), ("search", 0.9, 0.93)):
        layout.write(make_result("d", name, mean, metric="accuracy", test=test))


def test_published_rows_sit_beside_measured_ones_and_are_never_ranked(tmp_path: Path) -> None:
    path = suite_with_references(tmp_path)
    write_results(tmp_path / "res")
    board = load_leaderboard(tmp_path / "res", "toy", load_suite(path))
    assert [o.pipeline for o in board.overall] == ["search", "default"]  # not ranked among them
    rows = board.published["d"]
    assert [(p.system, p.comparable) for p in rows] == [
        ("SysA", True),
        ("SysB", False),
        ("SysC", False),
    ]
    assert "ranks on accuracy" in rows[1].why and "other folds" in rows[2].why

    md = render(board, "markdown")
    row = "| published | SysA [published: Paper A, Table 2] | published, not measured here | — | 0.910 |"
    assert row in md
    assert "not comparable here: SysB [published: Paper B] roc_auc = 0.97" in md
    csv = render(board, "csv")
    assert 'published,d,"SysA [published: Paper A, Table 2]",accuracy' in csv
    assert "SysA" in render(board, "table")


def test_cli_leaderboard_and_report_show_published_scores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = suite_with_references(tmp_path)
    write_results(tmp_path / "res")
    assert main(["leaderboard", str(path), "--results", str(tmp_path / "res"), "--write"]) == 0
    written = (tmp_path / "res" / "toy" / "LEADERBOARD.md").read_text()
    assert "SysA [published: Paper A, Table 2]" in written
    page = render_report(tmp_path / "res", "toy", ["d"], load_suite(path))
    assert "Published results" in page and "Paper A, Table 2" in page
    assert "no: a cross-validated score on other folds than these" in page

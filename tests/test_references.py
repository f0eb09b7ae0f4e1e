"""Published scores as reference rows: beside measured rows, marked, never ranked, compared only
on the same metric and test split."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import make_result

from mmbench.cli import main
from mmbench.errors import SuiteError
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
        "source": "Paper A",
        "where": "Table 2",
        "resamples": 30,
        "url": "https://example.org/paper-a",
    },
    {
        "system": "SysB",
        "metric": "roc_auc",
        "split": "test",
        "value": 0.97,
        "source": "Paper B",
        "where": "Figure 3",
        "resamples": 1,
    },
    {
        "system": "SysC",
        "metric": "accuracy",
        "split": "cv",
        "value": 0.88,
        "source": "Paper C",
        "where": "Table 1",
        "resamples": 1,
    },
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
    what = "published, not measured here: accuracy, test split, mean of 30 resamples"
    row = f"| published | SysA [published: Paper A, Table 2] | {what} | — | 0.910 |"
    assert row in md
    assert "not comparable here: SysB [published: Paper B, Figure 3] roc_auc = 0.97" in md
    csv = render(board, "csv")
    assert 'published,d,"SysA [published: Paper A, Table 2]",accuracy' in csv
    assert "SysA" in render(board, "table")


def test_each_published_row_shows_where_a_reader_checks_it(tmp_path: Path) -> None:
    """Source, table or figure, split, metric, resamples and link, on every surface."""
    path = suite_with_references(tmp_path)
    write_results(tmp_path / "res")
    board = load_leaderboard(tmp_path / "res", "toy", load_suite(path))
    sysa = "SysA: Paper A, Table 2 (accuracy, test split, mean of 30 resamples)"
    md = render(board, "markdown")
    assert f"- {sysa} — https://example.org/paper-a" in md
    assert "- SysC: Paper C, Table 1 (accuracy, cv split, 1 resample)" in md
    table = render(board, "table")  # rich markup must not swallow the bracketed source
    assert "SysA [published]" in table and "Paper B, Figure 3" in table
    csv = render(board, "csv")
    assert "Paper A, Table 2 (accuracy, test split, mean of 30 resamples)" in csv
    page = render_report(tmp_path / "res", "toy", ["d"], load_suite(path))
    assert '<a href="https://example.org/paper-a">Paper A, Table 2</a>' in page
    assert "<th>resamples</th>" in page


@pytest.mark.parametrize("missing", ["source", "where", "resamples", "metric", "split"])
def test_a_published_score_without_its_source_details_is_rejected(
    tmp_path: Path, missing: str
) -> None:
    path = suite_with_references(tmp_path)
    raw = yaml.safe_load(path.read_text())
    del raw["datasets"][0]["reference"][1][missing]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    assert f"{path}: datasets[0](d).reference[1].{missing}: required key {missing!r}" in str(
        err.value
    )


def test_a_blank_source_or_where_is_rejected(tmp_path: Path) -> None:
    path = suite_with_references(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["datasets"][0]["reference"][0]["where"] = "  "
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SuiteError, match=r"reference\[0\]\.where: must not be blank"):
        load_suite(path)


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


REPO = Path(__file__).resolve().parent.parent


def test_shipped_files_speak_of_the_product_only() -> None:
    """Suites, committed results and leaderboards, the package and its docs say what the
    product does and where a number comes from, never which ticket or request it came from."""
    files = [
        *(REPO / "mmbench").rglob("*.py"),
        *(REPO / "suites").glob("*.yaml"),
        *(p for p in (REPO / "results").rglob("*") if p.suffix in (".json", ".md", ".csv")),
        REPO / "README.md",
        REPO / "ARCHITECTURE.md",
        REPO / "mkdocs.yml",
        *(REPO / "docs").rglob("*.md"),
        *(REPO / "benchmarks" / "results").glob("*.md"),  # published by the docs site
        *(REPO / "benchmarks").glob("*.py"),
        *(REPO / "benchmarks").rglob("*.yaml"),
        REPO / "benchmarks" / "README.md",
    ]
    word = re.compile(r"\bissues?\b", re.IGNORECASE)
    found = [
        f"{path.relative_to(REPO)}:{n}"
        for path in files
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if word.search(line)
    ]
    assert found == []

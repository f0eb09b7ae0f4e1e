"""``mmbench report``: one offline HTML page from the result files, problems shown, not hidden."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from mmbench.cli import main
from mmbench.errors import MMBenchError
from mmbench.report import render_report, write_report

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "results" / "smoke"
SMOKE_PIPELINES = [
    "ensemble",
    "search",
    "xgboost-early-fusion",
    "single-best-modality",
    "late-fusion-mlp",
    "default",
]


@pytest.fixture
def smoke_results(tmp_path: Path) -> Path:
    """A copy of the committed smoke results (tests may break it)."""
    shutil.copytree(SMOKE, tmp_path / "results" / "smoke")
    return tmp_path / "results"


def charts(page: str) -> list[str]:
    return re.findall(r'<figure class="chart" data-chart="([a-z-]+)"><svg', page)


def test_the_smoke_report_is_written_offline_in_seconds(
    smoke_results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = time.perf_counter()
    main(["report", str(REPO / "suites" / "smoke.yaml"), "--results", str(smoke_results)])
    seconds = time.perf_counter() - start
    path = smoke_results / "smoke" / "report.html"
    assert f"wrote {path}" in capsys.readouterr().out
    assert seconds < 15  # a behaviour bound: ~2 s on 2 cores
    page = path.read_text()
    # self-contained: nothing to fetch; one inline script, the leaderboard's column sorting
    assert page.count("<script") == 1 and "<script>" in page
    assert not re.search(r'(src|href)="(?!#|data:)', page)
    rows = re.findall(r'<tr class="leaderboard-row"><td class=name>([^<]+)<', page)
    assert rows == SMOKE_PIPELINES  # peers and references beside the search
    assert charts(page) == [
        "pareto",  # one dataset: too few for a critical-difference diagram, which says so
        "ablation-shapley",
        "ablation-loo",
        "ablation-missing",
        "confusion",
        "roc-pr",
        "history",
    ]
    assert "needs two pipelines on at least five datasets" in page
    assert "30cd34bf6179f38a" in page  # the data fingerprint, in the provenance
    # the committed search and ensemble (schema 3) record their curves and trial history
    assert "records no confusion matrix" not in page and "records no trial history" not in page


def test_missing_datasets_and_broken_files_are_shown(smoke_results: Path) -> None:
    broken = smoke_results / "smoke" / "synthetic" / "broken.json"
    broken.write_text("{not json")
    (smoke_results / "smoke" / "synthetic" / "ablation" / "ablation.json").write_text("[]")
    page = render_report(smoke_results, "smoke", expected=["synthetic", "reviews"])
    assert f"{broken}: cannot read result file" in page
    assert "ablation.json: ablation report schema version None" in page
    assert "missing: no readable result file for dataset &#x27;reviews&#x27;" in page
    assert 'id="dataset-reviews"' in page and 'id="dataset-synthetic"' in page
    with pytest.raises(MMBenchError, match="no result files"):
        write_report(smoke_results, "nothing-here")


def test_curves_and_search_history_of_schema_2_files_are_drawn(smoke_results: Path) -> None:
    path = smoke_results / "smoke" / "synthetic" / "ensemble.json"
    data = json.loads(path.read_text())
    curve = {"x": [0.0, 0.5, 1.0], "y": [0.0, 0.8, 1.0], "area": 0.8}
    data["schema_version"] = 2
    data["diagnostics"] = {
        "classes": ["a", "b"],
        "confusion": [[5, 1], [2, 4]],
        "roc": {"a": curve, "b": curve},
        "pr": {"a": curve, "b": curve},
    }
    data["search"]["history"] = [
        {"number": 0, "state": "complete", "value": 0.7},
        {"number": 1, "state": "pruned", "value": 0.4},
        {"number": 2, "state": "fail", "value": None},
    ]
    path.write_text(json.dumps(data))
    page = render_report(smoke_results, "smoke")
    assert {"confusion", "roc-pr", "history"} <= set(charts(page))
    assert "records no confusion matrix" not in page


def test_the_page_names_the_winner_its_classes_caveats_and_ablated_pipeline(
    smoke_results: Path,
) -> None:
    """What won (head, encoders, members), a one-member ensemble's caveat, per-class
    precision/recall/F1/support with a normalized confusion matrix, declined trials in the
    history, and each ablation under the pipeline it ablates."""
    from mmbench.results import read_ablation

    folder = smoke_results / "smoke" / "synthetic"
    path = folder / "ensemble.json"
    data = json.loads(path.read_text())
    data["schema_version"] = 3
    data["ensemble"]["members"] = data["ensemble"]["members"][:1]
    data["ensemble"]["members"][0]["weight"] = 1.0
    curve = {"x": [0.0, 1.0], "y": [0.0, 1.0], "area": 0.5}
    data["diagnostics"] = {
        "classes": ["a", "b"],
        "confusion": [[6, 2], [1, 3]],
        "roc": {"a": curve, "b": curve},
        "pr": {"a": curve, "b": curve},
        "per_class": {
            "a": {"precision": 0.857, "recall": 0.75, "f1": 0.8, "support": 8},
            "b": {"precision": 0.6, "recall": 0.75, "f1": 0.667, "support": 4},
        },
    }
    data["search"]["history"] = [
        {"number": 0, "state": "complete", "value": 0.7},
        {"number": 1, "state": "pruned", "value": 0.4},
        {"number": 2, "state": "declined", "value": None},
    ]
    path.write_text(json.dumps(data))
    best = json.loads((folder / "search.json").read_text())  # the study's history, both files
    best["search"]["history"] = data["search"]["history"]
    (folder / "search.json").write_text(json.dumps(best))
    legacy = folder / "ablation"  # an older run's single ablation folder (ablation schema 1)
    for part in (legacy / "default").iterdir():
        shutil.move(str(part), str(legacy / part.name))
    (legacy / "default").rmdir()
    report = read_ablation(folder / "ablation" / "ablation.json")
    report.pipeline_name, report.skipped = "search", ["audio"]
    keyed = folder / "ablation" / "search"
    keyed.mkdir()
    (keyed / "ablation.json").write_text(report.model_dump_json())
    page = render_report(smoke_results, "smoke")
    member = data["ensemble"]["members"][0]
    assert f"ensemble of 1: trial {member['trial']} {member['pipeline']['fusion']['name']}" in page
    assert "⚠ one member: the same pipeline as trial" in page
    assert "⚠ optimistic CV: members and weights chosen on these folds" in page
    assert re.search(r'<p class="winner">ensemble of 1: trial \d+ ', page)
    rows = re.findall(r'<tr class="class-row">(.*?)</tr>', page)
    assert rows[0] == (
        "<td class=name>a</td><td>0.857</td><td>0.750</td><td>0.800</td><td>8</td>"
        "<td>0.500</td><td>0.500</td>"
    )
    assert "share of each true class (count)" in page and "0.75" in page
    assert "1 complete, 1 declined, 1 pruned" in page and "declined (1), no fold ran" in page
    assert "Modality ablation of search</h3>" in page
    assert "1 subset(s) not run within the time budget (audio)" in page
    # the older single ablation folder is still shown, under the pipeline it ablated
    assert page.count("<h3>Modality ablation of ") == 2


def test_a_budget_subsample_row_carries_its_caveat_and_is_not_ranked(tmp_path: Path) -> None:
    """The page shows the same caveats as the leaderboard: the budget subsample's, and that its
    CV, on other rows, is not ranked against the full-data rows."""
    from conftest import make_result

    from mmbench.results import ResultLayout

    layout = ResultLayout(tmp_path, "toy")
    layout.write(make_result("d", "default", 0.7))
    searched = make_result("d", "search", 0.9)
    searched.dataset.fingerprint = "s" * 16
    searched.dataset.subsample = {"rows": 40, "of": 100, "seed": 0, "reason": "budget"}
    layout.write(searched)
    page = render_report(tmp_path, "toy", ["d"])
    caveat = '<span class="caveat">⚠ searched on a budget subsample: 40 of 100 training rows'
    assert f"{caveat} (budget)</span>" in page
    assert "⚠ not ranked: CV on other rows than the ranked ones" in page
    row = page[page.index("search<span") :]
    assert row.index("<td>not ranked</td>") < row.index("</tr>")


def test_one_page_across_several_suites_ranks_every_dataset_they_hold(tmp_path: Path) -> None:
    """``mmbench report A B --output page.html``: the leaderboard across both suites' datasets
    (enough of them for the critical-difference diagram), then each dataset."""
    from test_leaderboard_stats import planted

    from mmbench.results import write_result

    results = tmp_path / "results"
    for r in planted(6):  # three datasets in each of two suites
        r.suite = "first" if r.dataset.name in ("d0", "d1", "d2") else "second"
        write_result(r, results)
    page = tmp_path / "page.html"
    args = ["report", "first", "second", "--results", str(results)]
    assert main(args) == 2  # several suites need --output
    assert main([*args, "--output", str(page)]) == 0
    html = page.read_text()
    assert "results/first/" in html and "results/second/" in html
    assert all(f'id="dataset-d{i}"' in html for i in range(6))
    assert 'data-chart="critical-difference"' in html
    assert "No critical-difference diagram" not in html  # six datasets pooled: it is drawn
    one = tmp_path / "one.html"
    assert main(["report", "first", "--results", str(results), "--output", str(one)]) == 0
    assert "No critical-difference diagram" in one.read_text()  # three alone: too few

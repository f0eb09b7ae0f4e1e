"""What people look at, opened in a real headless Chromium as a new user would.

The HTML report renders its leaderboard and every ablation chart without a console error; the
MLflow UI (a local ``mlflow server``) shows the suite's experiment, the study's parent run with
its trial children, and compares a pruned and a complete trial with flat parameter names and the
score Optuna has; ``optuna-dashboard`` lists the study and its trials. Screenshots are kept as
artifacts (``$MMBENCH_SCREENSHOTS``, else a temporary directory printed by the tests).

Chromium comes from the system (Debian's ``chromium``; ``.ci/run`` installs it), driven through
playwright's Python API — playwright never downloads a browser here. Without either, the tests
skip with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port
from test_tracking import running_mlflow_server, running_server

pytestmark = [pytest.mark.browser, pytest.mark.server]

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000
METRIC_VALUES = """name => {
  const link = [...document.querySelectorAll('a')].find(a => a.textContent.trim() === name);
  const cell = link.parentElement, names = cell.parentElement;
  const out = [];
  for (const grid of document.querySelectorAll('.ReactVirtualized__Grid__innerScrollContainer')) {
    if (grid === names) continue;
    for (const c of grid.children) if (c.style.top === cell.style.top) out.push(c.innerText.trim());
  }
  return out;
}"""
"""The compare view's metric table is a virtualized grid: a metric's values are the cells at
the height of its name, one per run in the order compared."""


def chromium_path() -> str | None:
    """``$MMBENCH_CHROMIUM``, else the first Chromium on PATH."""
    if os.environ.get("MMBENCH_CHROMIUM"):
        return os.environ["MMBENCH_CHROMIUM"]
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    return None


@pytest.fixture(scope="module")
def screenshots() -> Path:
    path = Path(os.environ.get("MMBENCH_SCREENSHOTS") or tempfile.mkdtemp(prefix="mmbench-shots-"))
    path.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser screenshots: {path}", file=sys.stderr)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A persistent Chromium context with a fresh profile (no sync, no update checks)."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium on PATH (apt-get install chromium, or set MMBENCH_CHROMIUM)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with tempfile.TemporaryDirectory() as profile, sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 900},
        )
        context.set_default_timeout(TIMEOUT_MS)
        yield context
        context.close()


class Page:
    """A browser tab that remembers its console errors and uncaught exceptions."""

    def __init__(self, context: Any) -> None:
        self.page = context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else 0)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.page.close()


def test_report_page_renders_leaderboard_and_ablation_charts(
    browser: Any, screenshots: Path, tmp_path: Path
) -> None:
    from mmbench.report import write_report

    shutil.copytree(REPO / "results" / "smoke", tmp_path / "smoke")
    path = write_report(tmp_path, "smoke", ["synthetic"])
    with Page(browser) as tab:
        tab.page.goto(path.as_uri())
        rows = tab.page.locator("tr.leaderboard-row")
        assert rows.count() == 6
        assert all(rows.nth(i).is_visible() for i in range(rows.count()))
        charts = tab.page.locator('figure[data-chart^="ablation-"] svg')
        assert charts.count() == 3
        for i in range(charts.count()):
            box = charts.nth(i).bounding_box()
            assert box is not None and box["width"] > 150 and box["height"] > 80
        tab.page.screenshot(path=str(screenshots / "report.png"), full_page=True)
        assert tab.errors == []


def test_mlflow_ui_shows_the_study_and_compares_trials_as_optuna_scores_them(
    browser: Any, screenshots: Path, tracked_search: Any, tmp_path: Path
) -> None:
    import optuna
    from mlflow import MlflowClient

    from mmbench.results import ResultLayout, read_result
    from mmbench.results.identity import identify

    study = optuna.load_study(study_name=tracked_search.study_name, storage=tracked_search.storage)
    pruned = next(t for t in study.trials if t.state.name == "PRUNED")
    complete = study.best_trial
    layout = ResultLayout(tracked_search.results, "tiny-suite")
    best_short = identify(read_result(layout.result_file("tiny", "search"))).short
    exp = MlflowClient(tracked_search.tracking_uri).get_experiment_by_name("mmbench/tiny-suite")
    with (
        running_mlflow_server(tmp_path, tracked_search.tracking_uri) as (url, _),
        Page(browser) as tab,
    ):
        page = tab.page
        page.goto(f"{url}/#/experiments")
        page.get_by_text("mmbench/tiny-suite").first.wait_for()
        # the runs page (MLflow 3.17 opens GenAI views unless asked for "machine_learning")
        page.goto(f"{url}/#/experiments/{exp.experiment_id}?workflowType=machine_learning")
        # the top-level run names its dataset, its kind and what won, without a click
        winner = f"tiny/search: best {best_short}"
        parent = page.locator('[col-id="attributes.`Run Name`"]', has_text=winner).first
        parent.wait_for()
        parent.locator("button").first.click()  # expand the study's parent run
        for t in study.trials:
            page.get_by_text(f"tiny/trial-{t.number:03d}", exact=True).wait_for()
        page.get_by_text(f"tiny/best: {best_short}", exact=True).wait_for()
        page.get_by_text("tiny/ensemble: ", exact=False).first.wait_for()
        page.screenshot(path=str(screenshots / "mlflow-runs.png"))
        ids = [t.user_attrs["mlflow_run_id"] for t in (complete, pruned)]
        page.goto(
            f'{url}/#/compare-runs?runs={json.dumps(ids)}&experiments=["{exp.experiment_id}"]'
        )
        expected = {
            "fusion": ["early", "early"],
            "lr": [str(complete.params["lr"]), str(pruned.params["lr"])],
            "encoder.text": ["tfidf", "tfidf"],
        }
        for name, values in expected.items():  # flat names, one row each, both trials' values
            row = page.locator("tr", has=page.get_by_text(name, exact=True)).first
            assert row.inner_text().split("\t")[1:] == values
        page.locator("a", has_text="cv.f1_macro").first.wait_for()
        assert page.evaluate(METRIC_VALUES, "cv.f1_macro") == [
            f"{complete.value:.3f}",
            f"{pruned.value:.3f}",
        ]
        page.screenshot(path=str(screenshots / "mlflow-compare.png"), full_page=True)


def test_optuna_dashboard_lists_the_study_and_its_trials(
    browser: Any, screenshots: Path, tracked_search: Any, tmp_path: Path
) -> None:
    import optuna

    pytest.importorskip("optuna_dashboard", reason="pip install optuna-dashboard")
    study = optuna.load_study(study_name=tracked_search.study_name, storage=tracked_search.storage)
    port = free_port()
    cmd = [str(Path(sys.executable).with_name("optuna-dashboard")), tracked_search.storage]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with (
        running_server(cmd, url, "/api/studies", tmp_path / "dashboard.log"),
        Page(browser) as tab,
    ):
        page = tab.page
        page.goto(f"{url}/dashboard")
        page.get_by_text(tracked_search.study_name).first.click()
        page.get_by_text("cv.f1_macro").first.wait_for()  # the metric's name, not "Objective 0"
        page.screenshot(path=str(screenshots / "optuna-dashboard.png"))
        page.goto(f"{page.url.rstrip('/')}/trials")
        for t in study.trials:
            page.get_by_text(f"Trial {t.number}", exact=True).first.wait_for()
        page.get_by_text("Pruned", exact=True).first.wait_for()
        first = study.trials[0].user_attrs["mlflow_run_id"]  # its note links the MLflow run
        page.locator(f'a[href$="/runs/{first}"]').first.wait_for()
        page.screenshot(path=str(screenshots / "optuna-trials.png"))


def test_report_names_the_winner_and_shows_its_classes(
    browser: Any, screenshots: Path, tracked_search: Any, tmp_path: Path
) -> None:
    """A new user sees which pipeline won (head and encoders, not only ``search``), its
    caveats, and a per-class precision/recall/F1/support table with the normalized confusion."""
    from mmbench.leaderboard import load_leaderboard
    from mmbench.report import write_report
    from mmbench.results import ResultLayout
    from mmbench.results.identity import identify

    shutil.copytree(tracked_search.results / "tiny-suite", tmp_path / "tiny-suite")
    layout = ResultLayout(tmp_path, "tiny-suite")
    results = {r.pipeline_name: r for r in layout.load()}
    path = write_report(tmp_path, "tiny-suite", ["tiny"])
    with Page(browser) as tab:
        tab.page.goto(path.as_uri())
        best = tab.page.locator("tr.pipeline-row.best")
        name = load_leaderboard(tmp_path, "tiny-suite").datasets["tiny"][0].pipeline
        assert best.locator("td").first.inner_text().startswith(name)
        ident = identify(results[name])
        assert best.locator(".identity").inner_text() == ident.summary
        assert tab.page.locator("p.winner").inner_text() == ident.summary
        caveats = best.locator(".caveat").all_inner_texts()
        assert caveats == [f"⚠ {c}" for c in ident.caveats] and caveats
        classes = tab.page.locator("tr.class-row")
        assert classes.count() == len(results[name].dataset.classes)
        assert all(classes.nth(i).is_visible() for i in range(classes.count()))
        header = tab.page.locator("table.per-class th").all_inner_texts()
        assert header[:5] == ["class", "precision", "recall", "F1", "support"]
        tab.page.locator('figure[data-chart="confusion"] svg').wait_for()
        tab.page.screenshot(path=str(screenshots / "report-winner.png"), full_page=True)
        assert tab.errors == []


def test_mlflow_runs_page_tells_declined_trials_from_pruned_ones(
    browser: Any, screenshots: Path, tracked_search: Any, tmp_path: Path
) -> None:
    """A trial the budget declined before any fold is listed as ``(declined)``, apart from a
    pruned trial (logged by the search's recorder into an experiment of its own)."""
    import optuna

    from mmbench.config import PipelineSpec
    from mmbench.pipeline import FoldResult
    from mmbench.tracking.client import Tracker
    from mmbench.tracking.study import StudyRecorder

    tracker = Tracker(tracked_search.tracking_uri, "mmbench/declined-view")
    parent = tracker.start_run("d/search", {"mmbench.kind": "study"})
    recorder = StudyRecorder(tracker, parent, {"mmbench.dataset": "d"}, pytest.fail, "f1_macro")
    study = optuna.create_study(study_name="declined-view.d")
    pruned, declined = study.ask(), study.ask()
    spec = PipelineSpec(fusion="linear")
    for trial in (pruned, declined):
        recorder.start(trial, spec)
    fold = FoldResult(key="r0f0", metrics={"f1_macro": 0.4})
    recorder.end(pruned, "pruned", spec, [fold], "pruned after fold r0f0")
    recorder.end(declined, "declined", spec, [], "a linear trial takes ~30 s; 9 s left")
    tracker.end_run(parent)
    with (
        running_mlflow_server(tmp_path, tracked_search.tracking_uri) as (url, _),
        Page(browser) as tab,
    ):
        page = tab.page
        page.goto(f"{url}/#/experiments/{tracker.experiment_id}?workflowType=machine_learning")
        row = page.locator('[col-id="attributes.`Run Name`"]', has_text="d/search").first
        row.locator("button").first.click()
        page.get_by_text("d/trial-001 (declined)", exact=True).wait_for()
        page.get_by_text("d/trial-000", exact=True).wait_for()
        page.screenshot(path=str(screenshots / "mlflow-declined.png"))
        page.goto(
            f"{url}/#/experiments/{tracker.experiment_id}/runs/{declined.user_attrs['mlflow_run_id']}"
        )
        page.get_by_text("Declined", exact=False).first.wait_for()
        page.get_by_text("before any fold ran", exact=False).first.wait_for()
        page.screenshot(path=str(screenshots / "mlflow-declined-run.png"))


def test_report_leaderboard_sorts_and_shows_its_diagrams_at_1280_px(
    browser: Any, screenshots: Path, tmp_path: Path
) -> None:
    """The leaderboard across datasets: a table sorted by clicking a header, the
    critical-difference diagram and the Pareto plot drawn, and no horizontal scroll at 1280 px."""
    from test_leaderboard_aggregate import planted

    from mmbench.report import write_report
    from mmbench.results import write_result

    for r in planted(6):
        r.durations = {"total": 40.0 if r.pipeline_name == "winner" else 3.0}
        r.provenance.hardware = {"cpu_count": 16, "device": "cuda", "gpu": "NVIDIA H100 80GB HBM3"}
        write_result(r, tmp_path)
    path = write_report(tmp_path, "toy")
    with Page(browser) as tab:
        tab.page.set_viewport_size({"width": 1280, "height": 900})
        tab.page.goto(path.as_uri())
        names = lambda: tab.page.locator("tr.leaderboard-row td.name").all_inner_texts()  # noqa: E731
        assert names()[0].startswith("winner")
        header = tab.page.locator("table.sortable th", has_text="pipeline")
        header.click()
        order = ["default", "other", "twin", "winner"]  # a name cell ends with its tags
        assert all(n.startswith(p) for n, p in zip(names(), order, strict=True))
        header.click()  # again: the other way
        assert names()[0].startswith("winner")
        for chart in ("critical-difference", "wilcoxon-holm", "pareto"):
            svg = tab.page.locator(f'figure[data-chart="{chart}"] svg')
            assert svg.count() == 1 and svg.is_visible()
            box = svg.bounding_box()
            assert box is not None and box["width"] > 200 and box["height"] > 80
        assert "GPU NVIDIA H100" in tab.page.locator("table.sortable").inner_text()
        overflow = tab.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        tab.page.screenshot(path=str(screenshots / "leaderboard.png"), full_page=True)
        assert tab.errors == []

"""The cross-dataset benchmark's definition and runner (``benchmarks/leaderboard.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _common
import leaderboard

from mmbench.peers import PEERS
from mmbench.pipeline.references import REFERENCE_PIPELINES
from mmbench.suite import load_suite


def test_the_definition_names_valid_suites_datasets_and_rows() -> None:
    definition = leaderboard.load_definition(leaderboard.DEFINITION)
    names = set()
    for entry in definition["suites"]:
        suite = load_suite(leaderboard.REPO / entry["suite"])
        for dataset in entry.get("datasets") or []:
            suite.dataset(dataset)  # raises for an unknown name
        names.add(suite.name)
    assert names == {"fsdd", "basicmotions", "japanesevowels", "real", "adult"}
    assert set(definition["references"]) <= set(REFERENCE_PIPELINES.names())
    assert set(definition["peers"]) == set(PEERS.names()) and definition["search"]


def test_every_row_gets_the_same_budget_and_peers_their_own_interpreter() -> None:
    args = leaderboard.parse(["--allow-dirty", "--peer-python", "/opt/peers/python"])
    definition = leaderboard.load_definition(leaderboard.DEFINITION)
    entry = {"suite": "benchmarks/suites/real.yaml", "datasets": ["emoji"]}
    rows = leaderboard.rows_of(entry, definition, args, entry["suite"])
    assert [r.name for r in rows] == ["search", *definition["references"], *definition["peers"]]
    assert {r.dataset for r in rows} == {"emoji"} and {r.suite for r in rows} == {"real"}
    for row in rows:
        command = row.command
        assert command[command.index("--timeout") + 1] == "120" and "--no-ablate" in command
        peer = row.name in definition["peers"]
        assert (command[0] == "/opt/peers/python") == peer
        assert ("--pipeline" in command) == (row.name != "search")
    assert rows[0].expects == ["search", "ensemble"]


def test_a_smoke_run_cannot_write_to_the_committed_folder(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="smoke run"):
        leaderboard.parse(["--allow-dirty", "--max-rows", "100"])
    args = leaderboard.parse(["--allow-dirty", "--trials", "2", "--results", str(tmp_path)])
    assert args.results == tmp_path.resolve() and args.row_limit == 10 * 120 + 600


def test_a_subsampled_suite_reads_the_same_files(tmp_path: Path) -> None:
    original = leaderboard.REPO / "suites" / "fsdd.yaml"
    copy = leaderboard.subsampled(original, 50, tmp_path)
    assert copy.parent == tmp_path
    ours, theirs = load_suite(copy).datasets[0], load_suite(original).datasets[0]
    assert ours.max_rows == 50 and theirs.max_rows is None
    assert Path(str(ours.source.registry)) == (original.parent / "fsdd.registry.txt").resolve()
    assert ours.test_source is not None and ours.test_source.rows_from_names is not None
    real = yaml.safe_load(
        leaderboard.subsampled(
            leaderboard.REPO / "benchmarks/suites/real.yaml", 9, tmp_path
        ).read_text()
    )
    path = Path(real["datasets"][0]["source"]["path"])
    assert path.is_absolute() and path.parts[-3:] == ("data", "emoji", "train.csv")


def test_a_row_past_its_limit_is_killed_with_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    child = (
        "import pathlib, subprocess, sys, time; "
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        f"pathlib.Path({str(pid_file)!r}).write_text(str(p.pid)); time.sleep(60)"
    )
    rc, wall, _ = leaderboard.execute([sys.executable, "-c", child], 3)
    assert rc is None and 3 <= wall < 20
    grandchild = int(pid_file.read_text())
    for _ in range(50):
        if not alive(grandchild):
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"process {grandchild} started by the row outlived it")


def alive(pid: int) -> bool:
    """Running, not a zombie (a container's init may never reap a killed orphan)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:  # gone meanwhile, or no /proc: kill(pid, 0) said it runs
        return Path("/proc").is_dir() is False


def test_the_benchmark_results_are_outputs_not_code(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    result = tmp_path / "benchmarks/leaderboard/results/adult/adult/search.json"
    result.parent.mkdir(parents=True)
    result.write_text("{}\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    result.write_text('{"a new run": 1}\n')
    assert _common.dirty_files(tmp_path) == []
    (tmp_path / "benchmarks/leaderboard/benchmark.yaml").write_text("suites: []\n")
    assert len(_common.dirty_files(tmp_path) or []) == 1  # the definition is code


def test_the_index_lists_every_suite_run_so_far(tmp_path: Path) -> None:
    """A second invocation with ``--suite`` keeps the first one's suites in the index, and the
    leaderboard across them, its HTML page and the raw results are written beside it."""
    from conftest import make_result

    from mmbench.results import write_result

    for suite in ("adult", "fsdd"):
        for pipeline, mean in (("search", 0.8), ("autogluon", 0.7)):
            write_result(make_result(suite, pipeline, mean, suite=suite), tmp_path)
    for suite, timeout, status in [("adult", 120.0, "ok"), ("fsdd", 60.0, "failed (exit 1)")]:
        args = leaderboard.parse(["--allow-dirty", "--results", str(tmp_path)])
        args.timeout = timeout
        rows = [
            leaderboard.Row(suite, suite, "search", ["mmbench"], ["search"], "ok", 100.0),
            leaderboard.Row(suite, suite, "autogluon", ["mmbench"], ["autogluon"], status, 20.0),
        ]
        leaderboard.write_rows(args, rows, "today")
        leaderboard.write_index(args, ["- header"], {"suites": []})
    index = (tmp_path / "README.md").read_text()
    assert "[adult](adult/BENCHMARK.md)" in index and "| 120 |" in index and "| 2 of 2 |" in index
    assert "[fsdd](fsdd/BENCHMARK.md)" in index and "| 60 |" in index and "| 1 of 2 |" in index
    assert "all suites listed: 4.0 min" in index
    board = (tmp_path / "LEADERBOARD.md").read_text()
    assert "search" in board and "autogluon" in board and "Elo" in board
    assert (tmp_path / "report.html").is_file()
    assert "adult" in (tmp_path / "raw.csv").read_text()


def test_a_failed_row_is_summed_up_by_what_mmbench_said_last() -> None:
    skipped = (
        "Error: skipping peer autogluon: autogluon.tabular is not installed: \n"
        "pip install 'mmbench[peers]'\nno result file written here\n"
    )
    assert leaderboard.last_line(skipped) == (
        "Error: skipping peer autogluon: autogluon.tabular is not installed: "
        "pip install 'mmbench[peers]' no result file written here"
    )
    traceback = "Traceback (most recent call last):\n  ...\nValueError: bad\n\n"
    assert leaderboard.last_line(traceback) == "ValueError: bad"
    assert leaderboard.last_line("") == "no output"
    assert leaderboard.last_line("x\nerror: reading .ts files needs aeon\n").startswith(
        "error: reading"
    )


def test_a_smoke_run_of_one_trial_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--trials must be 2 or more"):
        leaderboard.parse(["--allow-dirty", "--trials", "1", "--results", str(tmp_path)])

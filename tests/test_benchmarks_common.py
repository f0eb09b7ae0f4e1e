"""Benchmark outputs name the committed code that produced them (``benchmarks/_common.py``)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _common


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def test_a_dirty_tree_is_refused_unless_allowed(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(_common, "ALLOW_DIRTY", False)  # restored after the test
    git(tmp_path, "init", "-q")
    for path in ("mmbench/core.py", "benchmarks/bench.py", "benchmarks/results/bench.md"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("x = 1\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    assert _common.dirty_files(tmp_path) == []
    (tmp_path / "benchmarks/results/bench.md").write_text("a new run\n")  # outputs are not code
    assert not _common.git_commit(tmp_path).endswith("+dirty")
    (tmp_path / "mmbench/core.py").write_text("x = 2\n")
    (tmp_path / "mmbench/new.py").write_text("y = 1\n")  # untracked code counts too
    assert len(_common.dirty_files(tmp_path) or []) == 2
    monkeypatch.setattr(_common, "COMMIT", _common.git_commit(tmp_path))
    assert _common.COMMIT.endswith("+dirty")
    with pytest.raises(SystemExit, match="refusing to write results from a dirty tree"):
        _common.parse_args(argparse.ArgumentParser(), [])
    args = _common.parse_args(argparse.ArgumentParser(), ["--allow-dirty"])
    assert args.allow_dirty
    _common.require_clean()  # allowed now


def test_every_mutation_plant_still_matches_the_code_once() -> None:
    """``benchmarks/mutation_check.py`` plants each bug by an exact text replacement: a refactor
    that moves the planted line must update the plant, or the check would test nothing."""
    import mutation_check

    repo = Path(__file__).resolve().parents[1]
    for plant in mutation_check.PLANTS:
        found = (repo / plant.path).read_text().count(plant.old)
        assert found == 1, (plant.name, plant.path, found)
        assert all((repo / t).is_file() for t in plant.tests), plant.name

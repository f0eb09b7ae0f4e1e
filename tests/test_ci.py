"""What CI relies on to run what the README calls tested: ``--strict-skips`` (tests/skip_policy.py)
turns a skip into a failure, and the PostgreSQL fixture finds the server where Debian puts it."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from conftest import postgres_bindir

ROOT = Path(__file__).resolve().parents[1]

INI = """
[pytest]
markers =
    gpu: runs only with a CUDA device
    shared: reads ../shared
"""

TESTS = """
import pytest

def test_runs():
    pass

def test_skips_inside():
    pytest.skip("no frobnicator installed")

@pytest.mark.skipif(True, reason="a skipif that is always true")
def test_skipif():
    pass

@pytest.fixture
def server():
    pytest.skip("server binaries not installed")

def test_needs_server(server):
    pass

@pytest.mark.gpu
def test_gpu():
    pytest.skip("needs CUDA")

@pytest.mark.xfail(reason="known")
def test_xfail():
    assert False
"""


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    pytester.makepyfile(test_inner=TESTS)
    return pytester


def test_without_the_option_skips_stay_skips(inner: pytest.Pytester) -> None:
    result = inner.runpytest("-p", "skip_policy")
    result.assert_outcomes(passed=1, skipped=4, xfailed=1)


def test_a_skip_fails_unless_the_test_has_an_allowed_marker(inner: pytest.Pytester) -> None:
    result = inner.runpytest("-p", "skip_policy", "--strict-skips=gpu", "-rfE")
    # skipif markers and fixtures skip in setup, so those are reported as errors in setup
    result.assert_outcomes(passed=1, failed=1, errors=2, skipped=1, xfailed=1)
    result.stdout.fnmatch_lines(["*skipped under --strict-skips: no frobnicator installed*"])
    result.stdout.fnmatch_lines(["*skipped under --strict-skips: a skipif that is always true*"])
    result.stdout.fnmatch_lines(["*skipped under --strict-skips: server binaries not installed*"])
    result.stdout.fnmatch_lines(["*install what it needs, or mark it with one of: gpu*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_an_empty_value_allows_no_skip(inner: pytest.Pytester) -> None:
    result = inner.runpytest("-p", "skip_policy", "--strict-skips=")
    result.assert_outcomes(passed=1, failed=2, errors=2, xfailed=1)


def test_an_unknown_marker_is_a_usage_error_naming_it(inner: pytest.Pytester) -> None:
    result = inner.runpytest("-p", "skip_policy", "--strict-skips=gpu,sharde")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--strict-skips: 'sharde' is not a registered marker*shared*"])


def test_a_module_that_skips_on_import_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_mod="import pytest\npytest.importorskip('no_such_pkg_zz')\n")
    assert pytester.runpytest("-p", "skip_policy").ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result = pytester.runpytest("-p", "skip_policy", "--strict-skips=gpu")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*skipped while collected, under --strict-skips*no_such_pkg_zz*"])


def test_every_pytest_run_of_ci_and_of_the_peers_session_is_strict() -> None:
    """A new test command in .ci/run without the option would let its skips pass silently."""
    script = (ROOT / ".ci" / "run").read_text()
    runs = [line for line in script.splitlines() if re.match(r"\s*python -m pytest\b", line)]
    assert len(runs) >= 2 and all("--strict-skips" in line for line in runs), runs
    assert "nox -s peers" in script
    assert '"--strict-skips="' in (ROOT / "noxfile.py").read_text()


def executable(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_postgres_binaries_are_found_off_path_newest_major_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Debian's postgresql-<major> puts initdb and pg_ctl only in /usr/lib/postgresql/<major>/bin."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    layout = str(tmp_path / "lib" / "postgresql" / "*" / "bin")
    assert postgres_bindir([layout]) is None
    for major in ("9.6", "15", "16"):
        executable(tmp_path / "lib" / "postgresql" / major / "bin" / "initdb")
        executable(tmp_path / "lib" / "postgresql" / major / "bin" / "pg_ctl")
    executable(tmp_path / "lib" / "postgresql" / "17" / "bin" / "initdb")  # client-only: no pg_ctl
    assert postgres_bindir([layout]) == tmp_path / "lib" / "postgresql" / "16" / "bin"
    on_path = tmp_path / "local" / "bin"
    executable(on_path / "initdb")
    executable(on_path / "pg_ctl")
    monkeypatch.setenv("PATH", os.pathsep.join([str(on_path), str(tmp_path / "empty")]))
    assert postgres_bindir([layout]) == on_path  # what the user put on PATH comes first

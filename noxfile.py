"""Developer sessions: ``nox -s tests lint typecheck`` and the benchmarks."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True
# Sessions run in the current environment: torch is several GB and is already installed there.
nox.options.default_venv_backend = "none"


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (what CI runs)."""
    session.run("pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.run("ruff", "check", "mmbench", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "mmbench", "tests", "benchmarks", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.run("mypy", "mmbench")


@nox.session
def benchmark(session: nox.Session) -> None:
    """Fusion strategies on the embedded suite: quality, cold vs cached trial time."""
    session.run("python", "benchmarks/fusion_cache.py", *session.posargs)


@nox.session
def regress(session: nox.Session) -> None:
    """CI regression gate: rerun the CI suite's fixed configs, compare row by row with the baseline.

    Refresh the baseline after an intended change with ``nox -s regress -- --update``.
    """
    session.run(
        "mmbench", "regress", "suites/ci.yaml",
        "--baseline", "benchmarks/baselines/ci.json",
        *session.posargs,
    )  # fmt: skip


@nox.session
def mutation(session: nox.Session) -> None:
    """Planted bugs in the score-producing modules: which tests catch each (kill rate).

    ``nox -s mutation -- --plant macro-F1`` runs a subset; ``-- --list`` lists the plants.
    """
    session.run("python", "benchmarks/mutation_check.py", *session.posargs)

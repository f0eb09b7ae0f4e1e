"""Developer sessions: ``nox -s tests lint typecheck`` and the benchmarks."""

from __future__ import annotations

import re
from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True
# Sessions run in the current environment: torch is several GB and is already installed there.
nox.options.default_venv_backend = "none"


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (what CI runs)."""
    session.run("pytest", "-q", *session.posargs)


PEERS_UNPINNED = ("pandas", "pyarrow")
"""CI pins that AutoGluon's metadata caps below (pandas<2.4, pyarrow<25): the peers environment
takes what AutoGluon allows for these and the CI pin for every other package."""


@nox.session(venv_backend="venv")
def peers(session: nox.Session) -> None:
    """The AutoGluon peer end to end on a tiny table (``pytest -m peers``), in an environment of
    its own: ``mmbench[peers]`` pulls pandas 2.x, which the pinned CI environment (pandas 3)
    cannot hold. Its tests may not skip (``--strict-skips=``): a peer that silently stopped
    running would pass."""
    constraints = Path(session.create_tmp()) / "constraints-peers.txt"
    constraints.write_text(peers_constraints(Path(".ci/constraints.txt").read_text()))
    session.install("-c", str(constraints), "-e", ".[peers]", "pytest", "pytest-timeout")
    session.run(
        "pytest", "-q", "-p", "no:cacheprovider", "-m", "peers", "--strict-skips=",
        "tests/test_peers.py", *session.posargs,
    )  # fmt: skip


def peers_constraints(pinned: str) -> str:
    """``pinned`` (a constraints file) without the lines of :data:`PEERS_UNPINNED`, and with
    ``xgboost-cpu`` (AutoGluon's xgboost extra) at the ``xgboost`` pin: both install the module
    ``xgboost``, so two versions would overwrite each other's files."""

    def name(line: str) -> str:
        return re.split(r"[=<>!~ ;\[]", line.strip(), maxsplit=1)[0].lower().replace("_", "-")

    lines = [line for line in pinned.splitlines() if name(line) not in PEERS_UNPINNED]
    xgboost = [line for line in lines if name(line) == "xgboost"]
    lines += [line.replace("xgboost", "xgboost-cpu", 1) for line in xgboost]
    return "\n".join(lines) + "\n"


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

"""Helpers shared by the benchmark scripts: Markdown tables, machine facts, result files.

The scripts are thin: they call the library and only format what it measured. Each prints its
tables to stdout and writes the same text, with the machine, the commit and the command line, to
``benchmarks/results/<name>.md``.

A published figure must be traceable to committed code, so a script refuses to run (and
:func:`emit` to write) while the code it measures — ``mmbench/``, the benchmark scripts, the
suites, ``pyproject.toml`` — has uncommitted changes, unless ``--allow-dirty`` is given; the
output then records the commit as ``<sha>+dirty``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SUITE = REPO / "suites" / "smoke.yaml"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub Markdown table; floats are printed as given by the caller (pre-formatted)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> str:
    """One line: cores, CPU model, GPU (if torch sees one), load average, Python."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPU cores ({cpu_model()}), {gpu}, load average {load}, "
        f"Python {platform.python_version()}, torch {torch.__version__}"
    )


CODE_PATHS = (
    "mmbench",
    "benchmarks",
    "suites",
    "pyproject.toml",
    ":(exclude)benchmarks/results",  # what the scripts write
    ":(exclude)benchmarks/leaderboard/results",
    ":(exclude)benchmarks/data",
)
"""What a benchmark's figures depend on (git pathspecs): its outputs are not code."""


def dirty_files(root: Path = REPO) -> list[str] | None:
    """Uncommitted changes (untracked files included) to :data:`CODE_PATHS` under ``root``, as
    ``git status --porcelain`` lines; None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", *CODE_PATHS],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return [line for line in out.splitlines() if line.strip()]


def git_commit(root: Path = REPO) -> str:
    """HEAD of the repository, short, with ``+dirty`` when the measured code differs from it."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=7", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("+dirty" if dirty_files(root) else "")


COMMIT = git_commit()  # at import: the code the benchmark runs, even if HEAD moves meanwhile
ALLOW_DIRTY = False


def require_clean(allow_dirty: bool = False) -> None:
    """Exit (status 1, naming the changes) when the measured code has uncommitted changes,
    unless allowed."""
    if allow_dirty or ALLOW_DIRTY or not COMMIT.endswith("+dirty"):
        return
    changes = "\n".join(f"  {line}" for line in (dirty_files() or [])[:20])
    raise SystemExit(
        f"benchmarks: refusing to write results from a dirty tree (HEAD {COMMIT}):\n{changes}\n"
        "commit first so every figure names the code that produced it, or pass --allow-dirty "
        "(the output then records the commit as +dirty)"
    )


def parse_args(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None = None, *, check: bool = True
) -> argparse.Namespace:
    """``parser.parse_args`` with ``--allow-dirty`` added; refuses a dirty tree up front (before
    a long run) unless ``check`` is False (e.g. a child process that writes no result)."""
    global ALLOW_DIRTY
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="run and write results even with uncommitted code (recorded as <sha>+dirty)",
    )
    args = parser.parse_args(argv)
    ALLOW_DIRTY = args.allow_dirty
    if check:
        require_clean()
    return args


def emit(name: str, title: str, body: str) -> Path:
    """Print ``body`` and write it, with date, machine and command, to ``results/<name>.md``
    (refused from a dirty tree unless ``--allow-dirty``: :func:`require_clean`)."""
    print(body, flush=True)
    require_clean()
    command = "python " + shlex.join([os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]])
    header = (
        f"# {title}\n\n"
        f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}\n"
        f"- machine: {machine()}\n"
        f"- mmbench commit: {COMMIT}\n"
        f"- command: `{command}`\n\n"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text(header + body + "\n")
    print(f"\nwrote {path.relative_to(REPO)}", file=sys.stderr)
    return path


def oracle_f1(labels: Any, proba: Any) -> float | None:
    """Two classes: the best macro-F1 any threshold on P(class 1) reaches on these rows, chosen
    on them — not a result, a ceiling on what a decision rule can add to ``proba``; None for
    more classes."""
    import numpy as np
    from sklearn.metrics import f1_score

    proba = np.asarray(proba)
    if proba.ndim != 2 or proba.shape[1] != 2:
        return None
    cuts = np.unique(np.quantile(proba[:, 1], np.linspace(0.01, 0.99, 197)))
    return float(max(f1_score(labels, proba[:, 1] >= c, average="macro") for c in cuts))


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def mean_std(summary: dict[str, dict[str, float]], metric: str) -> str:
    stats = summary.get(metric, {})
    return f"{stats.get('mean', float('nan')):.3f} ± {stats.get('std', float('nan')):.3f}"

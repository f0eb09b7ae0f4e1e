"""Helpers shared by the benchmark scripts: Markdown tables, machine facts, result files.

The scripts are thin: they call the library and only format what it measured. Each prints its
tables to stdout and writes the same text, with the machine and the command line, to
``benchmarks/results/<name>.md``.
"""

from __future__ import annotations

import os
import platform
import shlex
import statistics
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


def git_commit() -> str:
    """HEAD of the repository, short, with ``+dirty`` when tracked library files differ from it."""
    from mmbench._io import git_commit as full_commit

    commit = full_commit(["mmbench"])
    if commit is None:
        return "unknown"
    return commit[:7] + ("+dirty" if commit.endswith("-dirty") else "")


COMMIT = git_commit()  # at import: the code the benchmark runs, even if HEAD moves meanwhile


def emit(name: str, title: str, body: str) -> Path:
    """Print ``body`` and write it, with date, machine and command, to ``results/<name>.md``."""
    print(body, flush=True)
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


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def mean_std(summary: dict[str, dict[str, float]], metric: str) -> str:
    stats = summary.get(metric, {})
    return f"{stats.get('mean', float('nan')):.3f} ± {stats.get('std', float('nan')):.3f}"

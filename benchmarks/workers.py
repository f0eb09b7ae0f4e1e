"""Trials per minute with 1 and 2 workers on one study, and SQLite vs PostgreSQL storage.

Each configuration runs ``mmbench run SUITE --workers N --storage URL`` (a fresh study, no
tracking) on a small generated dataset whose trials take about a second, and reads the search's
span from the study itself (first trial start to last trial end), so process start-up and the
final model are not counted. PostgreSQL needs ``--postgres URL`` (e.g. a throwaway local cluster).

    python benchmarks/workers.py [--trials 24] [--postgres postgresql+psycopg2://...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import emit, parse_args, table

SUITE = Path(__file__).parent / "suites" / "workers.yaml"


def measure(
    suite: Path, storage: str, workers: int, trials: int, results: Path, extra: tuple = ()
) -> dict:
    import optuna

    from mmbench.search.coordination import counts

    start = time.perf_counter()
    cmd = [sys.executable, "-m", "mmbench.cli", "run", str(suite), "--workers", str(workers)]
    cmd += ["--trials", str(trials), "--storage", storage, "--results", str(results)]
    cmd += ["--no-track", "--no-ablate", "--quiet", *extra]
    subprocess.run(cmd, check=True, capture_output=True)
    wall = time.perf_counter() - start
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    study = optuna.load_study(study_name=sorted(names)[-1], storage=storage)
    ran = [t for t in study.get_trials() if counts(t)]
    span = (
        max(t.datetime_complete for t in ran) - min(t.datetime_start for t in ran)
    ).total_seconds()
    return {"trials": len(ran), "span": span, "wall": wall, "per_min": 60 * len(ran) / span}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--postgres", help="a PostgreSQL URL to compare with SQLite")
    args = parse_args(parser)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        suite = SUITE
        storages = [("SQLite", None)] + ([("PostgreSQL", args.postgres)] if args.postgres else [])
        for label, url in storages:
            for workers in (1, 2):
                results = Path(tmp) / f"{label}-{workers}"
                storage = url or f"sqlite:///{results / 'optuna.db'}"
                results.mkdir()
                m = measure(suite, storage, workers, args.trials, results)
                print(label, workers, m, flush=True)
                rows.append(
                    [label, workers, m["trials"], f"{m['span']:.1f}", f"{m['per_min']:.1f}",
                     f"{m['wall']:.1f}"]
                )  # fmt: skip
    body = table(
        ["storage", "workers", "trials", "search span s", "trials/min", "command wall s"], rows
    )
    print(body)
    emit("workers", "Workers and storage: trials per minute on one study", body)


if __name__ == "__main__":
    main()

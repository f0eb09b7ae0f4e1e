"""Does one budget bound the whole job, ablation included? (the budget contract)

Runs ``mmbench run SUITE --trials T --timeout B`` as a user would (a fresh process, a scratch
results folder, MLflow store and — unless ``--warm`` — feature cache), measures the process's
wall time and reads where the job's time went from the result file's ``budget``. Passes when
the whole command takes at most ``1.1 × B`` with the ablation on.

    python benchmarks/budget_wall.py [--suite suites/smoke.yaml] [--trials 6] [--timeout 120]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, emit, table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, default=REPO / "suites" / "smoke.yaml")
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--warm", type=Path, help="an existing feature cache to reuse")
    parser.add_argument("--keep", type=Path, help="scratch folder to use and keep")
    args = parser.parse_args()
    scratch = args.keep or Path(tempfile.mkdtemp(prefix="mmbench-budget-"))
    scratch.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{scratch / 'mlflow.db'}",
        "MMBENCH_CACHE_DIR": str(args.warm or scratch / "cache"),
    }
    mmbench = Path(sys.executable).with_name("mmbench")
    cmd = [str(mmbench), "run", str(args.suite), "--trials", str(args.trials)]
    cmd += ["--timeout", f"{args.timeout:g}", "--results", str(scratch / "results"), "--ablate"]
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=scratch, capture_output=True, text=True)
    wall = time.perf_counter() - start
    (scratch / "run.out").write_text(done.stdout)
    (scratch / "run.err").write_text(done.stderr)
    if done.returncode != 0:
        print(done.stdout, done.stderr, sep="\n")
        return done.returncode
    rows, walls = [], []
    for path in sorted((scratch / "results").glob("*/*/search.json")):
        b = json.loads(path.read_text())["budget"]
        walls.append(b["wall_s"])
        rows.append(
            [
                path.parent.name,
                f"{b['timeout_s']:g}",
                f"{b['wall_s']:.1f}",
                f"{b['search_s']:.1f}",
                f"{b['final_s']:.1f}",
                f"{b['ablation_s'] or 0:.1f} ({b['ablation_reserved_s'] or 0:.0f})",
                str(b["ablation_skipped"]),
            ]
        )
    limit = 1.1 * args.timeout * max(1, len(rows))
    verdict = "PASS" if wall <= limit else "FAIL"
    header = ["dataset", "budget s", "job wall s", "search s (from loading)", "final s"]
    header += ["ablation s (reserved)", "subsets not run"]
    body = (
        f"`mmbench {' '.join(cmd[1:])}`, cold feature cache: {wall:.1f} s for the whole "
        f"command; {wall - sum(walls):.1f} s of it outside the job (start-up, writing, MLflow).\n\n"
        + table(header, rows)
        + f"\n\n{verdict}: {wall:.1f} s wall ≤ 1.1 × budget = {limit:.0f} s"
    )
    emit("budget_wall", "One budget for the whole job, ablation included", body)
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())

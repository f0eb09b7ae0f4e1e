"""Does one budget bound the whole job, ablation included? (issue 22)

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

REPO = Path(__file__).resolve().parent.parent


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
    rows = []
    for path in sorted((scratch / "results").glob("*/*/search.json")):
        budget = json.loads(path.read_text())["budget"]
        rows.append((path.parent.name, budget))
    print(f"`{' '.join(cmd[1:])}` in {scratch}")
    print(
        "| dataset | budget s | process wall s | job wall s | search s | final s | ablation s "
        "(reserved) | subsets cut | outside the job s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, b in rows:
        print(
            f"| {name} | {b['timeout_s']:g} | {wall:.1f} | {b['wall_s']:.1f} | {b['search_s']:.1f} "
            f"| {b['final_s']:.1f} | {b['ablation_s'] or 0:.1f} ({b['ablation_reserved_s'] or 0:.0f}) "
            f"| {b['ablation_skipped']} | {wall - b['wall_s']:.1f} |"
        )
    limit = 1.1 * args.timeout * max(1, len(rows))
    verdict = "PASS" if wall <= limit else "FAIL"
    print(f"{verdict}: {wall:.1f} s wall ≤ 1.1 × budget = {limit:.0f} s")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())

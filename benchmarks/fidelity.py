"""How many configurations does a 120 s search judge on 20,000 rows? (the multi-fidelity rungs)

Runs the default search (`mmbench run` with ``--timeout``, a fresh feature cache, no tracking,
no ablation) on 20,000 generated rows of text + tabular data, once with the multi-fidelity rungs
(``search.rungs: true``, the default) and once without, and counts from each result file's
search history how every trial ended: completed (full CV), pruned by the rung rule, pruned by the
Wilcoxon pruner, declined by the budget check, cut by the deadline. "Evaluated to a decision" =
completed + pruned by a rule (rung or Wilcoxon); declined and cut trials are not.

    python benchmarks/fidelity.py [--rows 20000] [--timeout 120] [--allow-dirty]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from _common import emit, parse_args, table

KINDS = ("completed", "pruned: rung", "pruned: wilcoxon", "declined", "cut by the deadline")


def suite(rows: int, timeout: float, rungs: bool) -> dict[str, Any]:
    tabular = ["num_0", "num_1", "num_2", "num_3", "cat_0", "cat_1"]
    options = {"n_rows": rows, "n_classes": 3, "imbalance": 0.5, "seed": 0}
    dataset = {
        "name": f"synthetic_{'rungs' if rungs else 'full_cv'}",
        "source": {"kind": "synthetic", "options": options},
        "target": "label",
        "modalities": {"text": "text", "tabular": tabular},
        "protocol": {"folds": 5, "primary_metric": "f1_macro"},
        "budget": {"trials": 1000, "timeout_s": timeout},
        "search": {"rungs": rungs},
        "ablation": False,
    }
    return {"name": "fidelity", "seed": 0, "datasets": [dataset]}


def kind(point: Any) -> str:
    """How a trial of the result file's history ended, as one of :data:`KINDS`."""
    outcome = point.outcome or ""
    if point.state == "complete":
        return "completed"
    if point.state == "declined":
        return "declined"
    if outcome.startswith("rung:"):
        return "pruned: rung"
    if outcome.startswith("cut by the deadline"):
        return "cut by the deadline"
    return "pruned: wilcoxon" if point.state == "pruned" else point.state


def run(rows: int, timeout: float, rungs: bool, scratch: Path) -> list[Any]:
    from mmbench.results import ResultLayout, read_result
    from mmbench.run import Reporter, RunOptions, run_suite
    from mmbench.suite import parse_suite

    parsed = parse_suite(suite(rows, timeout, rungs))
    parsed.path = scratch / "fidelity.yaml"
    options = RunOptions(
        results_dir=scratch / "results", cache_dir=scratch / f"cache-{rungs}", track=False
    )
    run_suite(parsed, options, Reporter(enabled=True))
    layout = ResultLayout(scratch / "results", "fidelity")
    return [read_result(layout.result_file(d.name, "search")) for d in parsed.datasets]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parse_args(parser, argv)
    scratch = Path(tempfile.mkdtemp(prefix="mmbench-fidelity-"))
    body = []
    for rungs in (True, False):
        (result,) = run(args.rows, args.timeout, rungs, scratch)
        history = result.search.history if result.search else []
        counts = Counter(kind(p) for p in history)
        decided = counts["completed"] + counts["pruned: rung"] + counts["pruned: wilcoxon"]
        body.append(
            [
                "rungs" if rungs else "full CV only",
                len(history),
                decided,
                *(counts[k] for k in KINDS),
                f"{result.metrics['f1_macro']['mean']:.4f}",
                f"{result.budget.wall_s:.0f}" if result.budget else "",
            ]
        )
    headers = [
        "search",
        "trials",
        "evaluated to a decision",
        *KINDS,
        "best CV F1m",
        "wall s",
    ]
    text = table(headers, body)
    emit("fidelity", f"{args.rows:,} generated rows (text + tabular), {args.timeout:g} s", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

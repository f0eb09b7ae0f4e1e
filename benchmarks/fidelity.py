"""How many configurations does a 120 s search judge and finish on 20,000 rows?

Runs the default search (`mmbench run` with ``--timeout``, a fresh feature cache, no tracking,
no ablation) on 20,000 generated rows of text + tabular data three ways: the defaults (rungs,
then the large-table hold-out protocol: the first of five folds), rungs with every fold
(``protocol.large_table_rows: null``), and every fold without rungs (``search.rungs: false``).
From each result file's search history it counts how every trial ended: completed (a full
evaluation at the protocol's top fidelity), pruned by the rung rule, pruned by the Wilcoxon
pruner, declined by the budget check, cut by the deadline. "Evaluated to a decision" =
completed + pruned by a rule (rung or Wilcoxon); declined and cut trials are not. "Rung above
trial 0": candidates whose rung score beat the first candidate's; "members": trials in the
final model (the ensemble result file).

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


VARIANTS = {
    "rungs + hold-out (default)": (True, 10_000),
    "rungs, every fold": (True, None),
    "every fold, no rungs": (False, None),
}
"""Search variant -> (``search.rungs``, ``protocol.large_table_rows``)."""


def suite(rows: int, timeout: float, variant: str) -> dict[str, Any]:
    rungs, large = VARIANTS[variant]
    tabular = ["num_0", "num_1", "num_2", "num_3", "cat_0", "cat_1"]
    options = {"n_rows": rows, "n_classes": 3, "imbalance": 0.5, "seed": 0}
    dataset = {
        "name": f"synthetic_{list(VARIANTS).index(variant)}",
        "source": {"kind": "synthetic", "options": options},
        "target": "label",
        "modalities": {"text": "text", "tabular": tabular},
        "protocol": {"folds": 5, "primary_metric": "f1_macro", "large_table_rows": large},
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


def run(rows: int, timeout: float, variant: str, scratch: Path) -> tuple[Any, Any]:
    """The search and ensemble result files of one variant's job."""
    from mmbench.results import ResultLayout, read_result
    from mmbench.run import Reporter, RunOptions, run_suite
    from mmbench.suite import parse_suite

    parsed = parse_suite(suite(rows, timeout, variant))
    parsed.path = scratch / "fidelity.yaml"
    name = parsed.datasets[0].name
    options = RunOptions(
        results_dir=scratch / "results", cache_dir=scratch / f"cache-{name}", track=False
    )
    run_suite(parsed, options, Reporter(enabled=True))
    layout = ResultLayout(scratch / "results", "fidelity")
    ensemble = layout.result_file(name, "ensemble")
    return (
        read_result(layout.result_file(name, "search")),
        read_result(ensemble) if ensemble.exists() else None,
    )


def above_first(history: list[Any]) -> int:
    """Candidates whose rung score beat the first candidate's (0 without rungs)."""
    scores = [p.rung_score for p in sorted(history, key=lambda p: p.number)]
    if not scores or scores[0] is None:
        return 0
    return sum(1 for s in scores[1:] if s is not None and s > scores[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parse_args(parser, argv)
    scratch = Path(tempfile.mkdtemp(prefix="mmbench-fidelity-"))
    body = []
    for variant in VARIANTS:
        result, ensemble = run(args.rows, args.timeout, variant, scratch)
        history = result.search.history if result.search else []
        counts = Counter(kind(p) for p in history)
        decided = counts["completed"] + counts["pruned: rung"] + counts["pruned: wilcoxon"]
        members = len(ensemble.ensemble.members) if ensemble and ensemble.ensemble else 1
        body.append(
            [
                variant,
                len(history),
                decided,
                *(counts[k] for k in KINDS),
                above_first(history),
                members,
                f"{result.metrics['f1_macro']['mean']:.4f} ({len(result.folds)} folds)",
                f"{ensemble.metrics['f1_macro']['mean']:.4f}" if ensemble else "",
                f"{result.budget.wall_s:.0f}" if result.budget else "",
            ]
        )
    headers = [
        "search",
        "trials",
        "evaluated to a decision",
        *KINDS,
        "rung above trial 0",
        "members",
        "best CV F1m",
        "final CV F1m",
        "wall s",
    ]
    text = table(headers, body)
    emit("fidelity", f"{args.rows:,} generated rows (text + tabular), {args.timeout:g} s", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

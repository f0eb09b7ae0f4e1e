"""mmbench against its peers on real data: same folds, same held-out rows, one run.

For every dataset of a suite (default ``benchmarks/suites/real.yaml``; run
``benchmarks/real_data.py`` first), runs ``mmbench run`` with a wall-clock budget per dataset —
the Optuna search, then its final ensemble — and then each peer (``tfidf-xgboost``,
``autogluon`` when ``mmbench[peers]`` is installed) as a reference pipeline on the same folds.
Every job writes its result file; the table is built from those files only: held-out macro-F1
and ROC-AUC, CV macro-F1, the decision rule, wall seconds against the budget, and trials run.
Every row's labels — mmbench's and each peer's, in CV and on the held-out rows — are decided by
the same rule, fitted on that row's own out-of-fold probabilities
(:func:`mmbench.evaluation.decide`): arg-max, or class weights adopted when they beat it on folds
they were not tuned on.

The feature cache starts empty (a fresh temporary directory) unless ``--cache`` is given, so
encoding is paid inside the budget, as on a user's first run.

    python benchmarks/side_by_side.py [--suite PATH] [--budget 120] [--peer NAME ...] [--name real]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import REPO, emit, parse_args, table

SUITE = REPO / "benchmarks" / "suites" / "real.yaml"
PEERS = ["tfidf-xgboost", "autogluon"]
HEADERS = [
    "dataset",
    "candidate",
    "held-out macro-F1",
    "held-out ROC-AUC",
    "CV macro-F1",
    "decision",
    "wall s (search + final)",
    "budget s",
    "trials",
]


def run(
    suite_path: Path,
    budget: float,
    peers: list[str],
    cache: Path,
    results: Path,
    datasets: list[str] | None = None,
    search: bool = True,
) -> list[Any]:
    """The suite's search (with its ensemble; unless not ``search``), then each peer, every
    result written to files; ``datasets``: only these of the suite. Returns the outcomes
    (:class:`mmbench.run.DatasetOutcome`, one per job, failures included)."""
    from mmbench.run import Reporter, RunOptions, run_suite
    from mmbench.suite import load_suite

    suite = load_suite(suite_path)
    common: dict[str, Any] = {
        "results_dir": results,
        "cache_dir": cache,
        "track": False,
        "timeout": budget,
        "progress": False,
        "datasets": datasets,
    }
    reporter = Reporter(enabled=True)
    outcomes = run_suite(suite, RunOptions(**common), reporter) if search else []
    if peers:
        outcomes += run_suite(suite, RunOptions(**common, pipelines=peers), reporter)
    return outcomes


def rows(results: Path, suite: str) -> list[list[str]]:
    from mmbench.results import ResultLayout

    order = {"ensemble": 0, "search": 1}
    found = sorted(
        ResultLayout(results, suite).load(),
        key=lambda r: (r.dataset.name, order.get(r.pipeline_name, 2), r.pipeline_name),
    )
    return [_row(r) for r in found]


def _row(r: Any) -> list[str]:
    test = r.test_metrics or {}
    name = {"ensemble": "mmbench (final ensemble)", "search": "mmbench (best trial)"}
    budget = r.budget
    return [
        r.dataset.name,
        name.get(r.pipeline_name, r.pipeline_name),
        f"{test.get('f1_macro', float('nan')):.4f}",
        f"{test.get('roc_auc', float('nan')):.4f}",
        f"{r.metrics['f1_macro']['mean']:.3f} ± {r.metrics['f1_macro']['std']:.3f}",
        r.decision.short() if r.decision is not None else "not recorded",
        f"{budget.wall_s:.0f} ({budget.search_s:.0f} + {budget.final_s:.0f})"
        if budget
        else f"{r.durations['wall']:.0f}",
        f"{budget.timeout_s:.0f}" if budget and budget.timeout_s else "",
        f"{budget.trials_run} ({budget.trials_cut} cut)" if budget else "",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, default=SUITE)
    parser.add_argument("--budget", type=float, default=120.0, help="seconds per dataset job")
    parser.add_argument("--peer", action="append", dest="peers", help="default: all peers")
    parser.add_argument("--cache", type=Path, help="feature cache (default: a fresh empty one)")
    parser.add_argument("--name", default="side_by_side", help="benchmarks/results/<name>.md")
    parser.add_argument("--results", type=Path, help="keep the result files here (default: temp)")
    args = parse_args(parser, argv)
    if not args.suite.exists():
        print(f"{args.suite} not found", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or Path(tmp) / "cache"
        results = args.results or Path(tmp) / "results"
        run(args.suite, args.budget, args.peers or PEERS, cache, results)
        from mmbench.suite import load_suite

        body = table(HEADERS, rows(results, load_suite(args.suite).name))
    note = (
        f"\n\nBudget {args.budget:.0f} s per dataset job, cold feature cache. Peers: CV folds get "
        "budget/folds each, the held-out model the whole budget; their wall includes both. "
        "decision: every row's rule, fitted on its own out-of-fold probabilities (tuned: "
        "per-class weights, applied to its held-out rows)."
    )
    emit(args.name, "mmbench vs peers on real data (held-out rows)", body + note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Command line: a thin layer over :mod:`mmbench.runner` and friends.

Imports are deferred to the command being run so that ``mmbench --help`` stays instant.
User errors (:class:`~mmbench.errors.MMBenchError`) print one clear message and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmbench import __version__
from mmbench.errors import MMBenchError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmbench",
        description="Benchmark multi-modal classification pipelines on declarative suites.",
    )
    parser.add_argument("--version", action="version", version=f"mmbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a suite: CV-evaluate (or search) every dataset")
    run.add_argument("suite", type=Path, help="suite YAML file, e.g. suites/smoke.yaml")
    run.add_argument("--dataset", action="append", help="only this dataset (repeatable)")
    run.add_argument("--trials", type=int, help="override the suite's trial budget")
    run.add_argument("--timeout", type=float, help="search wall-clock budget per dataset, s")
    run.add_argument("--storage", help="Optuna storage URL (default: SQLite beside results)")
    run.add_argument("--resume", action="store_true", help="continue an interrupted study")
    run.add_argument("--results", type=Path, default=Path("results"), help="results directory")
    run.add_argument("--tracking-uri", help="MLflow URI (default $MLFLOW_TRACKING_URI or sqlite)")
    run.add_argument("--no-track", action="store_true", help="do not log to MLflow")
    run.add_argument("--no-cache", action="store_true", help="do not use the feature cache")
    run.add_argument("--cache-dir", type=Path, help="feature cache directory")
    run.add_argument("--quiet", action="store_true", help="no progress output")

    val = sub.add_parser("validate", help="check a suite file without running it")
    val.add_argument("suite", type=Path)
    val.add_argument("--data", action="store_true", help="also load and validate every dataset")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(COMMANDS[args.command](args) or 0)
    except MMBenchError as exc:
        print(f"mmbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mmbench: interrupted; finished results are kept", file=sys.stderr)
        return 130


def cmd_run(args: argparse.Namespace) -> int:
    from mmbench.runner import Reporter, RunOptions, run_suite
    from mmbench.suite import load_suite

    suite = load_suite(args.suite)
    options = RunOptions(
        results_dir=args.results,
        tracking_uri=args.tracking_uri,
        track=not args.no_track,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        datasets=args.dataset,
        trials=args.trials,
        timeout=args.timeout,
        storage=args.storage,
        resume=args.resume,
        progress=not args.quiet,
    )
    outcomes = run_suite(suite, options, Reporter(enabled=not args.quiet))
    print_summary(outcomes)
    return 1 if any(o.error for o in outcomes) else 0


def print_summary(outcomes: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="mmbench results")
    for col in (
        "dataset",
        "rows",
        "modalities",
        "primary",
        "CV mean ± std",
        "chance",
        "ROC-AUC",
        "PR-AUC",
        "time s",
        "result",
    ):
        table.add_column(col)
    for o in outcomes:
        if o.result is None:
            table.add_row(o.name, *[""] * 8, f"[red]failed: {o.error}[/]")
            continue
        r = o.result
        name, mean, std = r.primary()
        table.add_row(
            o.name,
            str(r.dataset.n_rows),
            ",".join(r.dataset.modalities),
            name,
            f"{mean:.3f} ± {std:.3f}",
            f"{r.chance.get(name, float('nan')):.3f}",
            f"{r.metrics.get('roc_auc', {}).get('mean', float('nan')):.3f}",
            f"{r.metrics.get('pr_auc', {}).get('mean', float('nan')):.3f}",
            f"{r.durations.get('wall', 0):.1f}",
            str(o.path),
        )
    Console().print(table)
    for o in outcomes:
        for w in o.warnings:
            print(f"warning: {o.name}: {w}", file=sys.stderr)


def cmd_validate(args: argparse.Namespace) -> int:
    from mmbench.suite import load_suite

    suite = load_suite(args.suite)
    print(f"{args.suite}: suite {suite.name!r} is valid ({len(suite.datasets)} datasets)")
    if args.data:
        from mmbench.data import load_table

        for spec in suite.datasets:
            table = load_table(spec, suite.root, seed=suite.seed)
            print(
                f"  {spec.name}: {len(table)} rows, classes {table.classes}, "
                f"modalities {table.modalities}"
            )
    return 0


COMMANDS = {"run": cmd_run, "validate": cmd_validate}


if __name__ == "__main__":
    sys.exit(main())

"""``run``, ``worker``, ``finalize`` and ``track``: commands that run a suite or log it."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any

from mmbench.cli._common import MIRROR_HELP, command, positive, quiet_library_progress, suite_name
from mmbench.errors import MMBenchError

# a run's options that ``worker``, ``finalize`` and ``track`` do not take
_RUN_ONLY = ("help", "workers", "pipeline", "resume", "cluster", "worker_threads", "worker_gpus")


def add_parsers(sub: Any) -> None:
    run = command(
        sub,
        "run",
        "run a suite: cross-validate (or search) every dataset",
        "mmbench run suites/smoke.yaml   # offline, about a minute on 2 cores",
    )
    run.add_argument("suite", type=Path, help="suite YAML file, e.g. suites/smoke.yaml")
    run.add_argument("--dataset", action="append", help="only this dataset (repeatable)")
    run.add_argument("--trials", type=positive(int), help="override the suite's trial budget")
    run.add_argument(
        "--timeout", type=positive(float), help="search wall-clock budget per dataset, s"
    )
    run.add_argument("--storage", help="Optuna storage URL (default: SQLite beside results)")
    run.add_argument(
        "--artifacts",
        metavar="URL",
        default=os.environ.get("MMBENCH_ARTIFACTS"),
        help="trial store every worker and the finalizer reach: a folder or an fsspec URL "
        "(s3://bucket/prefix; default $MMBENCH_ARTIFACTS, else the results folder)",
    )
    run.add_argument("--resume", action="store_true", help="continue an interrupted study")
    run.add_argument(
        "--workers",
        type=positive(int),
        default=1,
        help="search with N local worker processes on each study, then finalize once",
    )
    run.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="run the --workers as tasks on a Dask cluster: 'local' or a scheduler address "
        "(tcp://host:8786); needs mmbench[cluster]",
    )
    run.add_argument(
        "--worker-threads", type=positive(int), help="CPU threads per worker (OMP/MKL/torch)"
    )
    run.add_argument(
        "--worker-gpus",
        type=int,
        default=0,
        help="GPUs per worker on a Dask cluster (resource GPU)",
    )
    run.add_argument("--results", type=Path, default=Path("results"), help="results directory")
    run.add_argument("--tracking-uri", help="MLflow URI (default $MLFLOW_TRACKING_URI or sqlite)")
    run.add_argument("--no-track", action="store_true", help="do not log to MLflow")
    run.add_argument("--no-cache", action="store_true", help="do not use the feature cache")
    run.add_argument("--cache-dir", type=Path, help="feature cache directory")
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.add_argument(
        "--pipeline",
        action="append",
        default=[],
        metavar="NAME",
        help="run a named reference pipeline instead of the suite's own (repeatable): "
        "early-fusion-mlp, xgboost-early-fusion, late-fusion-mlp, single-best-modality; or a "
        "peer tool on the same folds: tfidf-xgboost, autogluon (needs mmbench[peers])",
    )
    run.add_argument("--mirror", help=MIRROR_HELP)
    run.add_argument(
        "--ablate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="modality ablations after the run (default: as the suite says)",
    )

    common = [a for a in run._actions if a.dest not in _RUN_ONLY and a.option_strings]
    storage = "--storage postgresql://user@db/mmbench"
    worker = command(
        sub,
        "worker",
        "join each dataset's study in a shared --storage; the last worker finalizes it",
        f"mmbench worker suites/smoke.yaml {storage}   # on each machine",
    )
    final = command(
        sub,
        "finalize",
        "write the results of each dataset's latest study (refit, ensemble, held-out)",
        f"mmbench finalize suites/smoke.yaml {storage}",
    )
    for parser in (worker, final):
        parser.add_argument("suite", type=Path, help="suite YAML file")
        for action in common:
            parser._add_action(action)
    track = command(
        sub,
        "track",
        "log to MLflow what a run could not (server down, --no-track); idempotent",
        "mmbench track suites/smoke.yaml --tracking-uri http://127.0.0.1:5000",
    )
    track.add_argument("suite", type=Path, help="suite YAML file")
    for action in common:
        if action.dest in ("results", "storage", "tracking_uri"):
            track._add_action(action)
    worker.add_argument("--worker-index", type=int, default=-1, help=argparse.SUPPRESS)
    worker.add_argument(
        "--finalize", choices=["claim", "never"], default="claim", help=argparse.SUPPRESS
    )
    worker.add_argument("--study", action="append", default=[], help=argparse.SUPPRESS)


def cmd_run(args: argparse.Namespace) -> int:
    if args.workers > 1 and args.pipeline:
        raise MMBenchError("--workers shares searches; reference --pipeline jobs run without it")
    return _run(args, workers=args.workers)


def cmd_worker(args: argparse.Namespace) -> int:
    studies = dict(s.split("=", 1) for s in args.study)
    return _run(args, worker=args.worker_index, finalize=args.finalize, studies=studies)


def cmd_finalize(args: argparse.Namespace) -> int:
    return _run(args, finalize="only")


def _run(args: argparse.Namespace, workers: int = 1, **role: Any) -> int:
    from mmbench.run import Reporter, RunOptions, run_suite
    from mmbench.suite import load_suite

    suite = load_suite(args.suite)
    quiet_library_progress()
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
        artifacts=args.artifacts,
        resume=getattr(args, "resume", False),
        progress=not args.quiet,
        pipelines=getattr(args, "pipeline", []),
        ablate=args.ablate,
        **role,
    )
    reporter = Reporter(enabled=not args.quiet)
    cluster_address = getattr(args, "cluster", None)
    if workers > 1 or cluster_address:
        from mmbench.run.workers import Cluster, run_with_workers

        cluster = Cluster(cluster_address, args.worker_threads, args.worker_gpus)
        outcomes = run_with_workers(args.suite, suite, options, workers, reporter, cluster)
    else:
        outcomes = run_suite(suite, options, reporter)
    print_summary(outcomes)
    return 1 if any(o.error for o in outcomes) else 0


def print_summary(outcomes: list[Any], width: int | None = None) -> None:
    """One line per result that fits an 80-column terminal or a CI log: the dataset, the row's
    short name, its CV score, the held-out score when there is one, ROC-AUC and seconds; the
    pipeline in words is in the result file (its path follows) and the report."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from mmbench.evaluation import format_score, undefined_note

    if not outcomes:  # a worker whose studies another process finalizes
        print("no result file written here: the process that ends each study writes them")
        return

    metric = next((o.result.primary()[0] for o in outcomes if o.result is not None), "score")
    table = Table(
        title=f"mmbench results: {metric}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1, 0, 0),
        pad_edge=False,
    )
    table.add_column("dataset", no_wrap=True, overflow="ellipsis", max_width=20)
    table.add_column("row", no_wrap=True, overflow="ellipsis", max_width=20)
    table.add_column("CV", no_wrap=True)
    for col in ("held-out", "AUC", "s"):
        table.add_column(col, no_wrap=True, justify="right")
    for o in outcomes:
        if o.result is None:
            table.add_row(o.name, "[red]failed[/]", "", "", "", "")
            continue
        r = o.result
        name, mean, std = r.primary()
        held_out = (r.test_metrics or {}).get(name, math.nan)
        table.add_row(
            o.name,
            r.pipeline_name,
            format_score(mean, std, len(r.folds))
            + undefined_note({"undefined": r.undefined_folds()}),
            "" if math.isnan(held_out) else f"{held_out:.3f}",
            f"{r.metrics.get('roc_auc', {}).get('mean', math.nan):.3f}",
            f"{r.durations.get('wall', 0):.0f}",
        )
    console = Console(width=width or (None if sys.stdout.isatty() else 80))
    console.print(table)
    seen = set()  # a job's warnings are on each of its outcomes (search and ensemble)
    for o in outcomes:
        if o.path is not None:
            console.print(f"{o.name}: result file {o.path}", markup=False, soft_wrap=True)
        if o.error:
            console.print(f"{o.name}: {o.error}", style="red", markup=False, soft_wrap=True)
        for w in o.warnings:
            if (o.name, w) not in seen:
                console.print(f"warning: {o.name}: {w}", style="yellow", markup=False)
            seen.add((o.name, w))


def cmd_track(args: argparse.Namespace) -> int:
    from mmbench.results import ResultLayout
    from mmbench.tracking.backfill import backfill

    name = suite_name(args.suite)
    layout = ResultLayout(args.results, name)
    if not layout.root.is_dir():
        from mmbench.errors import did_you_mean

        known = sorted(p.name for p in args.results.glob("*") if p.is_dir())
        raise MMBenchError(
            f"no results for suite {name!r} in {layout.root}/{did_you_mean(name, known)}"
            + (f"; suites with results there: {', '.join(known)}" if known else "")
        )
    report = backfill(
        layout,
        uri=args.tracking_uri,
        storage=args.storage,
        warn=lambda m: print(f"warning: {m}", file=sys.stderr),
    )
    for path in report.results:
        print(f"logged {path}")
    print(
        f"{len(report.results)} result files and {report.trials} trial runs logged; "
        f"{report.already} already tracked"
    )
    for problem in report.problems:
        print(f"mmbench: error: {problem}", file=sys.stderr)
    return 1 if report.problems else 0


COMMANDS = {"run": cmd_run, "worker": cmd_worker, "finalize": cmd_finalize, "track": cmd_track}

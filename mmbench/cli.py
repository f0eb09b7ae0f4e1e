"""Command line: a thin layer over :mod:`mmbench.runner` and friends.

Imports are deferred to the command being run so that ``mmbench --help`` stays instant.
User errors (:class:`~mmbench.errors.MMBenchError`) print one clear message and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
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
    run.add_argument("--trials", type=positive(int), help="override the suite's trial budget")
    run.add_argument(
        "--timeout", type=positive(float), help="search wall-clock budget per dataset, s"
    )
    run.add_argument("--storage", help="Optuna storage URL (default: SQLite beside results)")
    run.add_argument("--resume", action="store_true", help="continue an interrupted study")
    run.add_argument(
        "--workers",
        type=positive(int),
        default=1,
        help="search with N local worker processes on each study, then finalize once",
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
    run.add_argument(
        "--ablate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="modality ablations after the run (default: as the suite says)",
    )

    add_worker_parsers(sub, run)
    show = sub.add_parser("show", help="best trials per dataset from a suite's Optuna studies")
    show.add_argument("suite", type=Path)
    show.add_argument("--storage", help="Optuna storage URL (default: SQLite beside results)")
    show.add_argument("--results", type=Path, default=Path("results"), help="results directory")
    show.add_argument("--top", type=positive(int), default=5, help="trials per study")

    val = sub.add_parser("validate", help="check a suite file without running it")
    val.add_argument("suite", type=Path)
    val.add_argument("--data", action="store_true", help="also load and validate every dataset")
    add_report_parsers(sub)
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


def add_worker_parsers(sub: Any, run: argparse.ArgumentParser) -> None:
    """``worker`` and ``finalize``: ``run``'s options, for one process of a shared study."""
    common = [
        a
        for a in run._actions
        if a.dest not in ("help", "workers", "pipeline", "resume") and a.option_strings
    ]
    worker = sub.add_parser(
        "worker",
        help="join each dataset's study in a shared --storage; the last worker finalizes it",
    )
    final = sub.add_parser(
        "finalize",
        help="write the results of each dataset's latest study (refit, ensemble, held-out)",
    )
    for parser in (worker, final):
        parser.add_argument("suite", type=Path, help="suite YAML file")
        for action in common:
            parser._add_action(action)
    track = sub.add_parser(
        "track", help="log to MLflow what a run could not (server down, --no-track); idempotent"
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


def cmd_worker(args: argparse.Namespace) -> int:
    studies = dict(s.split("=", 1) for s in args.study)
    return _run(args, worker=args.worker_index, finalize=args.finalize, studies=studies)


def cmd_track(args: argparse.Namespace) -> int:
    from mmbench.results import ResultLayout
    from mmbench.tracking.backfill import backfill

    layout = ResultLayout(args.results, suite_name(args.suite))
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


def cmd_finalize(args: argparse.Namespace) -> int:
    return _run(args, finalize="only")


def cmd_run(args: argparse.Namespace) -> int:
    if args.workers > 1 and args.pipeline:
        raise MMBenchError("--workers shares searches; reference --pipeline jobs run without it")
    return _run(args, workers=args.workers)


def _run(args: argparse.Namespace, workers: int = 1, **role: Any) -> int:
    from mmbench.runner import Reporter, RunOptions, run_suite
    from mmbench.suite import load_suite

    suite = load_suite(args.suite)
    _quiet_library_progress()
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
        resume=getattr(args, "resume", False),
        progress=not args.quiet,
        pipelines=getattr(args, "pipeline", []),
        ablate=args.ablate,
        **role,
    )
    reporter = Reporter(enabled=not args.quiet)
    if workers > 1:
        from mmbench.workers import run_with_workers

        outcomes = run_with_workers(args.suite, suite, options, workers, reporter)
    else:
        outcomes = run_suite(suite, options, reporter)
    print_summary(outcomes)
    return 1 if any(o.error for o in outcomes) else 0


def _quiet_library_progress() -> None:
    """mmbench shows its own progress; the datasets library's per-split bars and transformers'
    weight-loading bar only add noise."""
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    try:  # ~0.3 s; hub downloads keep their bars
        from transformers.utils import logging as transformers_logging
    except ImportError:
        return
    transformers_logging.disable_progress_bar()


def print_summary(outcomes: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from mmbench.identity import identify

    if not outcomes:  # a worker whose studies another process finalizes
        print("no result file written here: the process that ends each study writes them")
        return

    table = Table(title="mmbench results", title_justify="left")
    for col in ("dataset", "pipeline", "metric", "CV mean ± std", "chance", "ROC-AUC", "s"):
        table.add_column(col, overflow="fold")
    for o in outcomes:
        if o.result is None:
            table.add_row(o.name, "[red]failed[/]", "", "", "", "", "")
            continue
        r = o.result
        name, mean, std = r.primary()
        table.add_row(
            o.name,
            f"{r.pipeline_name}: {identify(r).short}",
            name,
            f"{mean:.3f} ± {std:.3f}",
            f"{r.chance.get(name, float('nan')):.3f}",
            f"{r.metrics.get('roc_auc', {}).get('mean', float('nan')):.3f}",
            f"{r.durations.get('wall', 0):.0f}",
        )
    console = Console()
    console.print(table)
    seen = set()  # a job's warnings are on each of its outcomes (search and ensemble)
    for o in outcomes:
        if o.path is not None:
            console.print(f"{o.name}: result file {o.path}")
        if o.error:
            console.print(f"[red]{o.name}: {o.error}[/]")
        for w in o.warnings:
            if (o.name, w) not in seen:
                console.print(f"[yellow]warning: {o.name}: {w}[/]")
            seen.add((o.name, w))


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


def add_report_parsers(sub: Any) -> None:
    """``leaderboard``, ``report`` and ``regress``: commands that read result files or gate on
    them."""
    board = sub.add_parser("leaderboard", help="rank pipelines from a suite's result files")
    board.add_argument("suite", type=Path, help="suite YAML file (or a bare suite name)")
    board.add_argument("--results", type=Path, default=Path("results"), help="results directory")
    board.add_argument("--format", choices=("table", "markdown", "csv"), help="default: table")
    board.add_argument("--output", type=Path, help="write the rendering to this file")
    board.add_argument(
        "--write", action="store_true", help="regenerate <results>/<suite>/LEADERBOARD.md"
    )
    page = sub.add_parser("report", help="write a suite's results as one offline HTML page")
    page.add_argument("suite", type=Path, help="suite YAML file (or a bare suite name)")
    page.add_argument("--results", type=Path, default=Path("results"), help="results directory")
    page.add_argument("--output", type=Path, help="default: <results>/<suite>/report.html")
    reg = sub.add_parser("regress", help="CI gate: rerun a fixed config, compare to a baseline")
    reg.add_argument("suite", type=Path, help="suite YAML file, e.g. suites/smoke.yaml")
    reg.add_argument("--baseline", type=Path, required=True, help="baseline JSON file")
    reg.add_argument("--update", action="store_true", help="write/refresh the baseline")
    reg.add_argument("--results", type=Path, help="keep the rerun's result files here")
    reg.add_argument("--dataset", action="append", help="only this dataset (repeatable)")
    reg.add_argument("--quiet", action="store_true", help="no progress output")
    reg.add_argument(
        "--no-cache", action="store_true", help="encode every modality again (no feature cache)"
    )


def suite_name(path: Path) -> str:
    """The suite's name from its YAML file; a bare name (no such file, no suffix) is taken as is."""
    from mmbench.suite import load_suite

    if not path.exists() and not path.suffix and path.parent == Path("."):
        return path.name
    return load_suite(path).name


def positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    """An argparse ``type``: a number of ``kind`` greater than zero, else a usage error."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from mmbench.leaderboard import load_leaderboard, render, render_rich, write_leaderboard

    name = suite_name(args.suite)
    board = load_leaderboard(args.results, name)
    for problem in board.skipped:
        print(f"warning: skipped {problem}", file=sys.stderr)
    if args.write:
        command = f"mmbench leaderboard {args.suite} --results {args.results} --write"
        print(f"wrote {write_leaderboard(args.results, name, command=command)}")
    suffix = args.output.suffix if args.output else ""
    fmt = args.format or {".csv": "csv", ".md": "markdown"}.get(suffix, "table")
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(render(board, fmt))
        print(f"wrote {args.output}")
    elif args.write and args.format is None:
        pass  # --write alone: the file is the output
    elif fmt == "table":
        from rich.console import Console

        Console().print(*render_rich(board))
    else:
        print(render(board, fmt), end="")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from mmbench.report import write_report

    expected = None
    if args.suite.exists():  # a suite file names its datasets: a missing one is shown as such
        from mmbench.suite import load_suite

        suite = load_suite(args.suite)
        name, expected = suite.name, [d.name for d in suite.datasets]
    else:
        name = suite_name(args.suite)
    print(f"wrote {write_report(args.results, name, expected, args.output)}")
    return 0


def cmd_regress(args: argparse.Namespace) -> int:
    from rich.console import Console

    from mmbench.cache import FeatureCache, default_cache_dir
    from mmbench.regress import RULE, regress
    from mmbench.runner import Reporter
    from mmbench.suite import load_suite

    suite = load_suite(args.suite)
    report = regress(
        suite, args.baseline, update=args.update, results_dir=args.results,
        datasets=args.dataset, reporter=Reporter(enabled=not args.quiet),
        cache=FeatureCache(None if args.no_cache else default_cache_dir()),
    )  # fmt: skip
    console = Console() if sys.stdout.isatty() else Console(width=140)  # CI logs: no wrapping
    console.print(report.to_rich())
    console.print(RULE.format(**suite.regress.model_dump()))
    for note in report.notes:
        console.print(note)
    if args.update:
        return 2 if report.errors else 0
    return report.exit_code


def cmd_show(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from mmbench.results import ResultLayout
    from mmbench.search.study import study_report
    from mmbench.suite import load_suite

    suite = load_suite(args.suite)
    storage = args.storage
    if storage is None:
        layout = ResultLayout(args.results, suite.name)
        if not layout.study_db.exists():
            raise MMBenchError(
                f"no Optuna studies at {layout.study_db}; run `mmbench run {args.suite}` first"
            )
        storage = layout.study_storage()
    rows = study_report(storage, suite.name, top=args.top)
    if not rows:
        raise MMBenchError(f"no completed trials for suite {suite.name!r} in {storage}")
    table = Table(title=f"best trials: {suite.name}", title_justify="left")
    for col in ("study", "#", "trial", "value", "params", "trials by state"):
        table.add_column(col, overflow="fold", min_width=24 if col == "params" else None)
    for r in rows:  # one parameter, one state per line: no wrapping inside a value at 80 columns
        params = "\n".join(f"{k}={_short(v)}" for k, v in r["params"].items())
        states = "\n".join(f"{k} {v}" for k, v in r["states"].items())
        table.add_row(
            r["study"],
            str(r["rank"]),
            str(r["trial"]),
            f"{r['value']:.4f}",
            params,
            states if r["rank"] == 1 else "",
        )
    Console().print(table)
    return 0


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


COMMANDS = {
    "run": cmd_run,
    "worker": cmd_worker,
    "finalize": cmd_finalize,
    "track": cmd_track,
    "validate": cmd_validate,
    "show": cmd_show,
    "leaderboard": cmd_leaderboard,
    "report": cmd_report,
    "regress": cmd_regress,
}


if __name__ == "__main__":
    sys.exit(main())

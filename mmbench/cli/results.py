"""``leaderboard``, ``report``, ``regress`` and ``show``: commands that read result files or
studies, or gate on them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mmbench.cli._common import command, positive, suite_file, suite_name
from mmbench.errors import MMBenchError


def add_parsers(sub: Any) -> None:
    show = command(
        sub,
        "show",
        "best trials per dataset from a suite's Optuna studies",
        "mmbench show suites/smoke.yaml --top 3",
    )
    show.add_argument("suite", type=Path)
    show.add_argument("--storage", help="Optuna storage URL (default: SQLite beside results)")
    show.add_argument("--results", type=Path, default=Path("results"), help="results directory")
    show.add_argument("--top", type=positive(int), default=5, help="trials per study")

    board = command(
        sub,
        "leaderboard",
        "rank pipelines from one or more suites' result files",
        "mmbench leaderboard suites/fsdd.yaml suites/smoke.yaml --anchor default",
    )
    board.add_argument(
        "suite", type=Path, nargs="+", help="suite YAML file(s) (or bare suite names)"
    )
    board.add_argument("--results", type=Path, default=Path("results"), help="results directory")
    board.add_argument(
        "--format",
        choices=("table", "markdown", "csv", "parquet"),
        help="default: table (parquet: only with --long)",
    )
    board.add_argument("--output", type=Path, help="write the rendering to this file")
    board.add_argument(
        "--write", action="store_true", help="regenerate <results>/<suite>/LEADERBOARD.md"
    )
    board.add_argument("--anchor", help="pipeline rated Elo 1000 (default: the default pipeline)")
    board.add_argument(
        "--complete-only",
        action="store_true",
        help="aggregate only datasets every pipeline ran on (no imputation)",
    )
    board.add_argument(
        "--long",
        action="store_true",
        help="raw results: one row per suite, dataset, pipeline, fold and metric (with --output)",
    )
    page = command(
        sub,
        "report",
        "write a suite's results as one offline HTML page",
        "mmbench report suites/smoke.yaml   # -> results/smoke/report.html",
    )
    page.add_argument(
        "suite",
        type=Path,
        nargs="+",
        help="suite YAML file (or a bare suite name); several: one page across their datasets "
        "(needs --output)",
    )
    page.add_argument("--results", type=Path, default=Path("results"), help="results directory")
    page.add_argument("--output", type=Path, help="default: <results>/<suite>/report.html")
    reg = command(
        sub,
        "regress",
        "CI gate: rerun a fixed config, compare to a baseline",
        "mmbench regress suites/ci.yaml --baseline benchmarks/baselines/ci.json",
    )
    reg.add_argument("suite", type=Path, help="suite YAML file, e.g. suites/smoke.yaml")
    reg.add_argument("--baseline", type=Path, required=True, help="baseline JSON file")
    reg.add_argument("--update", action="store_true", help="write/refresh the baseline")
    reg.add_argument("--results", type=Path, help="keep the rerun's result files here")
    reg.add_argument("--dataset", action="append", help="only this dataset (repeatable)")
    reg.add_argument("--quiet", action="store_true", help="no progress output")
    reg.add_argument(
        "--no-cache", action="store_true", help="encode every modality again (no feature cache)"
    )
    reg.add_argument(
        "--allow-package-mismatch",
        action="store_true",
        help="compare even when numpy/torch/xgboost/... differ from the baseline's versions",
    )


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from mmbench.leaderboard import render, render_rich, write_leaderboard
    from mmbench.leaderboard.aggregate import cross_board
    from mmbench.leaderboard.files import load_boards
    from mmbench.leaderboard.terminal import render_cross_markdown, render_cross_rich

    names = [suite_name(s) for s in args.suite]
    specs = [suite_file(s) for s in args.suite]  # published scores are shown beside the rows
    suffix = args.output.suffix if args.output else ""
    fmt = args.format or {".csv": "csv", ".md": "markdown", ".parquet": "parquet"}.get(
        suffix, "table"
    )
    boards, results = load_boards(args.results, names, specs)
    for board in boards:
        for problem in board.skipped:
            print(f"warning: skipped {problem}", file=sys.stderr)
    if args.long:
        return _write_long(args, results, fmt)
    if fmt == "parquet":
        raise MMBenchError("--format parquet writes the raw results: add --long --output FILE")
    if args.write:
        for arg, name, spec in zip(args.suite, names, specs, strict=True):
            command = f"mmbench leaderboard {arg} --results {args.results} --write"
            path = write_leaderboard(args.results, name, command=command, suite_spec=spec)
            print(f"wrote {path}")
    cross = cross_board(boards, results, args.anchor, args.complete_only)
    if args.output is not None:
        text = "".join(render(b, fmt) for b in boards)
        if fmt == "markdown":
            text = render_cross_markdown(cross) + "\n" + text
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        print(f"wrote {args.output}")
    elif args.write and args.format is None:
        pass  # --write alone: the file is the output
    elif fmt == "table":
        from rich.console import Console

        Console().print(render_cross_rich(cross), *(t for b in boards for t in render_rich(b)))
    else:
        if fmt == "markdown":
            print(render_cross_markdown(cross))
        print("".join(render(b, fmt) for b in boards), end="")
    return 0


def _write_long(args: argparse.Namespace, results: list[Any], fmt: str) -> int:
    from mmbench.leaderboard.export import write_long

    if args.output is None:
        raise MMBenchError("--long needs --output FILE (.parquet or .csv)")
    print(f"wrote {write_long(results, args.output, fmt)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from mmbench.report import write_report, write_suites_report

    specs = [suite_file(arg) for arg in args.suite]  # a file names its datasets: a missing
    suites = [  # one is shown as such; a bare name shows what its results hold
        (spec.name, [d.name for d in spec.datasets]) if spec else (suite_name(arg), None)
        for arg, spec in zip(args.suite, specs, strict=True)
    ]
    if len(suites) == 1:
        (name, expected), spec = suites[0], specs[0]
        print(f"wrote {write_report(args.results, name, expected, args.output, suite_spec=spec)}")
        return 0
    if args.output is None:
        raise MMBenchError("a report of several suites needs --output FILE.html")
    print(f"wrote {write_suites_report(args.results, suites, args.output)}")
    return 0


def cmd_regress(args: argparse.Namespace) -> int:
    from rich.console import Console

    from mmbench.gate import RULE, regress
    from mmbench.pipeline.cache import FeatureCache, default_cache_dir
    from mmbench.run import Reporter
    from mmbench.suite import load_suite

    suite = load_suite(args.suite)
    report = regress(
        suite, args.baseline, update=args.update, results_dir=args.results,
        datasets=args.dataset, reporter=Reporter(enabled=not args.quiet),
        cache=FeatureCache(None if args.no_cache else default_cache_dir()),
        allow_package_mismatch=args.allow_package_mismatch,
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
    from mmbench.search.report import study_report
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
    "show": cmd_show,
    "leaderboard": cmd_leaderboard,
    "report": cmd_report,
    "regress": cmd_regress,
}

"""Command line: a thin layer over :mod:`mmbench.run` and friends.

Imports are deferred to the command being run so that ``mmbench --help`` stays instant.
User errors (:class:`~mmbench.errors.MMBenchError`) print one clear message and exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
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

    add_worker_parsers(sub, run)
    show = sub.add_parser("show", help="best trials per dataset from a suite's Optuna studies")
    show.add_argument("suite", type=Path)
    show.add_argument("--storage", help="Optuna storage URL (default: SQLite beside results)")
    show.add_argument("--results", type=Path, default=Path("results"), help="results directory")
    show.add_argument("--top", type=positive(int), default=5, help="trials per study")

    pred = sub.add_parser("predict", help="score a table file with a dataset's final model")
    pred.add_argument("suite", type=Path, help="suite YAML file (its columns map the rows)")
    pred.add_argument("input", type=Path, help="rows to score: .csv, .parquet or .json")
    pred.add_argument("--dataset", help="which dataset's model (default: the suite's only one)")
    pred.add_argument("--output", type=Path, help="default: <input>.predictions.csv")
    pred.add_argument("--results", type=Path, default=Path("results"), help="results directory")
    pred.add_argument("--model", help="an MLflow model URI instead, e.g. models:/NAME/latest")

    val = sub.add_parser("validate", help="check a suite file without running it")
    val.add_argument("suite", type=Path)
    val.add_argument("--data", action="store_true", help="also load and validate every dataset")
    val.add_argument("--mirror", help=MIRROR_HELP)
    add_report_parsers(sub)
    add_fetch_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    use_mirror(getattr(args, "mirror", None))
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
        if a.dest
        not in ("help", "workers", "pipeline", "resume", "cluster", "worker_threads", "worker_gpus")
        and a.option_strings
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


def cmd_finalize(args: argparse.Namespace) -> int:
    return _run(args, finalize="only")


def cmd_run(args: argparse.Namespace) -> int:
    if args.workers > 1 and args.pipeline:
        raise MMBenchError("--workers shares searches; reference --pipeline jobs run without it")
    return _run(args, workers=args.workers)


def _run(args: argparse.Namespace, workers: int = 1, **role: Any) -> int:
    from mmbench.run import Reporter, RunOptions, run_suite
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

    from mmbench.evaluation import undefined_note
    from mmbench.results.identity import identify

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
            f"{mean:.3f} ± {std:.3f}{undefined_note({'undefined': r.undefined_folds()})}",
            f"{r.chance.get(name, float('nan')):.3f}",
            f"{r.metrics.get('roc_auc', {}).get('mean', float('nan')):.3f}",
            f"{r.durations.get('wall', 0):.0f}",
        )
    console = Console()
    console.print(table)
    seen = set()  # a job's warnings are on each of its outcomes (search and ensemble)
    for o in outcomes:
        if o.path is not None:
            console.print(f"{o.name}: result file {o.path}", markup=False)
        if o.error:
            console.print(f"{o.name}: {o.error}", style="red", markup=False)
        for w in o.warnings:
            if (o.name, w) not in seen:
                console.print(f"warning: {o.name}: {w}", style="yellow", markup=False)
            seen.add((o.name, w))


def cmd_validate(args: argparse.Namespace) -> int:
    from mmbench.suite import load_suite

    suite = load_suite(args.suite)
    print(f"{args.suite}: suite {suite.name!r} is valid ({len(suite.datasets)} datasets)")
    for spec in suite.datasets:
        if spec.card is not None:
            card = spec.card
            print(f"  {spec.name}: {card.task}; license {card.license}; {card.homepage}")
            print(f"    cite: {card.citation}")
    if not args.data:
        return 0
    from mmbench.data import load_table

    _quiet_library_progress()
    failed = 0
    for spec in suite.datasets:  # every dataset is checked, not only up to the first bad one
        try:
            with _scratch_datasets_cache(spec.source.kind != "hub"):
                table = load_table(spec, suite.root, seed=suite.seed)
        except MMBenchError as exc:
            failed += 1
            print(f"  {spec.name}: error: {exc}", file=sys.stderr)
            continue
        print(
            f"  {spec.name}: {len(table)} rows, classes {table.classes}, "
            f"modalities {table.modalities}"
        )
    return 2 if failed else 0


@contextlib.contextmanager
def _scratch_datasets_cache(scratch: bool) -> Iterator[None]:
    """Local files read by ``validate --data`` leave no Arrow copy in mmbench's cache
    (:func:`~mmbench.data.sources.datasets_cache_dir` under ``$MMBENCH_CACHE_DIR``); a hub
    dataset keeps using the Hugging Face cache: that is where its download lives."""
    if not scratch:
        yield
        return
    saved = os.environ.get("MMBENCH_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="mmbench-validate-") as tmp:
        os.environ["MMBENCH_CACHE_DIR"] = tmp
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop("MMBENCH_CACHE_DIR", None)
            else:
                os.environ["MMBENCH_CACHE_DIR"] = saved


def cmd_predict(args: argparse.Namespace) -> int:
    from mmbench.results import ResultLayout
    from mmbench.suite import load_suite
    from mmbench.tracking.serving import final_model_file, load_fitted, load_logged, predict_file

    suite = load_suite(args.suite)
    if args.dataset is None and len(suite.datasets) > 1:
        names = ", ".join(d.name for d in suite.datasets)
        raise MMBenchError(f"suite {suite.name!r} has several datasets ({names}); pick --dataset")
    spec = suite.dataset(args.dataset) if args.dataset else suite.datasets[0]
    if args.model:
        model: Any = load_logged(args.model)
        source = args.model
    else:
        path = final_model_file(ResultLayout(args.results, suite.name).root / spec.name / "models")
        model, source = load_fitted(path), str(path)
    output = args.output or args.input.with_suffix(".predictions.csv")

    def warn(message: str) -> None:
        print(f"warning: {args.input}: {message}", file=sys.stderr)

    scored = predict_file(model, spec.modalities, args.input, output, warn=warn)
    print(f"{len(scored)} rows scored with {source}; wrote {output}")
    return 0


MIRROR_HELP = (
    "fetch https://HOST/PATH from MIRROR/HOST/PATH instead: a local folder or an http(s) URL "
    "(default $MMBENCH_MIRROR); the same hashes are verified"
)


def use_mirror(mirror: str | None) -> None:
    """``--mirror`` as ``$MMBENCH_MIRROR`` (absolute), which the data layer and workers read."""
    import os

    from mmbench.data.download import MIRROR_ENV

    if mirror:
        is_url = mirror.startswith(("http://", "https://"))
        os.environ[MIRROR_ENV] = mirror if is_url else str(Path(mirror).expanduser().resolve())


def add_fetch_parser(sub: Any) -> None:
    fetch = sub.add_parser(
        "fetch", help="download and verify a suite's data ahead of a run (prints a table)"
    )
    fetch.add_argument("suite", type=Path, help="suite YAML file")
    fetch.add_argument("--dataset", action="append", help="only this dataset (repeatable)")
    fetch.add_argument("--mirror", help=MIRROR_HELP)
    fetch.add_argument("--quiet", action="store_true", help="no progress bars")


def cmd_fetch(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from mmbench.data.fetch import fetch_dataset
    from mmbench.suite import load_suite

    suite = load_suite(args.suite)
    specs = [suite.dataset(n) for n in args.dataset] if args.dataset else suite.datasets
    rows = [r for s in specs for r in fetch_dataset(s, suite.root, progress=not args.quiet)]
    table = Table(title=f"mmbench fetch {args.suite}", title_justify="left")
    for col in (
        "dataset",
        "split",
        "files",
        "size",
        "downloaded",
        "verified",
        "cache path",
        "license",
    ):
        table.add_column(col, overflow="fold")
    for r in rows:
        verified = "[red]failed[/]" if r.error else r.verified
        size = f"{r.size / 1e6:.1f} MB" if r.size else ""
        table.add_row(
            r.dataset,
            r.split,
            str(r.files or ""),
            size,
            str(r.downloaded),
            verified,
            r.cache,
            r.license,
        )
    console = Console(width=None if sys.stdout.isatty() else 200)  # whole paths in logs
    console.print(table)
    for r in rows:
        if r.error:
            console.print(f"{r.dataset} ({r.split}): {r.error}", style="red", markup=False)
    return 1 if any(r.error for r in rows) else 0


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
    reg.add_argument(
        "--allow-package-mismatch",
        action="store_true",
        help="compare even when numpy/torch/xgboost/... differ from the baseline's versions",
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
    spec = _suite_file(args.suite)  # its published scores are shown beside the measured rows
    board = load_leaderboard(args.results, name, spec)
    for problem in board.skipped:
        print(f"warning: skipped {problem}", file=sys.stderr)
    if args.write:
        command = f"mmbench leaderboard {args.suite} --results {args.results} --write"
        path = write_leaderboard(args.results, name, command=command, suite_spec=spec)
        print(f"wrote {path}")
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


def _suite_file(path: Path) -> Any:
    """The suite when ``path`` is its file (not a bare name), else None."""
    from mmbench.suite import load_suite

    return load_suite(path) if path.is_file() else None


def cmd_report(args: argparse.Namespace) -> int:
    from mmbench.report import write_report

    expected, suite = None, None
    if args.suite.exists():  # a suite file names its datasets: a missing one is shown as such
        from mmbench.suite import load_suite

        suite = load_suite(args.suite)
        name, expected = suite.name, [d.name for d in suite.datasets]
    else:
        name = suite_name(args.suite)
    print(f"wrote {write_report(args.results, name, expected, args.output, suite_spec=suite)}")
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
    "run": cmd_run,
    "worker": cmd_worker,
    "finalize": cmd_finalize,
    "track": cmd_track,
    "validate": cmd_validate,
    "predict": cmd_predict,
    "show": cmd_show,
    "leaderboard": cmd_leaderboard,
    "report": cmd_report,
    "regress": cmd_regress,
    "fetch": cmd_fetch,
}


if __name__ == "__main__":
    sys.exit(main())

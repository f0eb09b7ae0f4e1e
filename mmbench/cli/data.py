"""``validate``, ``fetch`` and ``predict``: commands that read a suite's data."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmbench.cli._common import MIRROR_HELP, command, quiet_library_progress
from mmbench.errors import MMBenchError


def add_parsers(sub: Any) -> None:
    val = command(
        sub,
        "validate",
        "check a suite file without running it",
        "mmbench validate suites/fsdd.yaml --data --mirror ../shared/mirror",
    )
    val.add_argument("suite", type=Path)
    val.add_argument("--data", action="store_true", help="also load and validate every dataset")
    val.add_argument("--mirror", help=MIRROR_HELP)

    fetch = command(
        sub,
        "fetch",
        "download and verify a suite's data ahead of a run (prints a table)",
        "mmbench fetch suites/fsdd.yaml   # add --mirror DIR to read a local copy",
    )
    fetch.add_argument("suite", type=Path, help="suite YAML file")
    fetch.add_argument("--dataset", action="append", help="only this dataset (repeatable)")
    fetch.add_argument("--mirror", help=MIRROR_HELP)
    fetch.add_argument("--quiet", action="store_true", help="no progress bars")

    pred = command(
        sub,
        "predict",
        "score a table file with a dataset's final model",
        "mmbench predict suites/smoke.yaml rows.csv --output scored.csv",
    )
    pred.add_argument("suite", type=Path, help="suite YAML file (its columns map the rows)")
    pred.add_argument("input", type=Path, help="rows to score: .csv, .parquet or .json")
    pred.add_argument("--dataset", help="which dataset's model (default: the suite's only one)")
    pred.add_argument("--output", type=Path, help="default: <input>.predictions.csv")
    pred.add_argument("--results", type=Path, default=Path("results"), help="results directory")
    pred.add_argument("--model", help="an MLflow model URI instead, e.g. models:/NAME/latest")


def cmd_validate(args: argparse.Namespace) -> int:
    from mmbench.suite import load_suite

    suite = load_suite(args.suite)
    print(f"{args.suite}: suite {suite.name!r} is valid ({len(suite.datasets)} datasets)")
    for spec in suite.datasets:
        if spec.card is not None:
            card = spec.card
            print(f"  {spec.name}: {card.task}; license {card.license}; {card.homepage}")
            print(f"    cite: {card.citation}")
        if spec.modalities.auto:
            print(f"  {spec.name}: modalities: auto (typed from the rows: see validate --data)")
    if not args.data:
        return 0
    from mmbench.data import load_table
    from mmbench.data.infer import describe_inference

    quiet_library_progress()
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
        for line in describe_inference(table.meta.get("inferred_modalities") or {}):
            print(f"    modalities: auto: {line}")
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
    modalities = _typed_modalities(spec, ResultLayout(args.results, suite.name))

    def warn(message: str) -> None:
        print(f"warning: {args.input}: {message}", file=sys.stderr)

    scored = predict_file(model, modalities, args.input, output, warn=warn)
    print(f"{len(scored)} rows scored with {source}; wrote {output}")
    return 0


def _typed_modalities(spec: Any, layout: Any) -> Any:
    """The dataset's modalities; under ``modalities: auto``, with the columns its training rows
    were typed as, from the dataset's result files (the mapping its model was fitted on)."""
    if not spec.modalities.auto:
        return spec.modalities
    from mmbench.data.infer import with_inferred

    results, _ = layout.load_readable()
    for result in results:
        inferred = result.dataset.inferred_modalities
        if result.dataset.name == spec.name and inferred is not None:
            return with_inferred(spec, inferred.model_dump()).modalities
    raise MMBenchError(
        f"dataset {spec.name!r} says 'modalities: auto' and no result file in {layout.root} "
        "records the columns its training rows were typed as; run the suite first"
    )


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


COMMANDS = {"validate": cmd_validate, "fetch": cmd_fetch, "predict": cmd_predict}

"""An Optuna search on the embedded suite through the real runner, tracked to local MLflow.

Runs ``mmbench.run.run_suite`` twice against one temporary SQLite MLflow store: first the
single default pipeline (``trials=1``, which also creates the store's schema), then a search of
``--trials`` trials with the default search space. Each run gets its own empty feature cache,
so the search starts cold like a first run would. Reports throughput, the share of wall time
spent in MLflow and in Optuna itself, trial states, and the best CV macro-F1 against the default.

    python benchmarks/search.py --trials 12
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import SUITE, emit, mean_std, parse_args, table

from mmbench.results import ResultLayout
from mmbench.run import RunOptions, run_suite
from mmbench.suite import load_suite

DEFAULT_TRIALS = 12


def run(trials: int, tmp: Path, tracking_uri: str, tag: str) -> tuple[Any, float]:
    """One ``run_suite`` call; returns the dataset's RunResult and the measured wall seconds."""
    suite = load_suite(SUITE)
    options = RunOptions(
        results_dir=tmp / f"results-{tag}",
        tracking_uri=tracking_uri,
        cache_dir=tmp / f"cache-{tag}",
        trials=trials,
        progress=False,
        ablate=False,  # the smoke suite asks for modality ablations; not part of this benchmark
    )
    start = time.perf_counter()
    (outcome,) = run_suite(suite, options)
    wall = time.perf_counter() - start
    if outcome.error:
        raise SystemExit(f"run with trials={trials} failed: {outcome.error}")
    for warning in outcome.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return outcome.result, wall


def trial_rows(results_dir: Path, study_name: str) -> list[list[str]]:
    """One row per trial, read back from the study's Optuna storage."""
    import optuna

    storage = ResultLayout(results_dir, "smoke").study_storage()
    study = optuna.load_study(study_name=study_name, storage=storage)
    rows = []
    for t in study.trials:
        start, end = t.datetime_start, t.datetime_complete
        seconds = (end - start).total_seconds() if start and end else float("nan")
        fusion = t.params.get("fusion", "")
        folds = t.intermediate_values
        value = "" if not folds else f"{sum(folds.values()) / len(folds):.3f}"
        rows.append([t.number, fusion, t.state.name.lower(), len(folds), value, f"{seconds:.1f}"])
    return rows


def best_run_seconds(result: Any) -> float:
    """How long the best run was open in MLflow: its metrics, plots and pyfunc model logging."""
    from mlflow import MlflowClient

    info = result.tracking or {}
    run = MlflowClient(tracking_uri=info["tracking_uri"]).get_run(info["run_id"]).info
    return (run.end_time - run.start_time) / 1000


def report(trials: int, default: tuple[Any, float], search: tuple[Any, float], tmp: Path) -> str:
    (base, base_wall), (best, wall) = default, search
    s = best.search
    states = ", ".join(f"{k} {v}" for k, v in sorted(s["states"].items()))
    objective = s["seconds"] - s["optuna_seconds"]
    outside = wall - s["seconds"]  # loading, refit, result file, best-run logging (model, plots)
    logging = best_run_seconds(best)
    summary = table(
        ["quantity", "value"],
        [
            ["trials (states)", f"{s['n_trials']} ({states})"],
            ["wall time of run_suite (s)", f"{wall:.1f}"],
            ["search time (s): study.optimize", f"{s['seconds']:.1f}"],
            ["trials / minute (over search time)", f"{60 * trials / s['seconds']:.1f}"],
            ["trials / minute (over wall time)", f"{60 * trials / wall:.1f}"],
            ["study.optimize: inside the objective (s, % of wall)", _share(objective, wall)],
            ["study.optimize: Optuna itself (s, % of wall)", _share(s["optuna_seconds"], wall)],
            ["MLflow until the search ended (s, % of wall)", _share(s["tracking_seconds"], wall)],
            ["outside study.optimize (s, % of wall)", _share(outside, wall)],
            ["of which the best run's MLflow logging (s, % of wall)", _share(logging, wall)],
        ],
    )
    quality = table(
        ["pipeline", "fusion", "CV macro-F1 (mean ± std)", "ROC-AUC", "wall s"],
        [
            ["default (trials=1)", base.pipeline["fusion"]["name"], mean_std(base.metrics, "f1_macro"),
             mean_std(base.metrics, "roc_auc"), f"{base_wall:.1f}"],
            [f"best of {trials} trials (#{s['best_trial']})", best.pipeline["fusion"]["name"],
             mean_std(best.metrics, "f1_macro"), mean_std(best.metrics, "roc_auc"), f"{wall:.1f}"],
        ],
    )  # fmt: skip
    per_trial = table(
        ["trial", "fusion", "state", "folds run", "macro-F1 (mean of folds run)", "seconds"],
        trial_rows(tmp / "results-search", s["study"]),
    )
    return (
        "Suite `suites/smoke.yaml` (600 rows, 4 modalities, 5-fold CV), default search space "
        "(TPE, Wilcoxon pruner), ablations off; MLflow: a fresh local SQLite store (its schema "
        "created by the default run); each run starts with an empty feature cache. MLflow time "
        "is `Tracker.seconds` when the search ended (parent run, trial runs); most of it is "
        "spent inside the objective (trial hooks). Outside study.optimize: data loading, refit "
        "of the best pipeline, the result file and the best run's logging (model, plots), timed by "
        "the best run's start and end in MLflow.\n\n"
        f"## Search cost\n\n{summary}\n\n## Best after {trials} trials vs the default pipeline"
        f"\n\n{quality}\n\n## Trials\n\n{per_trial}\n"
    )


def _share(seconds: float, wall: float) -> str:
    return f"{seconds:.1f} ({100 * seconds / wall:.1f}%)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=DEFAULT_TRIALS)
    args = parse_args(parser)
    if args.trials < 2:
        parser.error("--trials must be >= 2 (1 is the default pipeline, run anyway)")
    with tempfile.TemporaryDirectory(prefix="mmbench-search-") as name:
        tmp = Path(name)
        uri = f"sqlite:///{tmp / 'mlflow.db'}"
        default = run(1, tmp, uri, "default")
        print("  default pipeline: done", file=sys.stderr, flush=True)
        search = run(args.trials, tmp, uri, "search")
        body = report(args.trials, default, search, tmp)
    name = "search" if args.trials == DEFAULT_TRIALS else f"search_{args.trials}"
    emit(name, f"Search: {args.trials} trials through the runner, tracked to MLflow", body)


if __name__ == "__main__":
    main()

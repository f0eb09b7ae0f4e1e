"""The budget curve: the default search at growing budgets, the peers at the same budgets.

For every dataset (``adult``, ``emoji``, ``fsdd_digits``: ``benchmarks/real_data.py`` writes their
files, and runs here first when they are missing; ``fsdd``: the public suite
``suites/fsdd.yaml``, offline through ``--mirror``) and every budget, one ``mmbench run`` job
with ``timeout = budget`` and a fresh, empty feature cache (encoding is paid inside the budget),
through :func:`side_by_side.run`. Each peer then scores the same held-out rows at the same
budget:

- by default **held-out, with its own rule**: the peer cross-validated on the dataset's folds
  (``budget / folds`` each) only to fit its decision rule on its own out-of-fold probabilities,
  as every mmbench row's is (:func:`mmbench.evaluation.decide`), then refitted on all training
  rows with ``time_limit_s = budget`` and its held-out labels decided by that rule
  (``peers.fit_and_score``), in a child process of ``--peer-python`` (an environment with
  ``mmbench[peers]``; AutoGluon pins pandas 2.x). Its wall is about twice the budget.
  ``--peer-cv`` runs ``mmbench run --pipeline PEER`` instead (the same fits, in this process,
  with a result file that fills the peers' CV column).
  ``tfidf-xgboost`` is a fixed script that ignores its time limit: it is fitted once per dataset
  and its row repeated at every budget (with ``--peer-cv``, run at every budget).
- the portfolio's first trial (trial 0 of the study, the first known-strong start) is refitted
  once per dataset without a budget and scored on the same held-out rows, so "does the search
  beat its own first trial" compares held-out scores.

Everything each job measures lands in a file under ``--results`` (default: a temporary
folder): result files, the peers' JSON, each job's outer wall and error. The table is built from
those files only, after every job (``benchmarks/results/<name>.partial.md``, so a crash still
leaves the rows computed), and once more at the end with :func:`_common.emit`; ``--rebuild``
builds it from an existing ``--results`` folder without running anything. A long run can be
split into pieces that share one ``--results`` folder (``--dataset``, ``--peer-budgets``,
``--no-search`` for the peers alone), then ``--rebuild`` with every dataset and budget.

    python benchmarks/budget_curve.py [--budgets 60 120 300 600] [--dataset adult emoji ...]
        [--peer tfidf-xgboost autogluon | --no-peers] [--peer-budgets 120 ...] [--no-search]
        [--peer-python PYTHON] [--peer-cv]
        [--results DIR] [--name budget_curve] [--rebuild] [--allow-dirty]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import REPO, RESULTS, emit, parse_args, require_clean, table

SUITES = REPO / "benchmarks" / "suites"
DATASETS: dict[str, tuple[Path, str]] = {
    "adult": (SUITES / "adult.yaml", "adult"),
    "emoji": (SUITES / "real.yaml", "emoji"),
    "fsdd_digits": (SUITES / "real.yaml", "fsdd_digits"),
    "fsdd": (REPO / "suites" / "fsdd.yaml", "fsdd"),
}
"""Dataset -> (suite file, dataset name in it): the three real data sets, then the public
suites that run offline from the shared mirror."""
PUBLIC = {"fsdd"}
BUDGETS = [60.0, 120.0, 300.0, 600.0]
PEERS = ["tfidf-xgboost", "autogluon"]
BUDGET_FREE = {"tfidf-xgboost"}
"""Peers whose fit ignores ``time_limit_s``: fitted once per dataset."""
SHARED = REPO.parent / "shared"
CANDIDATES = {"ensemble": "mmbench final model", "search": "mmbench best trial (refit)"}
HEADERS = [
    "dataset",
    "budget s",
    "candidate",
    "held-out macro-F1",
    "held-out ROC-AUC",
    "CV macro-F1",
    "trials evaluated (done + pruned)",
    "declined / cut",
    "members (heads)",
    "wall s (job / call)",
    "wall / budget",
    "load",
]
TOLERANCE = 0.005


# ---------------------------------------------------------------- running


def job_dir(results: Path, dataset: str, budget: float | None) -> Path:
    """``<results>/<dataset>/<budget>s`` (``first`` for the unbudgeted first-trial refit)."""
    return results / dataset / ("first" if budget is None else f"{budget:g}s")


def run_curve(args: argparse.Namespace, results: Path, scratch: Path, name: str) -> None:
    """Every dataset at every budget: mmbench's job, then the peers; the partial table after
    each step. One failing job is recorded in its ``outer.json`` and the rest go on."""
    for dataset in args.datasets:
        reason = prepare(dataset, args)
        if reason is not None:
            for budget in [] if args.no_search else args.budgets:
                _write_json(job_dir(results, dataset, budget) / "outer.json", {"error": reason})
            print(f"{dataset}: {reason}", file=sys.stderr, flush=True)
            write_partial(args, results, name)
            continue
        fitted_once: dict[str, Path] = {}
        for budget in args.budgets:
            if not args.no_search:
                search_job(dataset, budget, results, scratch)
                write_partial(args, results, name)
            for peer in args.peers if budget in args.peer_budgets else []:
                peer_job(args, dataset, budget, peer, results, fitted_once)
                write_partial(args, results, name)
        if not args.no_search:
            first_trial_job(dataset, args.budgets, results, scratch)
            write_partial(args, results, name)


def prepare(dataset: str, args: argparse.Namespace) -> str | None:
    """Make the dataset's files loadable (and load them once, outside every budget: a public
    suite's files come from the mirror into the data cache here). Why not, or None."""
    suite_path, name = DATASETS[dataset]
    if dataset in PUBLIC and args.mirror:
        from mmbench.cli import use_mirror

        use_mirror(str(args.mirror))
    try:
        from mmbench.data import load_table
        from mmbench.suite import load_suite

        suite = load_suite(suite_path)
        spec = suite.dataset(name)
        if dataset not in PUBLIC and not (suite.root / str(spec.source.path)).exists():
            import real_data

            reason = real_data.missing_data(args.shared)
            if reason is not None:
                return f"no data ({reason}); run benchmarks/real_data.py"
            real_data.materialize(args.shared, real_data.DEFAULT_OUT)
        train = load_table(spec, suite.root, seed=suite.seed)
        if spec.test_source is not None:
            load_table(spec, suite.root, split="test", classes=train.classes)
    except Exception as exc:  # any failure to load is this dataset's row, not the run's end
        return f"{type(exc).__name__}: {exc}"
    return None


def search_job(dataset: str, budget: float, results: Path, scratch: Path) -> None:
    """``mmbench run`` on one dataset at ``budget``, fresh feature cache; outer wall and error
    to ``outer.json``."""
    from side_by_side import run

    suite_path, name = DATASETS[dataset]
    out = job_dir(results, dataset, budget)
    cache = scratch / f"cache-{dataset}-{budget:g}"
    record: dict[str, Any] = {"budget_s": budget, "load": os.getloadavg()[0]}
    print(f"\n== {dataset} at {budget:g} s: mmbench", file=sys.stderr, flush=True)
    _recorded(record, lambda: run(suite_path, budget, [], cache, out, datasets=[name]))
    _write_json(out / "outer.json", record)
    shutil.rmtree(cache, ignore_errors=True)


def _recorded(record: dict[str, Any], call: Callable[[], list[Any]]) -> None:
    """Run ``call`` (it returns :func:`mmbench.run.run_suite`'s outcomes) and note in
    ``record`` its wall seconds and its errors, raised or reported, so the run goes on."""
    start = time.perf_counter()
    try:
        outcomes = call()
        errors = [o.error for o in outcomes if o.error]
        if errors:
            record["error"] = "; ".join(errors)
        elif not outcomes:
            record["skipped"] = "not available in this environment (no job ran)"
    except Exception as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    record["wall_s"] = time.perf_counter() - start


def peer_job(
    args: argparse.Namespace,
    dataset: str,
    budget: float,
    peer: str,
    results: Path,
    fitted_once: dict[str, Path],
) -> None:
    """One peer at ``budget``: held-out only in a child process (default), or a reference job
    with CV (``--peer-cv``). A budget-free peer is fitted once and its file reused."""
    out = job_dir(results, dataset, budget) / "peers" / f"{peer}.json"
    if peer in fitted_once:
        _write_json(out, {**_read_json(fitted_once[peer]), "reused_from_budget": True})
        return
    print(f"\n== {dataset} at {budget:g} s: peer {peer}", file=sys.stderr, flush=True)
    if args.peer_cv:
        record = _peer_cv(dataset, budget, peer, job_dir(results, dataset, budget))
    else:
        record = _peer_held_out(args.peer_python, dataset, budget, peer, out)
    _write_json(out, record)
    # a missing extra stays missing; --peer-cv's scores are in a result file: no reuse there
    if (peer in BUDGET_FREE and not args.peer_cv) or "skipped" in record:
        fitted_once[peer] = out


def _peer_cv(dataset: str, budget: float, peer: str, out: Path) -> dict[str, Any]:
    """``mmbench run --pipeline PEER`` (CV folds at budget/5 each, then the held-out model at
    the budget): its result file lands beside mmbench's; this records the outer wall."""
    from side_by_side import run

    suite_path, name = DATASETS[dataset]
    record: dict[str, Any] = {"mode": "cv", "time_limit_s": budget, "load": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as cache:
        _recorded(record, lambda: run(suite_path, budget, [peer], Path(cache), out, [name], False))
    return record


def _peer_held_out(
    python: str, dataset: str, budget: float, peer: str, out: Path
) -> dict[str, Any]:
    """The peer's held-out fit in ``python`` (this file's ``--peer-job`` mode): a crash or a
    hang of the peer cannot take the run with it."""
    job = {"dataset": dataset, "budget": budget, "peer": peer, "out": str(out)}
    env = _child_env()
    start = time.perf_counter()
    load = os.getloadavg()[0]
    out.unlink(missing_ok=True)
    try:
        done = subprocess.run(
            [python, str(Path(__file__).resolve()), "--peer-job", json.dumps(job)],
            env=env,
            timeout=3 * budget + 600,
            check=False,
        )
        if out.exists():
            return {**_read_json(out), "load": load}
        error = f"peer process exited {done.returncode} without a result"
    except subprocess.TimeoutExpired:
        error = f"peer process killed after {3 * budget + 600:.0f} s"
    except OSError as exc:
        error = f"cannot start {python}: {exc}"
    return {"error": error, "wall_s": time.perf_counter() - start, "load": load}


def _child_env() -> dict[str, str]:
    """This checkout's mmbench first on the child's path, whatever its venv installed."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def run_peer_job(job: dict[str, Any]) -> int:
    """Child mode: one peer refitted on the training rows and scored on the held-out rows."""
    from importlib.metadata import PackageNotFoundError, version

    from peers import fit_and_score, load_split

    from mmbench.peers import PEERS, peer_frame
    from mmbench.suite import load_suite

    out = Path(job["out"])
    reason = PEERS.get(job["peer"]).available()
    if reason is not None:
        _write_json(out, {"skipped": reason, "python": sys.executable})
        return 0
    suite_path, name = DATASETS[job["dataset"]]
    suite = load_suite(suite_path)
    start = time.perf_counter()
    train, test = load_split(suite.dataset(name), suite.root)
    loaded = time.perf_counter()
    frames = peer_frame(train), peer_frame(test)
    framed = time.perf_counter()
    spec = suite.dataset(name)
    # the peer's decision rule, as every row's: fitted on its own out-of-fold probabilities on
    # the dataset's folds (budget / folds each), then applied to its held-out labels
    folds = spec.protocol.folds_for(train.labels, suite.seed, train.groups)
    metric = spec.protocol.primary_metric
    got = fit_and_score(
        job["peer"], train, test, frames, job["budget"], suite.seed, folds=folds, metric=metric
    )
    versions = {}
    for package in ("autogluon.tabular", "xgboost", "pandas"):
        with contextlib.suppress(PackageNotFoundError):
            versions[package] = version(package)
    _write_json(
        out,
        {
            "mode": "held-out",
            "time_limit_s": job["budget"],
            "test_metrics": got["metrics"],
            "rule": got["rule"],
            "cv_s": got["cv_s"],
            "load_s": loaded - start,
            "frame_s": framed - loaded,
            "fit_s": got["fit_s"],
            "predict_s": got["predict_s"],
            "wall_s": time.perf_counter() - start,
            "python": sys.executable,
            "versions": versions,
        },
    )
    return 0


def first_trial_job(dataset: str, budgets: list[float], results: Path, scratch: Path) -> None:
    """The portfolio's first trial (trial 0 of a study above) as a single pipeline, no budget,
    refitted on all training rows and scored on the held-out rows."""
    from mmbench.config import PipelineSpec
    from mmbench.run import RunOptions, run_suite
    from mmbench.suite import Budget, load_suite

    suite_path, name = DATASETS[dataset]
    out = job_dir(results, dataset, None)
    record: dict[str, Any] = {"load": os.getloadavg()[0]}

    def single() -> list[Any]:
        found = _first_trial(dataset, budgets, results)
        if found is None:
            raise RuntimeError("no study recorded a first portfolio trial")
        pipeline, record["from_budget_s"] = found
        suite = load_suite(suite_path)
        spec = suite.dataset(name).model_copy(
            update={"pipeline": PipelineSpec.model_validate(pipeline), "budget": Budget(trials=1)}
        )
        first = suite.model_copy(update={"name": f"{suite.name}-first", "datasets": [spec]})
        options = RunOptions(
            results_dir=out, cache_dir=scratch / f"cache-{dataset}-first", track=False,
            progress=False, trials=1,
        )  # fmt: skip
        print(f"\n== {dataset}: the portfolio's first trial, refitted", file=sys.stderr)
        return run_suite(first, options)

    _recorded(record, single)
    _write_json(out / "outer.json", record)
    shutil.rmtree(scratch / f"cache-{dataset}-first", ignore_errors=True)


def _first_trial(
    dataset: str, budgets: list[float], results: Path
) -> tuple[dict[str, Any], float] | None:
    """Trial 0's pipeline from the first study that recorded it, read from the study database
    (also when the job wrote no result, e.g. every trial declined). Portfolio trials are
    enqueued in order, so trial 0 is the same configuration at every budget."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for budget in budgets:
        for db in sorted(job_dir(results, dataset, budget).glob("*/optuna.db")):
            storage = f"sqlite:///{db}"
            for name in optuna.get_all_study_names(storage):
                trials = optuna.load_study(study_name=name, storage=storage).get_trials()
                if trials and "pipeline" in trials[0].user_attrs:
                    return trials[0].user_attrs["pipeline"], budget
    return None


# ---------------------------------------------------------------- the table, from files only


def _results(folder: Path) -> list[Any]:
    """Every readable result file under one job folder (any suite)."""
    from mmbench.results import read_result

    found = []
    for path in sorted(folder.glob("*/*/*.json")):
        if path.name.startswith(".") or path.parent.name == "peers":
            continue
        try:
            found.append(read_result(path))
        except Exception:  # a broken file is left out; its job's outer.json says what happened
            continue
    return found


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    tmp.replace(path)


def _f(value: float | None, digits: int = 4) -> str:
    return "—" if value is None or value != value else f"{value:.{digits}f}"


def trial_counts(result: Any) -> tuple[str, str]:
    """("E (C + P)", "D / X"): evaluated to a decision (completed + pruned by a rule), and the
    trials declined by the cost model / cut by the deadline, from the search history."""
    if result.search is None:
        return "", ""
    states = Counter(t.state for t in result.search.history)
    declined = states["declined"]
    cut = max(0, (result.budget.trials_cut if result.budget else 0) - declined)
    pruned = max(0, states["pruned"] - cut)
    failed = states["fail"] + states["failed"]
    done = states["complete"]
    extra = f", {failed} failed" if failed else ""
    return f"{done + pruned} ({done} + {pruned})", f"{declined} / {cut}{extra}"


def _study_counts(folder: Path) -> list[str]:
    """The trial columns of a job that wrote no result, from its study database."""
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        states: Counter[str] = Counter()
        for db in folder.glob("*/optuna.db"):
            for name in optuna.get_all_study_names(f"sqlite:///{db}"):
                study = optuna.load_study(study_name=name, storage=f"sqlite:///{db}")
                for t in study.get_trials(deepcopy=False):
                    declined = t.user_attrs.get("declined")
                    states["declined" if declined else t.state.name.lower()] += 1
                    states["cut"] += int("reason" in t.user_attrs and not declined)
    except Exception:  # no database, or not readable: the columns stay empty
        return ["", ""]
    pruned = states["pruned"] - states["cut"]
    done = states["complete"]
    return [f"{done + pruned} ({done} + {pruned})", f"{states['declined']} / {states['cut']}"]


def members(result: Any) -> str:
    """ "N: head×k, ..." for an ensemble, the one head otherwise."""
    if result.ensemble is not None:
        heads = Counter(m.pipeline.fusion.name for m in result.ensemble.members)
        listed = ", ".join(f"{h}×{n}" if n > 1 else h for h, n in heads.most_common())
        return f"{len(result.ensemble.members)}: {listed}"
    fusion = getattr(result.pipeline, "fusion", None)
    return f"1: {fusion.name}" if fusion is not None else ""


class Curve:
    """Every figure of the run, read from ``--results``: rows per (dataset, budget) and the
    scores the summary checks."""

    def __init__(self, results: Path, datasets: list[str], budgets: list[float]) -> None:
        self.results, self.datasets, self.budgets = results, datasets, budgets
        self.final: dict[tuple[str, float], dict[str, float]] = {}
        self.ratio: dict[tuple[str, float], float] = {}
        self.peers: dict[tuple[str, float], dict[str, dict[str, float]]] = {}
        self.first: dict[str, dict[str, float]] = {}
        self.notes: list[str] = []

    def rows(self) -> list[list[str]]:
        out: list[list[str]] = []
        for dataset in self.datasets:
            for budget in self.budgets:
                out += self._budget_rows(dataset, budget)
            out += self._first_rows(dataset)
        return out

    def _budget_rows(self, dataset: str, budget: float) -> list[list[str]]:
        folder = job_dir(self.results, dataset, budget)
        outer = _read_json(folder / "outer.json")
        if not outer and not folder.exists():
            return []  # not run (yet)
        rows = []
        found = {r.pipeline_name: r for r in _results(folder)}
        for name in ("ensemble", "search"):
            if name in found:
                rows.append(self._mmbench_row(dataset, budget, found[name], outer))
        if not rows and outer:  # a job that ran (not only peers: --no-search)
            error = outer.get("error", "no result file")
            row = [dataset, f"{budget:g}", "mmbench", f"failed: {error}"] + [""] * 8
            row[6:8] = _study_counts(folder)
            row[9:12] = ["— / " + _f(outer.get("wall_s"), 0), "", _f(outer.get("load"), 1)]
            rows.append(row)
        for peer_file in sorted((folder / "peers").glob("*.json")):
            rows.append(self._peer_row(dataset, budget, peer_file, found))
        return rows

    def _mmbench_row(self, dataset: str, budget: float, r: Any, outer: dict) -> list[str]:
        test = r.test_metrics or {}
        b = r.budget
        call = outer.get("wall_s")
        job = b.wall_s if b else r.durations.get("wall")
        if r.pipeline_name == "ensemble":
            self.final[dataset, budget] = test
            wall = call if call is not None else job
            if wall is not None:
                self.ratio[dataset, budget] = wall / budget
        done, cut = trial_counts(r)
        cv = r.metrics.get("f1_macro", {})
        return [
            dataset,
            f"{budget:g}",
            CANDIDATES.get(r.pipeline_name, r.pipeline_name),
            _f(test.get("f1_macro")),
            _f(test.get("roc_auc"), 5),
            f"{_f(cv.get('mean'), 3)} ± {_f(cv.get('std'), 3)}",
            done,
            cut,
            members(r),
            f"{_f(job, 0)} / {_f(call, 0)}",
            _f((call or job or float("nan")) / budget, 2),
            _f(outer.get("load"), 1),
        ]

    def _peer_row(self, dataset: str, budget: float, path: Path, found: dict) -> list[str]:
        peer = path.stem
        record = _read_json(path)
        label = peer + (" (one fit, reused)" if record.get("reused_from_budget") else "")
        if "skipped" in record:
            return [dataset, f"{budget:g}", peer, f"skipped: {record['skipped']}"] + [""] * 8
        result = found.get(peer)  # --peer-cv: a reference job's result file
        test = result.test_metrics if result is not None else record.get("test_metrics")
        if not test:
            error = record.get("error", "no result")
            return [dataset, f"{budget:g}", peer, f"failed: {error}"] + [""] * 8
        self.peers.setdefault((dataset, budget), {})[peer] = test
        cv = result.metrics.get("f1_macro", {}) if result is not None else {}
        wall = record.get("wall_s")
        mode = "CV + held-out" if result is not None else f"held-out, rule {record.get('rule')}"
        return [
            dataset,
            f"{budget:g}",
            f"{label} ({mode})",
            _f(test.get("f1_macro")),
            _f(test.get("roc_auc"), 5),
            f"{_f(cv.get('mean'), 3)} ± {_f(cv.get('std'), 3)}" if cv else "—",
            "",
            "",
            "",
            f"— / {_f(wall, 0)}",
            _f((wall or float("nan")) / budget, 2),
            _f(record.get("load"), 1),
        ]

    def _first_rows(self, dataset: str) -> list[list[str]]:
        folder = job_dir(self.results, dataset, None)
        outer = _read_json(folder / "outer.json")
        if not outer:
            return []
        found = _results(folder)
        if not found:
            error = outer.get("error", "no result file")
            return [[dataset, "none", "portfolio's first trial", f"failed: {error}"] + [""] * 8]
        r = found[0]
        test = r.test_metrics or {}
        self.first[dataset] = test
        cv = r.metrics.get("f1_macro", {})
        return [
            [
                dataset,
                "none",
                "portfolio's first trial (refit, unbudgeted)",
                _f(test.get("f1_macro")),
                _f(test.get("roc_auc"), 5),
                f"{_f(cv.get('mean'), 3)} ± {_f(cv.get('std'), 3)}",
                "",
                "",
                members(r),
                f"{_f(r.durations.get('wall'), 0)} / {_f(outer.get('wall_s'), 0)}",
                "",
                _f(outer.get("load"), 1),
            ]
        ]

    def summary(self) -> list[list[str]]:
        """Per dataset, the curve's four checks on the held-out macro-F1 (and ROC-AUC)."""
        out = []
        for dataset in self.datasets:
            scores = [
                (b, self.final[dataset, b]["f1_macro"])
                for b in self.budgets
                if (dataset, b) in self.final and "f1_macro" in self.final[dataset, b]
            ]
            out.append(
                [
                    dataset,
                    " → ".join(f"{s:.4f}" for _, s in scores) or "—",
                    self._grows(scores),
                    self._beats_first(dataset),
                    self._wall(dataset),
                    self._vs_peers(dataset),
                ]
            )
        return out

    @staticmethod
    def _grows(scores: list[tuple[float, float]]) -> str:
        if len(scores) < 2:
            return "n/a (one budget)"
        drops = [
            f"{a:g}→{b:g} s {sb - sa:+.4f}"
            for (a, sa), (b, sb) in itertools.pairwise(scores)
            if round(sb - sa, 9) < -TOLERANCE  # rounded: 0.82 - 0.815 is not a drop
        ]
        total = scores[-1][1] - scores[0][1]
        verdict = "yes" if not drops else "no: " + ", ".join(drops)
        return f"{verdict} ({scores[0][0]:g}→{scores[-1][0]:g} s: {total:+.4f})"

    def _beats_first(self, dataset: str) -> str:
        first = self.first.get(dataset, {}).get("f1_macro")
        if first is None:
            return "n/a (first trial not scored)"
        parts = []
        for b in self.budgets:
            score = self.final.get((dataset, b), {}).get("f1_macro")
            if b >= 300 and score is not None:
                parts.append(f"{b:g} s: {'yes' if score > first else 'no'} ({score - first:+.4f})")
        return "; ".join(parts) if parts else f"n/a (no budget ≥ 300 s; first {first:.4f})"

    def _wall(self, dataset: str) -> str:
        ratios = {b: self.ratio[dataset, b] for b in self.budgets if (dataset, b) in self.ratio}
        if not ratios:
            return "—"
        worst = max(ratios, key=lambda b: ratios[b])
        ok = "yes" if ratios[worst] <= 1.1 else "no"
        return f"{ok} (max {ratios[worst]:.2f} at {worst:g} s)"

    def _vs_peers(self, dataset: str, peer: str = "autogluon") -> str:
        mine = self.final.get((dataset, 120.0))
        theirs = self.peers.get((dataset, 120.0), {}).get(peer)
        if mine is None or theirs is None:
            return f"n/a (no 120 s run with {peer})"
        df1 = mine["f1_macro"] - theirs["f1_macro"]
        dauc = mine["roc_auc"] - theirs["roc_auc"]
        ok = "yes" if round(df1, 9) >= 0 and round(dauc, 9) >= 0 else "no"
        return f"{ok} (F1 {df1:+.4f}, AUC {dauc:+.5f})"


SUMMARY_HEADERS = [
    "dataset",
    "final held-out macro-F1 by budget",
    "grows (each step ≥ previous − 0.005)",
    "final beats the first trial at ≥ 300 s",
    "wall ≤ 1.1 × budget (call)",
    "at 120 s: F1 and AUC ≥ autogluon's (same rule)",
]


def body(args: argparse.Namespace, results: Path) -> str:
    curve = Curve(results, args.datasets, args.budgets)
    rows = table(HEADERS, curve.rows())
    peers = ", ".join(args.peers) or "none"
    if args.peers and args.peer_budgets != set(args.budgets):
        peers += " at " + ", ".join(f"{b:g}" for b in sorted(args.peer_budgets)) + " s only"
    mode = (
        "CV folds at budget/5 each, then the held-out model at the budget (`--peer-cv`)"
        if args.peer_cv
        else "cross-validated on the dataset's folds (budget/folds each) to fit the decision "
        "rule every row gets, then refitted on all training rows with time limit = budget and "
        "scored once on the held-out rows with that rule"
    )
    notes = (
        f"Budgets {', '.join(f'{b:g}' for b in args.budgets)} s per dataset job, a fresh feature "
        f"cache per job (encoding inside the budget), default search space, no ablation. Peers "
        f"({peers}): {mode}; `tfidf-xgboost` ignores its time limit"
        + ("" if args.peer_cv else " and is fitted once per dataset")
        + ". Trials evaluated = completed + pruned by a rule; declined = skipped by the "
        "cost model before starting, cut = stopped by the deadline. Wall: the job's own "
        "(`budget.wall_s`, loading to held-out scoring) / the whole call (result files "
        "included); wall / budget uses the call. Load: 1-minute load average when the job "
        "started (2 shared cores)."
    )
    return (
        notes
        + "\n\n"
        + rows
        + "\n\n### The curve's checks\n\n"
        + table(SUMMARY_HEADERS, curve.summary())
    )


def write_partial(args: argparse.Namespace, results: Path, name: str) -> None:
    """The table so far, to ``benchmarks/results/<name>.partial.md`` (a crash keeps the rows)."""
    try:
        RESULTS.mkdir(parents=True, exist_ok=True)
        text = f"# budget curve, partial (results in {results})\n\n{body(args, results)}\n"
        (RESULTS / f"{name}.partial.md").write_text(text)
    except Exception:  # the table is a view: a bug in it must not stop the run
        traceback.print_exc()


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=float, nargs="+", default=BUDGETS, help="seconds")
    parser.add_argument(
        "--dataset", nargs="+", dest="datasets", choices=list(DATASETS), default=list(DATASETS)
    )
    parser.add_argument("--peer", nargs="+", dest="peers", default=PEERS, help="default: both")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument(
        "--no-search",
        action="store_true",
        help="only the peers (into --results, beside an earlier run's jobs; then --rebuild)",
    )
    parser.add_argument(
        "--peer-budgets", type=float, nargs="+", help="run the peers only at these (default: all)"
    )
    parser.add_argument(
        "--peer-python",
        default=sys.executable,
        help="interpreter for the peers' held-out fits, e.g. a venv with mmbench[peers]",
    )
    parser.add_argument(
        "--peer-cv",
        action="store_true",
        help="peers as reference jobs (CV at budget/5 per fold + held-out at the budget), here",
    )
    parser.add_argument("--results", type=Path, help="keep every job's files here (default: temp)")
    parser.add_argument("--name", default="budget_curve", help="benchmarks/results/<name>.md")
    parser.add_argument("--rebuild", action="store_true", help="only the table, from --results")
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared data folder")
    parser.add_argument(
        "--mirror", type=Path, default=SHARED / "mirror", help="for the public suites"
    )
    parser.add_argument("--peer-job", help=argparse.SUPPRESS)
    args = parse_args(parser, argv, check=False)
    if args.peer_job:
        return run_peer_job(json.loads(args.peer_job))
    require_clean()  # now refuse a dirty tree (a peer child writes no table)
    args.budgets = sorted(args.budgets)
    args.peers = [] if args.no_peers else args.peers
    args.peer_budgets = set(args.budgets if args.peer_budgets is None else args.peer_budgets)
    if args.rebuild:
        if args.results is None:
            parser.error("--rebuild needs --results")
    elif args.peers and not args.peer_cv:
        print(_peer_note(args), file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        results = args.results or Path(tmp) / "results"
        if not args.rebuild:
            run_curve(args, results, Path(tmp), args.name)
        text = body(args, results)
    emit(args.name, "The budget curve: held-out scores as the budget grows", text)
    (RESULTS / f"{args.name}.partial.md").unlink(missing_ok=True)
    return 0


def _peer_note(args: argparse.Namespace) -> str:
    """Which peers the peer interpreter can run (a clear note when AutoGluon is absent)."""
    code = (
        "from mmbench.peers import PEERS\n"
        f"for n in {args.peers!r}: print(n, '|', PEERS.get(n).available() or 'available')"
    )
    env = _child_env()
    try:
        done = subprocess.run(
            [args.peer_python, "-c", code], env=env, capture_output=True, text=True, timeout=120
        )
        lines = done.stdout.strip() or done.stderr.strip()[-500:]
    except (OSError, subprocess.SubprocessError) as exc:
        lines = f"cannot run {args.peer_python}: {exc}"
    return f"peers in {args.peer_python}:\n{lines}"


if __name__ == "__main__":
    raise SystemExit(main())

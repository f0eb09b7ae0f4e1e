"""What the greedy climb should maximize: the primary metric, or log-loss then a decision rule.

For macro-F1 (a metric of decisions) the final model tunes per-class decision weights on the
blend's out-of-fold (OOF) probabilities. The blend itself can be chosen by the metric — which
picks members that move decisions on the OOF rows, and can trade away ranking quality (ROC-AUC)
— or by log-loss, a proper score of the probabilities the decision rule then thresholds.

For each dataset this cross-validates a fixed set of candidates, as a search would produce them
(the default space's portfolio entries, then ``--extra`` configurations drawn at random from the
default space restricted to the linear and LightGBM heads; a candidate whose CV passes
:data:`TRIAL_LIMIT_S` is cut and left out, as a budgeted search would), once; then plans the final model from the same
OOF arrays with each ``select_by``, fits it as the search job does (fold models, no deadline)
and scores it once on the held-out rows. Only the plan differs between rows of one dataset.

    python benchmarks/ensemble_selection.py [--dataset adult emoji fsdd_digits]
        [--extra 4] [--allow-dirty]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, emit, machine, oracle_f1, require_clean, table

SUITES = REPO / "benchmarks" / "suites"
DATASETS = {
    "adult": (SUITES / "adult.yaml", "adult"),
    "emoji": (SUITES / "real.yaml", "emoji"),
    "fsdd_digits": (SUITES / "real.yaml", "fsdd_digits"),
}
CHEAP_HEADS = ["linear", "lightgbm"]
TRIAL_LIMIT_S = 120.0
"""A candidate's CV is cut after this (as a budgeted search would cut it) and left out."""


def load(name: str, seed: int) -> tuple[Any, Any, str]:
    from mmbench.data import load_table
    from mmbench.suite import load_suite

    path, dataset = DATASETS[name]
    suite = load_suite(path)
    spec = next(d for d in suite.datasets if d.name == dataset)
    train = load_table(spec, suite.root, seed=suite.seed)
    test = load_table(spec, suite.root, split="test", seed=suite.seed, classes=train.classes)
    return train, test, spec.protocol.primary_metric


def candidates(train: Any, extra: int, seed: int) -> list[Any]:
    """The portfolio's pipelines for ``train``, then ``extra`` random cheap-head draws."""
    import optuna

    from mmbench.search.portfolio import portfolio
    from mmbench.search.sampling import sample_pipeline
    from mmbench.space import SearchSpace

    space = SearchSpace()
    modalities = list(train.modalities)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    entries = portfolio(space, modalities)
    for params in entries:
        study.enqueue_trial(params, skip_if_exists=True)
    cheap = space.model_copy(update={"fusion": CHEAP_HEADS})
    specs = [sample_pipeline(space, study.ask(), modalities) for _ in entries]
    draws = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed + 1))
    specs += [sample_pipeline(cheap, draws.ask(), modalities) for _ in range(extra)]
    return specs


def run(name: str, extra: int, seed: int) -> list[list[str]]:
    from mmbench.budget import Deadline, DeadlineReached
    from mmbench.evaluation import cv_folds
    from mmbench.final import fit_final, plan_ensemble
    from mmbench.pipeline import evaluate_pipeline
    from mmbench.pipeline.cache import FeatureCache, default_cache_dir
    from mmbench.results.identity import describe

    train, test, primary = load(name, seed)
    folds = cv_folds(train.labels, 5, 1, seed)
    cache = FeatureCache(default_cache_dir())  # frozen features are shared with the runs
    results = {}
    for n, spec in enumerate(candidates(train, extra, seed)):
        start = time.perf_counter()
        try:
            cv = evaluate_pipeline(
                train, spec, folds, cache=cache, deadline=Deadline.after(TRIAL_LIMIT_S)
            )
        except DeadlineReached:
            print(f"{name} trial {n}: {describe(spec)} cut after {TRIAL_LIMIT_S:.0f} s", flush=True)
            continue
        seconds = time.perf_counter() - start
        if cv.ok:
            results[n] = cv
        print(
            f"{name} trial {n}: {describe(spec)} {primary} "
            f"{cv.mean(primary) if cv.ok else float('nan'):.4f} ({seconds:.0f} s)",
            flush=True,
        )
    rows = []
    for select_by in ("primary", "log_loss"):
        plan = plan_ensemble(results, train.labels, folds, primary, select_by=select_by)
        model = fit_final(train, plan, folds, seed=seed, cache=cache)
        held = model.score(test)
        oracle = oracle_f1(test.labels, model.predict_proba(test))
        oracle_text = "" if oracle is None else f"{oracle:.4f}"
        heads = ", ".join(
            f"{results[t].spec.fusion.name}×{w:.2f}"
            for t, w in zip(model.trials, model.weights, strict=True)
        )
        rows.append(
            [
                name,
                select_by,
                plan.combiner,
                heads,
                f"{plan.cv.mean(primary):.4f}",
                f"{held['f1_macro']:.4f}",
                oracle_text,
                f"{held['roc_auc']:.5f}",
                f"{held.get('log_loss', float('nan')):.4f}",
            ]
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", nargs="+", default=list(DATASETS))
    parser.add_argument("--extra", type=int, default=4, help="random cheap-head candidates")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="ensemble_selection")
    parser.add_argument("--allow-dirty", action="store_true")
    args = parser.parse_args()
    require_clean(args.allow_dirty)
    load = machine()  # at the start; emit's header has the machine at the end
    rows = [row for name in args.dataset for row in run(name, args.extra, args.seed)]
    headers = [
        "dataset",
        "select by",
        "combiner",
        "members (head×weight)",
        "CV F1m (the plan's)",
        "held-out macro-F1",
        "oracle-threshold macro-F1",
        "held-out ROC-AUC",
        "held-out log-loss",
    ]
    body = f"- at the start: {load}\n\n" + table(headers, rows)
    emit(args.name, "Ensemble selection: primary metric vs log-loss", body)


if __name__ == "__main__":
    main()

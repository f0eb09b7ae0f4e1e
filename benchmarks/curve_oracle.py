"""How much of a macro-F1 gap could a decision rule close? (the budget curve's adult check)

Loads the final models a budget-curve run saved (``budget_curve.py --results DIR``) for one
two-class dataset, predicts its held-out rows again and reports, per budget, the held-out
macro-F1 at the model's own decision rule, ROC-AUC, and the *oracle-threshold* macro-F1: the
best any threshold on P(class 1) reaches, chosen on the held-out rows themselves (a ceiling, not
a result; :func:`_common.oracle_f1`). When the ceiling is below a target (a peer's macro-F1 +
0.01), no decision rule fitted on the training rows can reach it: only better ranking can.

    python benchmarks/curve_oracle.py --results DIR [--dataset adult] [--target 0.8221]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _common import REPO, emit, oracle_f1, parse_args, table

SUITES = {"adult": "benchmarks/suites/adult.yaml"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, required=True, help="a budget_curve.py --results")
    parser.add_argument("--dataset", default="adult", choices=sorted(SUITES))
    parser.add_argument("--target", type=float, default=None, help="macro-F1 to compare with")
    parser.add_argument("--name", default="curve_oracle")
    args = parse_args(parser, argv)

    import joblib

    from mmbench.data import load_table
    from mmbench.evaluation import compute_metrics
    from mmbench.suite import load_suite

    suite = load_suite(REPO / SUITES[args.dataset])
    spec = next(d for d in suite.datasets if d.name == args.dataset)
    train = load_table(spec, suite.root, seed=suite.seed)
    test = load_table(spec, suite.root, split="test", seed=suite.seed, classes=train.classes)
    models = sorted(
        (args.results / args.dataset).glob(f"*s/**/{args.dataset}/models/ensemble.joblib"),
        key=lambda p: int(p.relative_to(args.results / args.dataset).parts[0][:-1]),
    )
    if not models:
        print(f"no saved final models under {args.results / args.dataset}", file=sys.stderr)
        return 1
    rows = []
    for path in models:
        budget = path.relative_to(args.results / args.dataset).parts[0]
        model = joblib.load(path)
        proba = model.predict_proba(test)
        metrics = compute_metrics(test.labels, proba, weights=model.decision)
        ceiling = oracle_f1(test.labels, proba)
        row = [budget, f"{metrics['f1_macro']:.4f}", f"{metrics['roc_auc']:.5f}"]
        row.append("—" if ceiling is None else f"{ceiling:.4f}")
        if args.target is not None:
            row.append("—" if ceiling is None else "yes" if ceiling >= args.target else "no")
        rows.append(row)
    headers = ["budget", "held-out macro-F1", "held-out ROC-AUC", "oracle-threshold macro-F1"]
    if args.target is not None:
        headers.append(f"ceiling ≥ {args.target:.4f}")
    emit(
        args.name,
        f"{args.dataset}: the final models' held-out macro-F1 and its threshold ceiling",
        f"{len(test)} held-out rows, models from {args.results}\n\n" + table(headers, rows),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

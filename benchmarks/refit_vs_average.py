"""The final model's fitting rule, measured: refit on all training rows, or average the fold models?

For every dataset of a suite with a ``test_source`` (default ``benchmarks/suites/real.yaml``; run
``benchmarks/real_data.py`` first) and every head in ``--fusion``, one generic representation —
Lite0 at 96 px for images, MiniLM for text, ``tabular`` for tables, log-mel for audio, chosen
per modality and never per dataset — is encoded once for the training and held-out rows. Then:

- **refit**: one head trained on all training rows (what ``mmbench.final.fit_final`` does);
- **fold average**: the five heads of a stratified 5-fold CV on the training rows (the models a
  search has already trained), their held-out probabilities averaged.

Both are scored on the held-out rows. The table gives macro-F1, ROC-AUC, and the seconds spent
training the model(s) that answer the held-out rows (the fold average's are seconds a search has
already spent, but its five models must be kept and each prediction costs five).

The encoders are fitted once on all training rows (the tabular scaler), for both rules alike.

    python benchmarks/refit_vs_average.py [--suite PATH] [--fusion linear --fusion xgboost ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import REPO, emit, parse_args, table

SUITE = REPO / "benchmarks" / "suites" / "real.yaml"
ENCODERS = {
    "image": {"name": "efficientnet_lite0", "options": {"image_size": 96}},
    "text": "minilm",
    "tabular": "tabular",
    "audio": "logmel",
}
HEADERS = ["dataset", "head", "rule", "held-out macro-F1", "held-out ROC-AUC", "train s", "models"]


def features(dataset: Any, root: Path) -> tuple[Any, np.ndarray, np.ndarray, int]:
    """Features of training and held-out rows together; the two row index arrays; classes."""
    from mmbench.config import PipelineSpec
    from mmbench.data import load_table
    from mmbench.data.table import MultiModalTable
    from mmbench.pipeline import build_encoders, encode

    train = load_table(dataset, root, seed=0)
    test = load_table(dataset, root, split="test", classes=train.classes)
    both = MultiModalTable(
        name=dataset.name,
        labels=np.concatenate([train.labels, test.labels]),
        classes=train.classes,
        **{m: _concat(train[m], test[m]) for m in train.modalities},
    )
    spec = PipelineSpec.model_validate({"encoders": {m: ENCODERS[m] for m in train.modalities}})
    rows = np.arange(len(train))
    feats, _ = encode(both, build_encoders(spec, train.modalities), rows)
    return feats, rows, np.arange(len(train), len(both)), train.n_classes


def _concat(a: Any, b: Any) -> Any:
    if hasattr(a, "iloc"):
        import pandas as pd

        return pd.concat([a, b], ignore_index=True)
    return list(a) + list(b)


def compare(feats: Any, train: np.ndarray, test: np.ndarray, n_classes: int, fusion: str) -> list:
    """(rule, metrics, train seconds, model count) for refit and for the fold average."""
    from mmbench.config import PipelineSpec
    from mmbench.evaluation import compute_metrics, cv_folds
    from mmbench.pipeline import fit_head

    spec = PipelineSpec.model_validate({"fusion": fusion})
    labels = feats.labels[train]
    held_out = feats.take(test)

    def fit(rows: np.ndarray) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        head, _ = fit_head(spec, feats.take(rows), {}, n_classes, seed=0)
        seconds = time.perf_counter() - start
        return head.predict_proba(held_out), seconds

    refit, refit_s = fit(train)
    folds = cv_folds(labels, 5, 1, seed=0)
    fold_fits = [fit(train[f.train]) for f in folds]
    average = np.mean([p for p, _ in fold_fits], axis=0)
    y = held_out.labels
    return [
        ("refit", compute_metrics(y, refit), refit_s, 1),
        ("fold average", compute_metrics(y, average), sum(s for _, s in fold_fits), len(folds)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, default=SUITE)
    parser.add_argument("--fusion", action="append", dest="fusions")
    parser.add_argument("--name", default="refit_vs_average")
    args = parse_args(parser, argv)
    if not args.suite.exists():
        print(f"{args.suite} not found", file=sys.stderr)
        return 2
    from mmbench.suite import load_suite

    suite = load_suite(args.suite)
    out = []
    for dataset in suite.datasets:
        if dataset.test_source is None:
            continue
        feats, train, test, n_classes = features(dataset, suite.root)
        for fusion in args.fusions or ["linear", "xgboost", "early"]:
            for rule, metrics, seconds, models in compare(feats, train, test, n_classes, fusion):
                out.append(
                    [
                        dataset.name,
                        fusion,
                        rule,
                        f"{metrics['f1_macro']:.4f}",
                        f"{metrics['roc_auc']:.4f}",
                        f"{seconds:.1f}",
                        models,
                    ]
                )
                print(" | ".join(map(str, out[-1])), file=sys.stderr, flush=True)
    emit(
        args.name,
        "Refit on all rows vs average of the fold models (held-out rows)",
        table(HEADERS, out),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

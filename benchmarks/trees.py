"""Trees where trees win: boosted trees against the linear head on tabular + sparse text.

Every pipeline is cross-validated by the library (``evaluate_pipeline``: 5 stratified folds, an
inner 15 % split of each fold's training rows for early stopping, class weights on), one
thread per head, on:

- ``adult``: a stratified 20,000-row sample of UCI Adult (14 columns, tabular only), from
  ``../shared/data`` (skipped without it);
- ``emoji``: 3,655 emoji, CLDR name as text + 4 tabular columns -> Unicode group (9 classes),
  from ``../shared/data`` (skipped without it);
- ``synthetic``: 20,000 rows of the built-in generator, text + tabular only (4 classes).

Pipelines (text: ``tfidf`` sparse n-grams unless named ``svd``; tabular: ``tabular``):

- ``linear``: the portfolio's first entry (one-hot categoricals, C = 1);
- ``linear splines``: the same with a cubic spline basis (5 knots) per number;
- ``xgb onehot`` / ``xgb native``: histogram XGBoost (200 rounds, depth 4, lr 0.1, early
  stopping after 20) on one-hot categoricals / on category codes split natively;
- ``xgb native svd``: ``xgb native`` with the n-grams reduced to 64 SVD components;
- ``lgbm onehot`` / ``lgbm native``: the ``lightgbm`` head on exactly the feature matrices of
  ``xgb onehot`` / ``xgb native`` (same rounds, learning rate, early stopping, weights and
  categorical columns; 15 leaves against depth 4's 16);
- ``lgbm native slow``: ``lgbm native`` at half the learning rate (0.05), twice the rounds (400)
  and LightGBM's default 31 leaves;
- ``cat native svd``: the ``catboost`` head at its defaults (400 rounds, depth 6, lr 0.1, early
  stopping after 20) on category codes as CatBoost categorical features and the n-grams reduced
  to 64 SVD components (the head takes no sparse input);
- ``cat native ngrams`` / ``lgbm native ngrams``: ``cat native svd`` / ``lgbm native`` on the
  counts of the 256 most frequent 1-2-grams (``ngrams``, dense) instead.

The table gives out-of-fold macro-F1 and ROC-AUC (mean of folds), the seconds of the whole
5-fold CV (encoding included, feature cache off) and of the heads' fits alone.

    python benchmarks/trees.py [--rows 20000] [--shared ../shared] [--only adult,emoji] [--pipelines 'linear,lgbm onehot']
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, machine, table

from mmbench.config import EncoderSpec, FusionSpec, PipelineSpec, TrainSpec
from mmbench.data.table import MultiModalTable

DEFAULT_SHARED = Path(__file__).resolve().parents[2] / "shared"
TREE = {"n_estimators": 200, "max_depth": 4, "learning_rate": 0.1, "n_jobs": 1}
LGBM = {"n_estimators": 200, "num_leaves": 15, "learning_rate": 0.1, "n_jobs": 1}
LGBM_SLOW = {"n_estimators": 400, "num_leaves": 31, "learning_rate": 0.05, "n_jobs": 1}
CAT = {"n_estimators": 400, "depth": 6, "learning_rate": 0.1, "n_jobs": 1}
SPARSE = {"name": "tfidf", "options": {"sparse": True}}
SVD = {"name": "tfidf", "options": {"svd_dim": 64}}
COUNTS = {"name": "ngrams", "options": {"max_features": 256}}
ONEHOT = {"name": "tabular", "options": {}}
ORDINAL = {"name": "tabular", "options": {"categorical": "ordinal"}}
SPLINES = {"name": "tabular", "options": {"splines": 5}}

# name -> (text encoder, tabular encoder, fusion, options)
PIPELINES: dict[str, tuple[dict[str, Any], dict[str, Any], str, dict[str, Any]]] = {
    "linear": (SPARSE, ONEHOT, "linear", {"C": 1.0}),
    "linear splines": (SPARSE, SPLINES, "linear", {"C": 1.0}),
    "xgb onehot": (SPARSE, ONEHOT, "xgboost", TREE),
    "xgb native": (SPARSE, ORDINAL, "xgboost", TREE),
    "xgb native svd": (SVD, ORDINAL, "xgboost", TREE),
    "lgbm onehot": (SPARSE, ONEHOT, "lightgbm", LGBM),
    "lgbm native": (SPARSE, ORDINAL, "lightgbm", LGBM),
    "lgbm native slow": (SPARSE, ORDINAL, "lightgbm", LGBM_SLOW),
    "cat native svd": (SVD, ORDINAL, "catboost", CAT),
    "cat native ngrams": (COUNTS, ORDINAL, "catboost", CAT),
    "lgbm native ngrams": (COUNTS, ORDINAL, "lightgbm", LGBM),
}


def load_tables(shared: Path, rows: int, only: set[str] | None) -> dict[str, MultiModalTable]:
    import pandas as pd

    from mmbench.data.synthetic import generate

    out: dict[str, MultiModalTable] = {}
    adult = shared / "data" / "adult" / "adult.parquet"
    if adult.is_file() and (not only or "adult" in only):
        frame = pd.read_parquet(adult)
        frame = frame.groupby("income", group_keys=False).sample(
            n=None, frac=min(1.0, rows / len(frame)), random_state=0
        )
        out["adult"] = _table("adult", frame.drop(columns="income"), None, frame["income"])
    emoji = shared / "data" / "emoji"
    csv = next(iter(sorted(emoji.glob("*.csv"))), None) if emoji.is_dir() else None
    if csv is not None and (not only or "emoji" in only):
        frame = pd.read_csv(csv)
        tab = frame[["n_codepoints", "has_skin_tone", "has_zwj", "emoji_version"]]
        out["emoji"] = _table("emoji", tab, frame["name"], frame["group"])
    if not only or "synthetic" in only:
        signal = {"text": 0.5, "tabular": 0.4}
        frame = generate(n_rows=rows, n_classes=4, seed=1, imbalance=0.3, signal=signal)
        frame = frame.remove_columns(["image", "audio"]).to_pandas()
        tab = frame[["num_0", "num_1", "num_2", "num_3", "cat_0", "cat_1"]]
        out["synthetic"] = _table("synthetic", tab, frame["text"], frame["label"])
    return out


def _table(name: str, tabular: Any, text: Any, target: Any) -> MultiModalTable:
    classes, labels = np.unique(np.asarray(target).astype(str), return_inverse=True)
    return MultiModalTable(
        name=name,
        labels=labels,
        classes=[str(c) for c in classes],
        text=None if text is None else [str(t) for t in text],
        tabular=tabular.reset_index(drop=True),
    )


def spec(text_enc: dict[str, Any], tab_enc: dict[str, Any], fusion: str, options: dict) -> Any:
    return PipelineSpec(
        encoders={"text": EncoderSpec(**text_enc), "tabular": EncoderSpec(**tab_enc)},
        fusion=FusionSpec(name=fusion, options=options),
        training=TrainSpec(device="cpu"),
    )


def run(data: MultiModalTable, name: str) -> list[Any]:
    from mmbench.evaluation import cv_folds
    from mmbench.pipeline import evaluate_pipeline

    text_enc, tab_enc, fusion, options = PIPELINES[name]
    modalities = data.modalities
    started = time.perf_counter()
    cv = evaluate_pipeline(
        data, spec(text_enc, tab_enc, fusion, options), cv_folds(data.labels, 5, 1, 0),
        modalities=modalities,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if not cv.ok:
        return [data.name, name, "failed", cv.failures[0][:80], "", "", ""]
    trees = [f.info.get("n_trees") for f in cv.folds if f.info.get("n_trees") is not None]
    fit = sum(f.info.get("fit_s", 0.0) for f in cv.folds)
    return [
        data.name,
        name,
        f"{cv.mean('f1_macro'):.4f}",
        f"{cv.mean('roc_auc'):.4f}",
        f"{seconds:.1f}",
        f"{fit:.1f}",
        f"{np.median(trees):.0f}" if trees else "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000, help="rows of adult and synthetic")
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--only", default="", help="comma-separated datasets")
    parser.add_argument("--pipelines", default="", help="comma-separated pipeline names")
    parser.add_argument("--out", default="trees", help="results/<OUT>.md")
    args = parser.parse_args()
    only = {s for s in args.only.split(",") if s} or None
    wanted = {s for s in args.pipelines.split(",") if s}
    tables = load_tables(args.shared, args.rows, only)
    loads = [os.getloadavg()[0]]
    rows = []
    for data in tables.values():
        for name in [p for p in PIPELINES if p in wanted or not wanted]:
            if name in ("xgb native svd", "cat native ngrams", "lgbm native ngrams") and (
                data.text is None
            ):
                continue
            rows.append(run(data, name))
            loads.append(os.getloadavg()[0])
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    sizes = ", ".join(f"{t.name} {len(t)} rows" for t in tables.values())
    body = (
        f"{sizes}; 5-fold CV, 1 thread per head; 1-min load average during the run "
        f"{min(loads):.1f}-{max(loads):.1f} ({machine()})\n\n"
        + table(["data", "pipeline", "F1m", "ROC-AUC", "CV s", "fit s", "trees (median)"], rows)
    )
    emit(args.out, "Boosted trees vs the linear head on tabular + sparse text", body)


if __name__ == "__main__":
    main()

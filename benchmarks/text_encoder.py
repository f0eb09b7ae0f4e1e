"""Throughput and downstream score of the frozen MiniLM sentence encoder, one speed-up at a time.

Each variant is the library's ``minilm`` encoder with some options; the table gives texts per
second (median of ``--repeats`` timed passes, variants interleaved within each pass so that the
load of a shared machine falls on all of them alike) and the macro-F1 of a class-balanced
logistic regression over the embeddings (5-fold stratified CV) on each text set:

- ``emoji``: the 3,655 CLDR emoji names -> Unicode group (9 classes), from ``../shared/data``;
- ``adult``: a stratified sample of UCI Adult rows written as one sentence each (workclass,
  education, marital status, occupation, relationship, race, sex, country, age, hours) -> income,
  from ``../shared/data``;
- ``synthetic``: the built-in generator's sentences -> class (always available).

Variants (each row changes one thing against the row it names):

- ``before``: the encoder as it was: fp32, torch's default threads (every core), batches of 64
  sorted by length with per-batch padding (sentence-transformers does both), 256-token cap;
- ``unsorted``: ``before`` without the global length sort (batches encoded in input order);
- ``threads=idle``: ``before`` with one torch thread per idle core (the new default);
- ``cap 128``: ``threads=idle`` with ``max_tokens: 128``;
- ``int8``: ``threads=idle`` with ``quantize: int8`` (dynamic int8 linear layers);
- ``int8, all cores``: ``int8`` with every core's thread (to separate quantization from threads);
- ``static``: not MiniLM but a static embedding distilled from it by model2vec (a vector per
  vocabulary token from the bundled MiniLM, PCA to 256 dimensions, Zipf-weighted; texts are the
  mean of their tokens' vectors), distilled once offline into a temporary folder (about 2.5 min
  on one loaded core). Only when ``model2vec`` is installed (``pip install 'model2vec[distill]'``;
  not a dependency of mmbench).

    python benchmarks/text_encoder.py [--repeats 3] [--rows 2000] [--shared ../shared]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, machine, median, table

DEFAULT_SHARED = Path(__file__).resolve().parents[2] / "shared"
ALL_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

VARIANTS: dict[str, dict[str, Any]] = {
    "before": {"threads": ALL_CORES},
    "unsorted": {"threads": ALL_CORES, "_unsorted": True},
    "threads=idle": {},
    "cap 128": {"max_tokens": 128},
    "int8": {"quantize": "int8"},
    "int8, all cores": {"quantize": "int8", "threads": ALL_CORES},
    "static": {"_static": True},
}


def text_sets(shared: Path, rows: int) -> dict[str, tuple[list[str], np.ndarray]]:
    """Name -> (texts, integer labels); the shared sets only when ``shared`` has them."""
    import pandas as pd

    from mmbench.data.synthetic import generate

    out: dict[str, tuple[list[str], np.ndarray]] = {}
    emoji = shared / "data" / "emoji"
    csv = next(iter(sorted(emoji.glob("*.csv"))), None) if emoji.is_dir() else None
    if csv is not None:
        frame = pd.read_csv(csv)
        out["emoji"] = (frame["name"].astype(str).tolist(), _codes(frame["group"]))
    adult = shared / "data" / "adult" / "adult.parquet"
    if adult.is_file():
        frame = pd.read_parquet(adult)
        frame = frame.groupby("income", group_keys=False).sample(
            frac=min(1.0, rows / len(frame)), random_state=0
        )
        out["adult"] = (frame.apply(_adult_sentence, axis=1).tolist(), _codes(frame["income"]))
    synth = generate(n_rows=rows, n_classes=4, seed=0).to_pandas()
    out["synthetic"] = (synth["text"].astype(str).tolist(), _codes(synth["label"]))
    return out


def _codes(column: Any) -> np.ndarray:
    return np.unique(column.astype(str), return_inverse=True)[1]


def _adult_sentence(row: Any) -> str:
    return (
        f"A {row['age']}-year-old {row['gender']} ({row['race']}) from {row['native-country']}, "
        f"{row['marital-status']}, {row['relationship']}; education {row['education']}; works as "
        f"{row['occupation']} in {row['workclass']}, {row['hours-per-week']} hours a week."
    )


def encode(variant: dict[str, Any], texts: list[str]) -> tuple[np.ndarray, float]:
    """Embeddings and seconds taken (the model is loaded before the clock starts)."""
    from mmbench.encoders.base import create_encoder

    if variant.get("_static"):
        model = static_minilm()
        started = time.perf_counter()
        return np.asarray(model.encode(texts)), time.perf_counter() - started
    options = {k: v for k, v in variant.items() if not k.startswith("_")}
    encoder = create_encoder("minilm", device="cpu", **options)
    encoder.transform(texts[:8])  # load (and quantize) the model outside the timing
    started = time.perf_counter()
    if variant.get("_unsorted"):
        size = encoder.options["batch_size"]
        parts = [encoder.transform(texts[i : i + size]) for i in range(0, len(texts), size)]
        x = np.concatenate(parts)
    else:
        x = encoder.transform(texts)
    return x, time.perf_counter() - started


@lru_cache(maxsize=1)
def static_minilm() -> Any:
    """model2vec's static distillation of the bundled MiniLM (offline: no hub access)."""
    import tempfile

    from model2vec import StaticModel
    from model2vec.distill import distill

    from mmbench.encoders.sentence import bundled_minilm_path

    folder = Path(tempfile.mkdtemp(prefix="static_minilm_"))
    distill(model_name=bundled_minilm_path(), pca_dims=256, device="cpu").save_pretrained(folder)
    return StaticModel.from_pretrained(str(folder))


def macro_f1(x: np.ndarray, y: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    model = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced")
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    return float(f1_score(y, cross_val_predict(model, x, y, cv=folds), average="macro"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=2000, help="rows of adult and synthetic")
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--out", default="text_encoder", help="results/<OUT>.md")
    args = parser.parse_args()
    sets = text_sets(args.shared, args.rows)
    if importlib.util.find_spec("model2vec") is None:
        VARIANTS.pop("static")
    loads = [os.getloadavg()[0]]
    speeds: dict[tuple[str, str], list[float]] = {}
    embeddings: dict[tuple[str, str], np.ndarray] = {}
    for rep in range(args.repeats):
        order = list(VARIANTS) if rep % 2 == 0 else list(reversed(VARIANTS))
        for name in order:
            for set_name, (texts, _) in sets.items():
                x, seconds = encode(VARIANTS[name], texts)
                speeds.setdefault((name, set_name), []).append(len(texts) / seconds)
                embeddings[(name, set_name)] = x
                print(f"pass {rep} {name:16s} {set_name:9s} {len(texts) / seconds:7.0f}/s",
                      file=sys.stderr, flush=True)  # fmt: skip
        loads.append(os.getloadavg()[0])
    headers = ["variant"] + [f"{s} texts/s" for s in sets] + [f"{s} F1m" for s in sets]
    rows = []
    for name in VARIANTS:
        rate = [f"{median(speeds[(name, s)]):.0f}" for s in sets]
        f1 = [f"{macro_f1(embeddings[(name, s)], y):.4f}" for s, (_, y) in sets.items()]
        rows.append([name, *rate, *f1])
    sizes = ", ".join(f"{s} {len(t)} texts" for s, (t, _) in sets.items())
    body = (
        f"{sizes}; median of {args.repeats} interleaved passes; 1-min load average during the "
        f"run {min(loads):.1f}-{max(loads):.1f} on {ALL_CORES} cores ({machine()})\n\n"
        + table(headers, rows)
    )
    emit(args.out, "MiniLM text encoder: throughput and downstream macro-F1", body)


if __name__ == "__main__":
    main()

"""The audio path on real recordings: spoken digits (FSDD) paired with 8x8 digit images.

Each Free Spoken Digit recording (``../shared/data/fsdd``, 8 kHz WAV) is paired with a random
scikit-learn ``load_digits`` image of the same digit. The images are written as PNG files and
the pairs as a CSV (audio: absolute WAV paths, image: PNG paths relative to the suite), read
through a suite YAML with a ``csv`` source, so the real file-loading path is exercised. Then
each modality alone and the fused pair are cross-validated. Skips (exit 0) when FSDD is absent.

    python benchmarks/fsdd_audio.py                   # all 3000 recordings, 5-fold CV
    python benchmarks/fsdd_audio.py --recordings 1000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import REPO, emit, mean_std, parse_args, table

FSDD = REPO.parent / "shared" / "data" / "fsdd"
AUDIO = {"sample_rate": 8000}  # FSDD's own rate: no resampling
IMAGE = {"image_size": 32}  # 8x8 digits; test_resnet's default 160 px only costs time


def build_task(fsdd: Path, out: Path, recordings: int, folds: int, seed: int) -> Path:
    """Write images, ``pairs.csv`` and ``suite.yaml`` under ``out``; returns the suite path."""
    import numpy as np
    import pandas as pd
    import yaml
    from PIL import Image
    from sklearn.datasets import load_digits

    meta = pd.read_csv(fsdd / "metadata.csv")
    if recordings < len(meta):  # the same number of recordings of every digit
        per_digit = max(1, recordings // meta["digit"].nunique())
        meta = meta.groupby("digit").sample(per_digit, random_state=seed)
    digits = load_digits()
    rng = np.random.default_rng(seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    images = []
    for i, digit in enumerate(meta["digit"]):
        pick = rng.choice(np.flatnonzero(digits.target == digit))
        pixels = (digits.images[pick] * (255 / 16)).astype(np.uint8)
        name = f"images/{i:05d}.png"
        Image.fromarray(pixels, mode="L").save(out / name)
        images.append(name)
    pairs = pd.DataFrame(
        {
            "audio": [str((fsdd / f).resolve()) for f in meta["file"]],
            "image": images,
            "speaker": meta["speaker"].to_numpy(),
            "digit": meta["digit"].to_numpy(),
        }
    )
    pairs.to_csv(out / "pairs.csv", index=False)
    suite = {
        "name": "fsdd",
        "seed": seed,
        "datasets": [
            {
                "name": "fsdd-digits",
                "source": {"kind": "csv", "path": "pairs.csv"},
                "target": "digit",
                "modalities": {"image": "image", "audio": "audio"},
                "protocol": {"folds": folds},
            }
        ],
    }
    (out / "suite.yaml").write_text(yaml.safe_dump(suite, sort_keys=False))
    return out / "suite.yaml"


def candidates() -> list[tuple[str, list[str], dict[str, Any]]]:
    """(label, modalities, pipeline) for each modality alone and the fused pair."""
    logmel = {"name": "logmel", "options": AUDIO}
    mfcc = {"name": "mfcc", "options": AUDIO}
    resnet = {"name": "timm/test_resnet", "options": IMAGE}
    out: list[tuple[str, list[str], dict[str, Any]]] = []
    for head in ("early", "xgboost"):
        out += [
            (f"audio: logmel, {head}", ["audio"], {"encoders": {"audio": logmel}, "fusion": head}),
            (f"audio: mfcc, {head}", ["audio"], {"encoders": {"audio": mfcc}, "fusion": head}),
            (
                f"image: timm/test_resnet, {head}",
                ["image"],
                {"encoders": {"image": resnet}, "fusion": head},
            ),
        ]
    both = {"audio": logmel, "image": resnet}
    for head in ("early", "xgboost", "attention"):
        pipeline = {"encoders": both, "fusion": head}
        out.append((f"fused: logmel + test_resnet, {head}", ["image", "audio"], pipeline))
    return out


def evaluate(suite_path: Path, cache_dir: Path) -> tuple[Any, list[list[str]]]:
    """Load the task through the suite, cross-validate every candidate; one row each."""
    from mmbench.config import PipelineSpec
    from mmbench.data import load_table
    from mmbench.evaluation import cv_folds
    from mmbench.pipeline import evaluate_pipeline
    from mmbench.pipeline.cache import FeatureCache
    from mmbench.suite import load_suite

    suite = load_suite(suite_path)
    spec = suite.datasets[0]
    data = load_table(spec, suite.root, seed=suite.seed)
    folds = cv_folds(data.labels, spec.protocol.folds, spec.protocol.repeats, suite.seed)
    cache = FeatureCache(cache_dir)
    rows = []
    for label, modalities, raw in candidates():
        pipeline = PipelineSpec.model_validate(raw)
        start = time.perf_counter()
        cv = evaluate_pipeline(data, pipeline, folds, modalities=modalities, cache=cache)
        wall = time.perf_counter() - start
        if not cv.ok:
            print(f"{label}: {cv.failures[0]}", file=sys.stderr)
        s = cv.summary
        rows.append(
            [label, mean_std(s, "f1_macro"), mean_std(s, "accuracy"), mean_std(s, "roc_auc"),
             f"{cv.seconds['encode']:.1f}", f"{cv.seconds['fit']:.1f}", f"{wall:.1f}"]
        )  # fmt: skip
        print(f"  {label}: {cv.mean('f1_macro'):.3f}", file=sys.stderr, flush=True)
    return data, rows


def encode_rows(cache_dir: Path) -> list[list[str]]:
    """Seconds each encoder took over the whole table, from the cache's JSON sidecars."""
    rows = []
    for sidecar in sorted(cache_dir.glob("*/*.json")):
        meta = json.loads(sidecar.read_text())
        rows.append([meta["key"]["encoder"]["name"], meta["shape"][1], f"{meta['seconds']:.1f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recordings", type=int, default=3000, help="subset size (max 3000)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parse_args(parser)
    if not (FSDD / "metadata.csv").is_file():
        print(f"skipped: Free Spoken Digit Dataset not found at {FSDD}", file=sys.stderr)
        return
    with tempfile.TemporaryDirectory(prefix="mmbench-fsdd-") as name:
        tmp = Path(name)
        start = time.perf_counter()
        suite_path = build_task(FSDD, tmp / "task", args.recordings, args.folds, args.seed)
        built = time.perf_counter() - start
        data, rows = evaluate(suite_path, tmp / "cache")
        headers = ["candidate", "macro-F1", "accuracy", "ROC-AUC", "encode s", "fit s", "wall s"]
        enc = table(["encoder", "feature dim", "seconds (all rows)"], encode_rows(tmp / "cache"))
    counts = ", ".join(f"{c}: {n}" for c, n in zip(data.classes, _counts(data), strict=True))
    body = (
        f"{len(data)} FSDD recordings ({counts}), each paired with a random `load_digits` image "
        f"of the same digit; {args.folds}-fold stratified CV (speakers are shared across folds); "
        f"chance macro-F1 is 0.1. Building the PNG/CSV task took {built:.1f} s. Encoders: "
        f"audio at {AUDIO['sample_rate']} Hz, test_resnet random-init at {IMAGE['image_size']} px."
        f" Metrics are mean ± std over folds; encode s is 0 where the feature cache already held"
        f" the features from an earlier row.\n\n## Macro-F1 per modality and fused\n\n"
        f"{table(headers, rows)}\n\n## Encoders (computed once, cached)\n\n{enc}\n"
    )
    name = "fsdd_audio" if args.recordings >= 3000 else f"fsdd_audio_{args.recordings}"
    emit(name, "FSDD spoken digits + digit images: audio path on real recordings", body)


def _counts(data: Any) -> list[int]:
    import numpy as np

    return np.bincount(data.labels, minlength=data.n_classes).tolist()


if __name__ == "__main__":
    main()

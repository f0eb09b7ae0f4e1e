"""Temporal pooling on motion video: mean and max pooling against the GRU and attention towers.

The synthetic source's video column (``video_frames``: :mod:`mmbench.data.synthetic_video`)
puts the label in the order of the frames only: every frame, and the set of frames, has the
same distribution for every class. Every pipeline is cross-validated by the library
(``evaluate_pipeline``: 5 stratified folds, an inner 15 % split for early stopping) on the video
column alone: frames through ``frames/pixels`` (8x8 grey, 64 values per frame), ``k`` = all
frames, then

- ``mean`` / ``max`` pooling with the ``linear``, ``lightgbm`` and ``early`` heads;
- ``gru`` / ``attention``: the temporal tower trained by the ``early`` fusion.

The table gives out-of-fold macro-F1 (mean ± std of folds), chance (1 / classes for balanced
classes) and the seconds of the whole CV (the frame features come from the feature cache after
the first pipeline of each pooling family).

    python benchmarks/video_pooling.py [--rows 300] [--classes 2,3] [--frames 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, machine, parse_args, table

from mmbench.config import PipelineSpec
from mmbench.data.table import MultiModalTable
from mmbench.pipeline.cache import FeatureCache

TRAINING = {"epochs": 80, "batch_size": 32, "patience": 20, "device": "cpu"}
LGBM = {"n_estimators": 200, "num_leaves": 15, "learning_rate": 0.1, "n_jobs": 1}
PIPELINES: dict[str, tuple[str, str, dict[str, Any]]] = {  # name -> (pooling, fusion, options)
    "mean + linear": ("mean", "linear", {"C": 1.0}),
    "mean + lightgbm": ("mean", "lightgbm", LGBM),
    "mean + early": ("mean", "early", {}),
    "max + linear": ("max", "linear", {"C": 1.0}),
    "max + early": ("max", "early", {}),
    "gru + early": ("gru", "early", {}),
    "attention + early": ("attention", "early", {}),
}


def motion_table(rows: int, classes: int, frames: int) -> MultiModalTable:
    from mmbench.data.synthetic import generate

    data = generate(
        n_rows=rows, n_classes=classes, seed=0, imbalance=0.0, video_frames=frames,
        signal={"video": 1.0},
    )  # fmt: skip
    names, labels = np.unique(data.data.column("label").to_pylist(), return_inverse=True)
    videos = data.data.column("video").to_pylist()
    return MultiModalTable(f"motion-{classes}", labels, [str(n) for n in names], video=videos)


def run(data: MultiModalTable, name: str, frames: int, cache: FeatureCache) -> list[str]:
    from mmbench.evaluation import cv_folds
    from mmbench.pipeline import evaluate_pipeline

    pooling, fusion, options = PIPELINES[name]
    video = {"k": frames, "pooling": pooling, "size": 8, "color": False}
    spec = PipelineSpec.model_validate(
        {
            "encoders": {"video": {"name": "frames/pixels", "options": video}},
            "fusion": {"name": fusion, "options": options},
            "training": TRAINING,
        }
    )
    started = time.perf_counter()
    cv = evaluate_pipeline(data, spec, cv_folds(data.labels, 5, 1, 0), cache=cache)
    seconds = time.perf_counter() - started
    if not cv.ok:
        return [data.name, name, "failed", cv.failures[0][:80], ""]
    scores = cv.fold_scores("f1_macro")
    return [
        data.name,
        name,
        f"{np.mean(scores):.3f} ± {np.std(scores, ddof=1):.3f}",
        f"{1 / data.n_classes:.3f}",
        f"{seconds:.1f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--classes", default="2,3", help="comma-separated class counts")
    parser.add_argument("--frames", type=int, default=8, help="frames per video (= k)")
    parser.add_argument("--pipelines", default="", help="comma-separated pipeline names")
    parser.add_argument("--out", default="video_pooling", help="results/<OUT>.md")
    args = parse_args(parser)
    import torch

    torch.set_num_threads(1)
    wanted = [p for p in PIPELINES if p in set(args.pipelines.split(",")) or not args.pipelines]
    loads, rows = [os.getloadavg()[0]], []
    with tempfile.TemporaryDirectory() as tmp:
        cache = FeatureCache(Path(tmp))
        for classes in [int(c) for c in args.classes.split(",")]:
            data = motion_table(args.rows, classes, args.frames)
            for name in wanted:
                rows.append(run(data, name, args.frames, cache))
                loads.append(os.getloadavg()[0])
                print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    body = (
        f"{args.rows} rows per dataset, {args.frames} frames of 16x16 px per video, balanced "
        f"classes; 5-fold CV, 1 torch thread; 1-min load average during the run "
        f"{min(loads):.1f}-{max(loads):.1f} ({machine()})\n\n"
        + table(["data", "pipeline", "macro-F1", "chance", "CV s"], rows)
    )
    emit(args.out, "Temporal pooling on motion video: mean/max vs GRU/attention towers", body)


if __name__ == "__main__":
    main()

"""BasicMotions held-out accuracy by sensor encoder and by sensor: what each sensor carries alone.

The suite's ablation cross-validates subsets of the 40 training recordings; this scores each
encoder on the official split instead, fitted on the 40 training recordings and scored once on
the 40 test recordings, with the accelerometer alone, the gyroscope alone and both. Encoders:
per-channel statistics and MiniRocket (10,000 kernels) under the linear head, and the 1-D CNN
tower trained with the early-fusion head. Offline, from a mirror.

    python benchmarks/sensors.py [--mirror ../shared/mirror]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from _common import REPO, emit, parse_args, table

SUITE = REPO / "suites" / "basicmotions.yaml"
PIPELINES = {
    "sensor_stats + linear": {"encoders": {"sensor": "sensor_stats"}, "fusion": "linear"},
    "minirocket + linear": {"encoders": {"sensor": "minirocket"}, "fusion": "linear"},
    "sensorcnn + early": {"encoders": {"sensor": "sensorcnn"}, "fusion": "early"},
}
SUBSETS = (["sensor_accel"], ["sensor_gyro"], ["sensor_accel", "sensor_gyro"])


def main() -> None:
    from mmbench.config import PipelineSpec, default_pipeline
    from mmbench.data import load_table
    from mmbench.pipeline import fit_pipeline
    from mmbench.suite import load_suite

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mirror", default=str(REPO.parent / "shared" / "mirror"))
    args = parse_args(parser)
    os.environ["MMBENCH_MIRROR"] = str(Path(args.mirror).resolve())
    suite = load_suite(SUITE)
    spec = suite.datasets[0]
    train = load_table(spec, suite.root)
    test = load_table(spec, suite.root, split="test", classes=train.classes)
    rows = []
    for label, given in PIPELINES.items():
        pipeline = default_pipeline(train.modalities, PipelineSpec.model_validate(given))
        cells = [label]
        for subset in SUBSETS:
            started = time.perf_counter()
            model = fit_pipeline(train, pipeline, seed=suite.seed, modalities=subset)
            predicted = model.predict_proba(test).argmax(axis=1)
            accuracy = float(np.mean(predicted == test.labels))
            seconds = time.perf_counter() - started
            print(label, "+".join(subset), f"{accuracy:.3f}", f"{seconds:.1f}s", flush=True)
            cells.append(f"{accuracy:.3f} ({seconds:.1f} s)")
        rows.append(cells)
    body = table(
        ["pipeline", "accelerometer only", "gyroscope only", "both sensors"],
        rows,
    )
    body += (
        "\n\nHeld-out accuracy on the official test split (40 recordings, 4 classes, chance "
        "0.25), fitted once on the 40 training recordings with seed "
        f"{suite.seed}; in brackets the fit + predict wall time."
    )
    emit("sensors", "BasicMotions: held-out accuracy by sensor encoder and sensor", body)


if __name__ == "__main__":
    main()

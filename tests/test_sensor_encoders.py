"""The sensor encoders (``sensor_stats``, ``minirocket``, ``sensorcnn``) on generated series, and
a suite run with two sensors whose ablation, leaderboard, report and MLflow runs name each."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mmbench.config import PipelineSpec
from mmbench.data import load_table
from mmbench.data.table import MultiModalTable
from mmbench.encoders.base import create_encoder
from mmbench.errors import MMBenchError
from mmbench.evaluation import cv_folds
from mmbench.pipeline import encode, evaluate_pipeline, take
from mmbench.pipeline.cache import FeatureCache
from mmbench.suite import parse_suite


def series(n: int, channels: int = 3, lengths: tuple[int, int] = (40, 40), seed: int = 0):
    """Labels and ``(channels, T)`` rows whose frequency follows the label; every 4th missing."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    rows: list[np.ndarray | None] = []
    for i, y in enumerate(labels):
        t = np.arange(rng.integers(lengths[0], lengths[1] + 1)) / 10
        x = np.sin((1 + 2 * y) * t[None, :] + rng.uniform(0, 6, (channels, 1)))
        rows.append(None if i % 4 == 3 else (x + rng.normal(0, 0.1, x.shape)).astype(np.float32))
    return labels, rows


@pytest.mark.parametrize("lengths", [(40, 40), (25, 60)], ids=["equal", "unequal"])
def test_stats_summarise_each_channel_and_zero_missing_rows(lengths: tuple[int, int]) -> None:
    labels, rows = series(12, lengths=lengths)
    enc = create_encoder("sensor_stats").fit(rows, labels)
    x = enc.transform(rows)
    assert x.shape == (12, 7 * 3 + 1) and x.dtype == np.float32
    assert not x[3].any() and x[0].any()
    assert np.isclose(x[0, 0], rows[0][0].mean(), atol=1e-5)  # channel 0's mean comes first
    assert enc.transform([None, None]).shape == (2, 22)  # the trained width, from any rows


@pytest.fixture
def interpreted_aeon() -> Iterator[None]:
    """aeon's convolution transforms with numba's JIT off, for this test only.

    Compiling MiniRocket's parallel numba kernels takes 30-60 s on a cold two-core CI machine
    (nothing is cached in a fresh environment); interpreted, the same aeon code runs these toy
    series in under a second. The compiled path runs in ``suites/basicmotions.yaml``'s results.
    """
    pytest.importorskip("aeon")
    import numba

    package = "aeon.transformations.collection.convolution_based"

    def forget() -> None:
        for name in [m for m in sys.modules if m.startswith(package)]:
            del sys.modules[name]

    forget()  # re-imported below with the JIT off: njit reads the flag when it decorates
    jit, numba.config.DISABLE_JIT = numba.config.DISABLE_JIT, True
    try:
        __import__(package)
        yield
    finally:
        numba.config.DISABLE_JIT = jit
        forget()


def test_minirocket_is_fitted_on_the_training_rows_only(interpreted_aeon: None) -> None:
    labels, rows = series(16, lengths=(30, 50))
    table = MultiModalTable("t", labels, ["a", "b"], sensors={"sensor_imu": rows})
    train = np.arange(8)
    options = {"n_kernels": 84, "seed": 1}
    features, _ = encode(table, {"sensor_imu": create_encoder("minirocket", **options)}, train)
    alone = create_encoder("minirocket", **options).fit(take(rows, train), labels[train])
    every = create_encoder("minirocket", **options).fit(rows, labels)
    got = features.features["sensor_imu"]
    assert got.shape == (16, 84) and not got[3].any() and not got[7].any()
    np.testing.assert_array_equal(got, alone.transform(rows))  # what train rows alone give
    assert not np.array_equal(got, every.transform(rows))  # biases from all rows would differ
    assert alone._shape == (3, 50) and every._shape == (3, 50)  # longest training series


def test_minirocket_without_aeon_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aeon", None)  # import aeon -> ImportError
    labels, rows = series(4)
    with pytest.raises(MMBenchError, match=r'pip install "mmbench\[sensor\]"'):
        create_encoder("minirocket", n_kernels=84).fit(rows, labels)


def test_sensorcnn_inputs_use_training_scale_and_its_tower_pools_over_time(
    one_torch_thread: None,
) -> None:
    import torch

    labels, rows = series(12, lengths=(30, 50))
    rows = [None if r is None else r * 5 + 2 for r in rows]
    enc = create_encoder("sensorcnn", length=32, channels=[8, 16])
    x = enc.fit(rows[:8], labels[:8]).transform(rows)
    assert x.shape == (12, 3, 32) and not x[3].any()
    present = x[[i for i in range(8) if rows[i] is not None]]
    assert abs(float(present.mean())) < 0.1 and abs(float(present.std()) - 1) < 0.1
    tower = enc.build_tower()
    assert tower(torch.from_numpy(x)).shape == (12, enc.tower_dim) == (12, 32)


def two_sensor_suite(tmp_path: Path, pipeline: dict, ablation: bool = False):
    dataset = {
        "name": "motion",
        "source": {
            "kind": "synthetic",
            "options": {
                "n_rows": 60,
                "n_classes": 3,
                "seed": 2,
                "sensor_length": 32,
                "missing": 0.1,
                "signal": {"sensor_accel": 0.9, "sensor_gyro": 0.0},
            },
        },
        "target": "label",
        "modalities": {"sensor": {"accel": "accel", "gyro": "gyro"}},
        "protocol": {"folds": 2},
        "pipeline": pipeline,
        "ablation": ablation,
    }
    suite = parse_suite({"name": "motion-suite", "seed": 0, "datasets": [dataset]})
    suite.path = tmp_path / "suite.yaml"
    return suite


def test_a_cnn_tower_per_sensor_trains_with_the_early_fusion(
    tmp_path: Path, one_torch_thread: None
) -> None:
    suite = two_sensor_suite(tmp_path, {})
    table = load_table(suite.datasets[0], suite.root)
    spec = PipelineSpec.model_validate(
        {
            "encoders": {"sensor": {"name": "sensorcnn", "options": {"length": 32}}},
            "fusion": "early",
            "training": {"epochs": 15, "batch_size": 16, "patience": 15, "lr": 0.01},
        }
    )
    from mmbench.config import default_pipeline

    spec = default_pipeline(table.modalities, spec)
    assert set(spec.encoders) == {"sensor_accel", "sensor_gyro"}
    folds = cv_folds(table.labels, folds=2, repeats=1, seed=0)
    cv = evaluate_pipeline(table, spec, folds, cache=FeatureCache(None))
    assert all(f.ok for f in cv.folds), [f.error for f in cv.folds]
    assert cv.summary["accuracy"]["mean"] > 0.6  # the accelerometer carries the label


def test_the_ablation_report_and_mlflow_name_each_sensor(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    from mmbench.leaderboard import load_leaderboard, render_markdown
    from mmbench.report import render_report
    from mmbench.results import read_ablation
    from mmbench.run import RunOptions, run_suite

    pipeline = {"encoders": {"sensor": "sensor_stats"}, "fusion": "linear"}
    suite = two_sensor_suite(tmp_path, pipeline, ablation=True)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    options = RunOptions(results_dir=tmp_path / "res", tracking_uri=uri, progress=False)
    [outcome] = run_suite(suite, options)
    assert outcome.error is None and outcome.path is not None
    [found] = (tmp_path / "res").glob("motion-suite/motion/ablation/*/ablation.json")
    report = read_ablation(found)
    assert {r.label for r in report.rows} == {
        "sensor_accel+sensor_gyro",
        "sensor_accel",
        "sensor_gyro",
    }
    shapley = {m: report.shapley[m]["mean"] for m in report.modalities}
    assert shapley["sensor_accel"] > 0.3 > abs(shapley["sensor_gyro"])  # gyro is pure noise here
    board = render_markdown(load_leaderboard(tmp_path / "res", "motion-suite", suite))
    assert "sensor_stats" in board
    page = render_report(tmp_path / "res", "motion-suite")
    assert "sensor_accel" in page and "sensor_gyro" in page
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("mmbench/motion-suite")
    assert exp is not None
    metrics = {k for r in client.search_runs([exp.experiment_id]) for k in r.data.metrics}
    assert {"ablation.shapley.sensor_accel", "ablation.shapley.sensor_gyro"} <= metrics

"""The video modality: decoding with PyAV, uniform frame sampling, the ``frames`` encoder and its
temporal towers, the synthetic motion videos, and video in ablation, MLflow, leaderboard, report.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_suite
from PIL import Image

from mmbench.config import PipelineSpec
from mmbench.data import load_table
from mmbench.data.synthetic import generate, recipe
from mmbench.data.synthetic_video import motion_steps
from mmbench.data.table import MultiModalTable
from mmbench.data.video import (
    frame_count,
    frame_list_ref,
    sample_frames,
    uniform_indices,
    write_video,
)
from mmbench.encoders.base import create_encoder
from mmbench.errors import DataError, MMBenchError
from mmbench.evaluation import cv_folds
from mmbench.pipeline import evaluate_pipeline, frozen_features
from mmbench.pipeline.cache import FeatureCache
from mmbench.suite import DatasetSpec

pytest.importorskip("av")

PIXELS = {"size": 8, "color": False}  # 64 grey values per frame: the cheapest real encoder


def ramp(n: int, size: int = 16) -> list[np.ndarray]:
    """``n`` flat frames whose brightness is 20 x their index: a decoded frame says which it was."""
    return [np.full((size, size, 3), 20 * i, dtype=np.uint8) for i in range(n)]


def brightness(frames: list[Any]) -> list[int]:
    return [round(float(np.asarray(f).mean()) / 20) for f in frames]


def test_uniform_indices_are_segment_centres_and_repeat_short_videos() -> None:
    assert uniform_indices(8, 8).tolist() == list(range(8))
    assert uniform_indices(10, 4).tolist() == [1, 3, 6, 8]
    assert uniform_indices(100, 1).tolist() == [50]
    assert uniform_indices(3, 6).tolist() == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("codec", ["ffv1", "mpeg4"])
def test_a_video_file_decodes_to_k_uniformly_sampled_frames(tmp_path: Path, codec: str) -> None:
    path = tmp_path / f"clip.{'mkv' if codec == 'ffv1' else 'mp4'}"
    path.write_bytes(write_video(ramp(10), codec=codec))
    ref = {"bytes": None, "path": str(path)}
    assert frame_count(ref) == 10
    frames = sample_frames(ref, 4)
    assert [f.size for f in frames] == [(16, 16)] * 4 and frames[0].mode == "RGB"
    assert brightness(frames) == [1, 3, 6, 8]  # uniform_indices(10, 4), in time order
    from_bytes = sample_frames({"bytes": path.read_bytes(), "path": None}, 4)
    assert brightness(from_bytes) == [1, 3, 6, 8]


def test_a_frame_list_is_sampled_like_a_file() -> None:
    pngs = []
    for pixels in ramp(10):
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="PNG")
        pngs.append({"bytes": buf.getvalue(), "path": None})
    assert brightness(sample_frames(frame_list_ref(pngs), 4)) == [1, 3, 6, 8]


def video_dataset(root: Path, on_unreadable: str = "error", frames: bool = False) -> DatasetSpec:
    """Six videos of two classes; row 3's is not a video, row 4 has none. Video files, or with
    ``frames`` each video as a list of frame images (row 3's second frame is not an image)."""
    rows = []
    for i in range(6):
        if frames:
            clip: Any = []
            for j, pixels in enumerate(ramp(3 + i % 2)):
                Image.fromarray(pixels).save(root / f"r{i}f{j}.png")
                clip.append(f"r{i}f{j}.png")
            if i == 3:
                (root / "r3f1.png").write_bytes(b"not an image")
        else:
            clip = f"clip{i}.mkv"
            video = b"this is not a video" if i == 3 else write_video(ramp(4 + i))
            (root / clip).write_bytes(video)
        rows.append({"clip": None if i == 4 else clip, "label": "ab"[i % 2], "x": float(i)})
    pd.DataFrame(rows).to_parquet(root / "videos.parquet")
    return DatasetSpec.model_validate(
        {
            "name": "clips",
            "source": {"kind": "parquet", "path": "videos.parquet"},
            "target": "label",
            "modalities": {"video": "clip", "tabular": ["x"]},
            "protocol": {"folds": 2},
            "on_unreadable": on_unreadable,
        }
    )


def test_an_unreadable_video_names_its_row_and_file_or_becomes_missing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"1 unreadable video value\(s\): row 3: .*clip3\.mkv"):
        load_table(video_dataset(tmp_path), tmp_path)
    table = load_table(video_dataset(tmp_path, on_unreadable="missing"), tmp_path)
    assert table.meta["unreadable"] == {"video": 1}
    assert table.present("video").tolist() == [True, True, True, False, False, True]
    encoder = create_encoder("frames/pixels", k=4, **PIXELS)
    features = encoder.transform(table.video)
    assert features.shape == (6, 64)
    assert not features[[3, 4]].any() and features[[0, 1, 2, 5]].any(axis=1).all()
    with pytest.raises(DataError, match=r"row 1: unreadable video .*clip3\.mkv"):
        encoder.transform([table.video[0], {"bytes": None, "path": str(tmp_path / "clip3.mkv")}])


def test_a_column_of_frame_lists_loads_as_videos(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"row 3: <4 frames from .*r3f0\.png>"):
        load_table(video_dataset(tmp_path, frames=True), tmp_path)
    table = load_table(video_dataset(tmp_path, "missing", frames=True), tmp_path)
    assert [None if v is None else len(v["frames"]) for v in table.video] == [
        3,
        4,
        3,
        None,
        None,
        4,
    ]
    assert brightness(sample_frames(table.video[1], 2)) == [1, 3]
    features = create_encoder("frames/pixels", k=2, **PIXELS).transform(table.video)
    assert features[[0, 1, 2, 5]].any(axis=1).all() and not features[[3, 4]].any()


def test_missing_videos_are_zero_frames_for_the_temporal_tower() -> None:
    clip = {"bytes": write_video(ramp(6)), "path": None}
    encoder = create_encoder("frames/pixels", k=3, pooling="gru", hidden=16, **PIXELS)
    frames = encoder.transform([clip, None, clip])
    assert frames.shape == (3, 3, 64) and not frames[1].any()
    assert np.allclose(frames[0], frames[2]) and encoder.trainable and encoder.tower_dim == 16
    import torch

    tower = encoder.build_tower().eval()
    with torch.no_grad():
        out = tower(torch.from_numpy(frames))
    assert out.shape == (3, 16) and torch.allclose(out[0], out[2])


def test_frame_features_are_cached_by_k_backbone_and_pooling(tmp_path: Path) -> None:
    clips = [{"bytes": write_video(ramp(4 + i % 3)), "path": None} for i in range(6)]
    table = MultiModalTable("clips", np.arange(6) % 2, ["a", "b"], video=clips)
    cache = FeatureCache(tmp_path / "features")

    def features(name: str, **options: Any) -> np.ndarray:
        return frozen_features(table, "video", create_encoder(name, **options), cache)

    tiny = {"image_size": 16}
    first = features("frames/timm/test_resnet", k=4, **tiny)
    assert (cache.hits, cache.misses) == (0, 1)
    assert np.array_equal(
        features("frames/timm/test_resnet", k=4, **tiny), first
    )  # reused, not re-encoded
    assert (cache.hits, cache.misses) == (1, 1)
    features("frames/timm/test_resnet", k=2, **tiny)  # another k
    features("frames/timm/test_efficientnet", k=4, image_size=16)  # another backbone
    features("frames/timm/test_resnet", k=4, pooling="max", **tiny)  # another pooling
    gru = features("frames/timm/test_resnet", k=4, pooling="gru", **tiny)
    assert (cache.hits, cache.misses) == (1, 5)
    # the temporal towers share the frame features: tower width and kind do not change them
    attention = features("frames/timm/test_resnet", k=4, pooling="attention", hidden=8, **tiny)
    assert (cache.hits, cache.misses) == (2, 5) and np.array_equal(gru, attention)
    assert np.allclose(gru.mean(axis=1), first, atol=1e-5)  # mean pooling of the same frames


def test_synthetic_video_leaves_the_other_columns_and_the_recipe_unchanged() -> None:
    plain = generate(n_rows=24, n_classes=3, seed=3)
    with_video = generate(n_rows=24, n_classes=3, seed=3, video_frames=7, video_size=16)
    assert with_video.column_names == [*plain.column_names[:-1], "video", "label"]
    for name in plain.column_names:
        assert with_video.data.column(name).equals(plain.data.column(name)), name
    sensors = generate(n_rows=24, n_classes=3, seed=3, sensor_length=16)  # a stream of its own
    both = generate(n_rows=24, n_classes=3, seed=3, sensor_length=16, video_frames=7, video_size=16)
    assert both.data.column("video").equals(with_video.data.column("video"))
    for name in sensors.column_names:
        assert both.data.column(name).equals(sensors.data.column(name)), name
    assert "video_frames" not in recipe(n_rows=24) and "video" not in recipe()["signal"]
    assert recipe(video_frames=7)["signal"]["video"] == 0.9
    clip = with_video[0]["video"]
    regenerated = generate(n_rows=24, n_classes=3, seed=3, video_frames=7, video_size=16)
    assert frame_count(clip) == 7 and regenerated[0]["video"] == clip  # bit-exact bytes
    with pytest.raises(DataError, match=r"tells 4 classes apart.*such as 7"):
        recipe(n_classes=5, video_frames=8)
    with pytest.raises(DataError, match="'video' needs video_frames > 0"):
        recipe(signal={"video": 1.0})


def test_every_motion_visits_every_position_once() -> None:
    """So a frame, and the set of frames, look the same for every class: only order differs."""
    for frames in (7, 8, 11):
        steps = motion_steps(frames)
        assert len({s % frames for s in steps}) == len(steps)
        for step in steps:
            assert sorted(step * t % frames for t in range(frames)) == list(range(frames))
    assert motion_steps(8) == [1, -1, 3, -3]


def test_a_temporal_tower_reads_motion_that_mean_pooling_cannot(
    tmp_path: Path, one_torch_thread: None
) -> None:
    """Label only in the direction of motion: mean pooling is at chance, the GRU tower is not."""
    suite = tiny_suite(tmp_path, modalities={"video": "video"}, n_rows=180, folds=3)
    dataset = suite.datasets[0]
    dataset.source.options.update(n_classes=2, video_frames=8, signal={"video": 1.0})
    table = load_table(dataset, tmp_path)
    folds = cv_folds(table.labels, 3, 1, seed=0)
    training = {"epochs": 60, "batch_size": 32, "patience": 20}  # motion is learnt after a plateau
    scores, seconds = {}, {}
    for pooling in ("mean", "gru"):
        start = time.perf_counter()
        spec = PipelineSpec.model_validate(
            {
                "encoders": {
                    "video": {
                        "name": "frames/pixels",
                        "options": {"k": 8, "pooling": pooling, **PIXELS},
                    }
                },
                "fusion": {"name": "early"},
                "training": training,
            }
        )
        result = evaluate_pipeline(table, spec, folds, cache=FeatureCache(tmp_path / "f"))
        assert all(f.error is None for f in result.folds), [f.error for f in result.folds]
        scores[pooling] = result.mean("f1_macro")
        seconds[pooling] = time.perf_counter() - start
    print(f"macro-F1 {scores}, seconds {seconds}")
    assert scores["gru"] >= 0.85 and scores["mean"] <= 0.5 + 0.15


def test_video_shows_in_ablation_mlflow_leaderboard_and_report(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    from mmbench.leaderboard import load_leaderboard, render
    from mmbench.report import render_report
    from mmbench.results import read_result
    from mmbench.run import RunOptions, run_suite

    uri = f"sqlite:///{tmp_path / 'video.db'}"
    suite = tiny_suite(
        tmp_path,
        modalities={"tabular": ["num_0", "num_1"], "video": "video"},
        n_rows=60,
        folds=2,
        pipeline={
            "encoders": {
                "tabular": "tabular",
                "video": {"name": "frames/pixels", "options": {"k": 2, **PIXELS}},
            },
            "fusion": "linear",
        },
    )
    suite.datasets[0].source.options.update(video_frames=8, video_size=16)
    res = tmp_path / "res"
    [outcome] = run_suite(suite, RunOptions(results_dir=res, tracking_uri=uri, ablate=True))
    assert outcome.error is None, outcome.error
    result = read_result(outcome.path)
    assert result.dataset.modalities == ["tabular", "video"]
    assert result.ablation is not None and set(result.ablation.shapley or {}) == {
        "tabular",
        "video",
    }
    exp = MlflowClient(uri).get_experiment_by_name("mmbench/tiny-suite")
    assert exp is not None
    runs = MlflowClient(uri).search_runs([exp.experiment_id])
    best = next(r for r in runs if r.data.tags["mmbench.kind"] == "best")
    assert best.data.params["encoder.video"] == "frames/pixels"
    assert "tiny/ablation: video" in {r.info.run_name for r in runs}
    assert "frames/pixels" in render(load_leaderboard(res, "tiny-suite"), "markdown")
    page = render_report(res, "tiny-suite")
    assert "frames/pixels" in page and "video" in page


def test_without_pyav_a_video_file_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "av", None)  # what `import av` sees when it is not installed
    with pytest.raises(MMBenchError, match=r'pip install "mmbench\[video\]"'):
        sample_frames({"bytes": b"\x00", "path": None}, 2, row=0)

"""Sensor series in the data layer (``mmbench.data.series``): how a suite declares sensors,
what loading checks, ``.ts`` files through aeon, and the basicmotions suite on a tiny local file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmbench import is_modality, modality_kind
from mmbench.config import PipelineSpec, default_pipeline
from mmbench.data import load_table
from mmbench.data.series import sensor_rows
from mmbench.data.synthetic import recipe
from mmbench.errors import DataError, SuiteError
from mmbench.suite import load_suite, parse_suite

SUITES = Path(__file__).resolve().parents[1] / "suites"
MIRROR = Path(__file__).resolve().parents[1].parent / "shared" / "mirror"


def sensor_suite(modalities: dict[str, Any], **extra: Any) -> dict[str, Any]:
    dataset = {
        "name": "s",
        "source": {"kind": "synthetic", "options": {"n_rows": 40, "sensor_length": 24}},
        "target": "label",
        "modalities": modalities,
        "protocol": {"folds": 2},
        **extra,
    }
    return {"name": "sensors", "datasets": [dataset]}


TWO_SENSORS = {"sensor": {"accel": "accel", "gyro": ["gyro"]}}


def test_named_sensors_are_modalities_of_kind_sensor() -> None:
    assert is_modality("sensor_accel") and modality_kind("sensor_accel") == "sensor"
    assert not is_modality("image_left") and not is_modality("sensor_Bad")
    spec = parse_suite(sensor_suite(TWO_SENSORS)).datasets[0]
    assert spec.modalities.present() == ["sensor_accel", "sensor_gyro"]
    # an encoder named for the kind is every sensor's; one named for a sensor wins
    given = PipelineSpec.model_validate({"encoders": {"sensor": "minirocket", "sensor_gyro": "x"}})
    encoders = default_pipeline(["sensor_accel", "sensor_gyro"], given).encoders
    assert {m: e.name for m, e in encoders.items()} == {
        "sensor_gyro": "x",
        "sensor_accel": "minirocket",
    }


@pytest.mark.parametrize(
    ("modalities", "extra", "message"),
    [
        ({"sensors": {"a": "accel"}}, {}, "unknown key 'sensors' (did you mean 'sensor'?)"),
        ({"sensor": ["accel", "gyro"]}, {}, "sensors are named"),
        ({"sensor": {"Accel X": "accel"}}, {}, "e.g. 'accel_x'"),
        ({"sensor": {"a": "accel", "b": "accel"}}, {}, "['accel'] are listed twice"),
        (
            TWO_SENSORS,
            {"pipeline": {"encoders": {"sensor_acel": "sensor_stats"}}},
            "pipeline.encoders: modality 'sensor_acel' is not declared (did you mean "
            "'sensor_accel'?)",
        ),
        (
            TWO_SENSORS,
            {"search": {"encoders": {"sensor": ["minirocket", "tfidf"]}}},
            "encoder 'tfidf' encodes text, not sensor",
        ),
        (TWO_SENSORS, {"pipeline": {"encoders": {"sensr": "minirocket"}}}, "did you mean 'sensor'"),
    ],
)
def test_bad_sensor_declarations_name_the_key(
    modalities: dict[str, Any], extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(SuiteError) as info:
        parse_suite(sensor_suite(modalities, **extra), source="s.yaml")
    assert message in str(info.value) and "s.yaml" in str(info.value)


def test_loading_stacks_channels_and_keeps_missing_and_unequal_series() -> None:
    raw = sensor_suite(TWO_SENSORS)
    raw["datasets"][0]["source"]["options"]["missing"] = 0.2
    table = load_table(parse_suite(raw).datasets[0], Path("."))
    assert table.modalities == ["sensor_accel", "sensor_gyro"]
    series = [s for s in table["sensor_accel"] if s is not None]
    assert all(s.shape[0] == 3 and s.dtype == np.float32 for s in series)
    assert len({s.shape[1] for s in series}) > 1  # unequal lengths stay unequal
    assert 0 < table.present("sensor_gyro").sum() < len(table)
    fewer = table.subset([0, 1, 2]).without(["sensor_accel"])
    assert fewer.modalities == ["sensor_gyro"] and len(fewer["sensor_gyro"]) == 3


def test_without_sensors_the_synthetic_recipe_is_unchanged() -> None:
    assert "sensor_length" not in recipe() and set(recipe()["signal"]) == {
        "image",
        "text",
        "tabular",
        "audio",
    }
    with pytest.raises(DataError, match="sensor signals need sensor_length > 0"):
        recipe(signal={"sensor_accel": 0.5})


def test_sensor_rows_name_the_row_of_bad_series() -> None:
    rows = np.array([10, 11, 12])
    x = [[1.0, 2.0], [1.0, 2.0, 3.0], [0.0, float("nan")]]
    y = [[1.0, 2.0], [1.0, 2.0], [1.0, 1.0]]
    with pytest.raises(DataError, match=r"row 11: its channels have different lengths \[2, 3\]"):
        sensor_rows([x, y], ["x", "y"], rows, "error", "here")
    out, bad = sensor_rows([x, y], ["x", "y"], rows, "missing", "here")
    assert bad == 2 and out[1] is None and out[2] is None and out[0].shape == (2, 2)
    with pytest.raises(DataError, match=r"give 2 channel.* but 1 in row 11"):
        sensor_rows([[[[1.0], [2.0]], [[3.0]]]], ["xy"], rows[:2], "error", "here")
    out, _ = sensor_rows([[None, [1.0, 2.0]], [[1.0], None]], ["a", "b"], rows[:2], "error", "")
    assert out == [None, None]  # a row with a channel missing is a missing series


TINY_TS = """#a made-up file in BasicMotions' layout: 6 dimensions, 4 classes
@problemName Tiny
@timeStamps false
@missing false
@univariate false
@dimensions 6
@equalLength true
@seriesLength 5
@classLabel true Standing Running Walking Badminton
@data
"""


def write_ts(path: Path, n_per_class: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    lines = []
    for k, label in enumerate(["Standing", "Running", "Walking", "Badminton"]):
        for _ in range(n_per_class):
            dims = [",".join(f"{v:.4f}" for v in rng.normal(k, 1, 5)) for _ in range(6)]
            lines.append(":".join(dims) + f":{label}")
    path.write_text(TINY_TS + "\n".join(lines) + "\n")
    return path


def test_the_basicmotions_suite_reads_ts_files_through_its_loader(tmp_path: Path) -> None:
    """The suite as committed, its sources pointed at tiny local ``.ts`` files: the same
    reader (aeon's) and the same columns, without the mirror."""
    pytest.importorskip("aeon")
    suite = load_suite(SUITES / "basicmotions.yaml")
    spec = suite.datasets[0]
    assert spec.source.hash and spec.source.url and spec.source.url.endswith("_TRAIN.ts")
    assert spec.test_source and spec.test_source.url.endswith("_TEST.ts")
    assert "a101ddc8b35a65441609b45c9bcce5aeafa0c131" in spec.source.url
    assert spec.reference == [] and spec.card is not None  # no number read in its source yet
    local = {"kind": "ts", "url": None, "hash": None}
    spec.source = spec.source.model_copy(
        update={**local, "path": str(write_ts(tmp_path / "train.ts", 5, 0))}
    )
    spec.test_source = spec.test_source.model_copy(
        update={**local, "path": str(write_ts(tmp_path / "test.ts", 2, 1))}
    )
    train = load_table(spec, tmp_path)
    test = load_table(spec, tmp_path, split="test", classes=train.classes)
    assert train.modalities == ["sensor_accel", "sensor_gyro"] and len(train) == 20
    assert train.classes == ["badminton", "running", "standing", "walking"] and len(test) == 8
    assert train["sensor_gyro"][0].shape == (3, 5)


def test_a_ts_file_with_a_bad_line_is_a_data_error(tmp_path: Path) -> None:
    pytest.importorskip("aeon")
    bad = tmp_path / "bad.ts"
    bad.write_text(TINY_TS + "1,2:3:Standing\n")
    raw = sensor_suite({"sensor": {"imu": ["dim_0"]}})
    raw["datasets"][0]["source"] = {"kind": "ts", "path": str(bad)}
    with pytest.raises(DataError, match=r"could not read \.ts file"):
        load_table(parse_suite(raw).datasets[0], tmp_path)


@pytest.mark.shared
@pytest.mark.skipif(not MIRROR.is_dir(), reason=f"no mirror at {MIRROR}")
def test_the_pinned_hashes_are_those_of_the_mirrored_files() -> None:
    import hashlib

    from mmbench.data import download

    spec = load_suite(SUITES / "basicmotions.yaml").datasets[0]
    for source in (spec.source, spec.test_source):
        assert source is not None and source.url and source.hash
        path = Path(download.mirrored(source.url, str(MIRROR)))
        if not path.is_file():
            pytest.skip(f"{path} is not mirrored")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert source.hash == f"sha256:{digest}"


def write_unequal_ts(path: Path, lengths: list[int], seed: int) -> Path:
    """A 12-channel ``.ts`` file in JapaneseVowels' layout: one row per length, classes 1-3."""
    rng = np.random.default_rng(seed)
    header = (
        "@problemName Tiny\n@timeStamps false\n@missing false\n@univariate false\n"
        "@dimensions 12\n@equalLength false\n@classLabel true 1 2 3\n@data\n"
    )
    lines = []
    for i, n in enumerate(lengths):
        label = i % 3 + 1
        dims = [",".join(f"{v:.4f}" for v in rng.normal(label, 1, n)) for _ in range(12)]
        lines.append(":".join(dims) + f":{label}")
    path.write_text(header + "\n".join(lines) + "\n")
    return path


def test_unequal_length_series_keep_their_lengths_and_every_sensor_encoder_takes_them(
    tmp_path: Path,
) -> None:
    """The japanesevowels suite on a tiny local file of 7- to 29-step rows: loading keeps each
    row's length; the encoders give one width whatever the length (statistics of any length,
    MiniRocket and the CNN's input resampled to one length), also for held-out rows longer
    than any training row."""
    pytest.importorskip("aeon")
    from mmbench.encoders.base import create_encoder

    spec = load_suite(SUITES / "japanesevowels.yaml").datasets[0]
    spec.source = spec.source.model_copy(
        update={
            "url": None,
            "hash": None,
            "kind": "ts",
            "path": str(write_unequal_ts(tmp_path / "a.ts", [7, 12, 20, 9, 15, 26] * 3, 0)),
        }
    )
    spec.test_source = spec.source.model_copy(
        update={"path": str(write_unequal_ts(tmp_path / "b.ts", [29, 7, 13], 1))}
    )
    train = load_table(spec, tmp_path)
    test = load_table(spec, tmp_path, split="test", classes=train.classes)
    assert [s.shape for s in test["sensor_lpc"]] == [(12, 29), (12, 7), (12, 13)]
    assert sorted({s.shape[1] for s in train["sensor_lpc"]}) == [7, 9, 12, 15, 20, 26]
    for name, options, width in [
        ("sensor_stats", {}, 7 * 12 + 1),
        ("minirocket", {"n_kernels": 84}, 84),
        ("sensorcnn", {"length": 16}, None),
    ]:
        encoder = create_encoder(name, **options).fit(train["sensor_lpc"], train.labels)
        out = encoder.transform(test["sensor_lpc"])
        assert out.shape[0] == 3 and np.isfinite(out).all(), name
        assert out.shape[1:] == ((width,) if width else (12, 16)), name

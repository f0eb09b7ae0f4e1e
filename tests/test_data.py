"""The data layer: every source kind, validation errors, and conversion to MultiModalTable."""

from __future__ import annotations

import io
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mmbench.data import load_source, load_table
from mmbench.data.media import load_audio, load_image, wav_bytes
from mmbench.data.synthetic import generate
from mmbench.errors import DataError
from mmbench.evaluation import stratified_subsample
from mmbench.suite import DatasetSpec, SourceSpec

ALL_SYNTHETIC = {
    "image": "image",
    "text": ["text"],
    "tabular": ["num_0", "num_1", "num_2", "num_3", "cat_0", "cat_1"],
    "audio": "audio",
}


@pytest.fixture(autouse=True)
def _private_datasets_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the Arrow files datasets writes for local sources out of the shared user cache."""
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


def spec(source: dict[str, Any], modalities: dict[str, Any], **extra: Any) -> DatasetSpec:
    return DatasetSpec.model_validate(
        {"name": "toy", "source": source, "target": "label", "modalities": modalities, **extra}
    )


def png(colour: str, size: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, format="PNG")
    return buf.getvalue()


def toy_frame(root: Path, n: int = 12) -> pd.DataFrame:
    """Image files on disk (relative paths), two text columns, tabular cells with gaps, 2 classes."""
    (root / "img").mkdir()
    labels = ["cat" if i % 2 else "dog" for i in range(n)]
    paths = []
    for i, label in enumerate(labels):
        (root / "img" / f"{i}.png").write_bytes(png("red" if label == "cat" else "blue"))
        paths.append(f"img/{i}.png")
    return pd.DataFrame(
        {
            "photo": paths,
            "title": [None if i == 0 else f"title {i}" for i in range(n)],
            "caption": [None if i in (0, 1) else f"caption {i}" for i in range(n)],
            "age": [np.nan if i == 2 else float(i) for i in range(n)],
            "city": [None if i == 3 else ("paris" if i % 3 else "rome") for i in range(n)],
            "label": labels,
        }
    )


TOY_MODALITIES = {"image": "photo", "text": ["title", "caption"], "tabular": ["age", "city"]}


def write(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:  # datasets reads JSON Lines
        frame.to_json(path, orient="records", lines=True)


# -- source kinds --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["parquet", "csv", "json"])
def test_file_sources_become_a_table(tmp_path: Path, kind: str) -> None:
    write(toy_frame(tmp_path), tmp_path / f"data.{kind}")
    ds = spec({"kind": kind, "path": f"data.{kind}"}, TOY_MODALITIES, protocol={"folds": 2})
    table = load_table(ds, tmp_path)
    assert len(table) == 12 and table.classes == ["cat", "dog"]
    assert table.labels.tolist() == [1, 0] * 6
    assert table.image[0] == {"bytes": None, "path": str(tmp_path / "img" / "0.png")}
    assert load_image(table.image[5]).getpixel((0, 0)) == (255, 0, 0)
    assert table.text[:3] == [None, "title 1", "title 2 . caption 2"]
    assert np.isnan(table.tabular["age"][2]) and table.tabular["age"].dtype == np.float64
    assert table.tabular["city"][3] is None and table.tabular["city"][1] == "paris"
    assert table.meta["source"] == f"{kind}:data.{kind}" and table.meta["n_rows"] == 12


def test_local_sources_cache_their_arrow_copy_under_mmbench_cache_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A csv file and an image folder are read through ``datasets``, whose Arrow copy goes under
    ``$MMBENCH_CACHE_DIR/datasets``; the Hugging Face cache stays untouched."""
    import datasets.config

    monkeypatch.setenv("MMBENCH_CACHE_DIR", str(tmp_path / "mmb"))
    hf = Path(datasets.config.HF_DATASETS_CACHE)
    write(toy_frame(tmp_path), tmp_path / "data.csv")
    for i, label in enumerate(["cat", "dog"] * 2):
        (tmp_path / "pics" / label).mkdir(parents=True, exist_ok=True)
        (tmp_path / "pics" / label / f"{i}.png").write_bytes(png("red"))
    assert len(load_source(SourceSpec(kind="csv", path="data.csv"), tmp_path)) == 12
    assert len(load_source(SourceSpec(kind="imagefolder", path="pics"), tmp_path)) == 4
    assert not hf.exists() or not [p for p in hf.rglob("*") if p.is_file()]
    arrow = [p.relative_to(tmp_path / "mmb/datasets") for p in tmp_path.rglob("*.arrow")]
    assert {p.parts[0] for p in arrow} == {"csv", "imagefolder"}  # and nowhere else


def test_embedded_image_bytes_in_plain_parquet(tmp_path: Path) -> None:
    # pandas writes {bytes, path} records as a bare struct, without datasets' Image metadata
    frame = pd.DataFrame(
        {"photo": [{"bytes": png("red" if i % 2 else "blue"), "path": None} for i in range(6)]}
    ).assign(label=["cat", "dog"] * 3)
    frame.to_parquet(tmp_path / "data.parquet")
    ds = spec(
        {"kind": "parquet", "path": "data.parquet"}, {"image": "photo"}, protocol={"folds": 2}
    )
    table = load_table(ds, tmp_path)
    assert table.image[0]["path"] is None
    assert load_image(table.image[1]).getpixel((0, 0)) == (255, 0, 0)


def test_paths_accept_globs_and_lists(tmp_path: Path) -> None:
    frame = toy_frame(tmp_path)
    frame.iloc[:6].to_parquet(tmp_path / "part-0.parquet")
    frame.iloc[6:].to_parquet(tmp_path / "part-1.parquet")
    assert len(load_source(SourceSpec(kind="parquet", path="part-*.parquet"), tmp_path)) == 12
    listed = SourceSpec(kind="parquet", path=["part-0.parquet", str(tmp_path / "part-1.parquet")])
    assert len(load_source(listed, tmp_path)) == 12


def test_missing_file_names_the_resolved_path(tmp_path: Path) -> None:
    toy_frame(tmp_path).to_parquet(tmp_path / "data.parquet")
    with pytest.raises(DataError) as info:
        load_source(SourceSpec(kind="parquet", path="dta.parquet"), tmp_path)
    assert str(tmp_path / "dta.parquet") in str(info.value)
    assert "did you mean 'data.parquet'" in str(info.value)
    with pytest.raises(DataError, match="no file matches"):
        load_source(SourceSpec(kind="csv", path="*.csv"), tmp_path)


def test_imagefolder_labels_come_from_subfolders(tmp_path: Path) -> None:
    for label, colour in [("cat", "red"), ("dog", "blue")]:
        (tmp_path / "pics" / label).mkdir(parents=True)
        for i in range(3):
            (tmp_path / "pics" / label / f"{i}.png").write_bytes(png(colour))
    ds = spec({"kind": "imagefolder", "path": "pics"}, {"image": "image"}, protocol={"folds": 2})
    table = load_table(ds, tmp_path)
    assert table.classes == ["cat", "dog"] and sorted(table.labels.tolist()) == [0, 0, 0, 1, 1, 1]
    for ref, label in zip(table.image, table.labels, strict=True):
        colour = load_image(ref).getpixel((0, 0))
        assert colour == ((255, 0, 0) if label == 0 else (0, 0, 255))


def test_audiofolder_clips_stay_undecoded(tmp_path: Path) -> None:
    for label, freq in [("low", 200), ("high", 900)]:
        (tmp_path / "clips" / label).mkdir(parents=True)
        for i in range(2):
            tone = np.sin(2 * np.pi * freq * np.arange(800) / 8000)
            (tmp_path / "clips" / label / f"{i}.wav").write_bytes(wav_bytes(tone, 8000))
    ds = spec({"kind": "audiofolder", "path": "clips"}, {"audio": "audio"}, protocol={"folds": 2})
    table = load_table(ds, tmp_path)
    assert table.classes == ["high", "low"]
    assert load_audio(table.audio[0], sample_rate=8000).shape == (800,)


def test_disk_source_reads_a_dataset_or_a_split_of_a_dataset_dict(tmp_path: Path) -> None:
    import datasets

    train, test = generate(n_rows=30, seed=0), generate(n_rows=20, seed=1)
    train.save_to_disk(str(tmp_path / "one"))
    datasets.DatasetDict({"train": train, "test": test}).save_to_disk(str(tmp_path / "both"))
    assert len(load_source(SourceSpec(kind="disk", path="one"), tmp_path)) == 30
    assert len(load_source(SourceSpec(kind="disk", path="both", split="test"), tmp_path)) == 20
    with pytest.raises(DataError, match="did you mean 'test'"):
        load_source(SourceSpec(kind="disk", path="both", split="tset"), tmp_path)


def test_synthetic_source_records_its_recipe(tmp_path: Path) -> None:
    options = {"n_rows": 60, "seed": 4, "missing": 0.2}
    ds = spec({"kind": "synthetic", "options": options}, ALL_SYNTHETIC, protocol={"folds": 3})
    table = load_table(ds, tmp_path)
    assert table.modalities == ["image", "text", "tabular", "audio"]
    assert table.classes == ["class_0", "class_1", "class_2"] and len(table) == 60
    assert table.meta["recipe"]["seed"] == 4 and table.meta["recipe"]["missing"] == 0.2
    assert not table.present("image").all() and table.tabular.isna().any().any()
    assert load_table(ds, tmp_path).fingerprint == table.fingerprint


def test_synthetic_unknown_option_suggests_the_closest(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"unknown option 'n_row' \(did you mean 'n_rows'\?\)"):
        load_source(SourceSpec(kind="synthetic", options={"n_row": 10}), tmp_path)


def test_hub_fails_fast_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    source = SourceSpec(kind="hub", id="mmbench-test/no-such-dataset", revision="abc123")
    start = time.monotonic()
    with pytest.raises(DataError) as info:
        load_source(source, tmp_path)
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "'mmbench-test/no-such-dataset'" in message and "not in the local cache" in message


def test_hub_unreachable_without_offline_env_also_fails_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)

    def refuse(*args: Any, **kwargs: Any) -> socket.socket:
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket, "create_connection", refuse)
    source = SourceSpec(kind="hub", id="mmbench-test/no-such-dataset", revision="abc123")
    with pytest.raises(DataError, match="hub is unreachable"):
        load_source(source, tmp_path)


def test_a_hub_endpoint_that_never_answers_fails_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy that accepts the connection and swallows the request (a real listening socket
    that never replies) counts as unreachable: offline mode, a clear error in seconds."""
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes connections; nobody ever reads or answers
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}")
        source = SourceSpec(kind="hub", id="mmbench-test/no-such-dataset", revision="abc123")
        start = time.monotonic()
        with pytest.raises(DataError, match="hub is unreachable"):
            load_source(source, tmp_path)
        assert time.monotonic() - start < 30  # not the minutes of the libraries' retries


# -- validation ----------------------------------------------------------------------------------


def test_missing_column_is_named_with_a_suggestion(tmp_path: Path) -> None:
    toy_frame(tmp_path).to_parquet(tmp_path / "data.parquet")
    modalities = {**TOY_MODALITIES, "text": ["title", "captoin"]}
    ds = spec({"kind": "parquet", "path": "data.parquet"}, modalities)
    with pytest.raises(DataError) as info:
        load_table(ds, tmp_path)
    message = str(info.value)
    assert "dataset 'toy'" in message and "text column 'captoin'" in message
    assert "did you mean 'caption'" in message


def test_an_all_missing_tabular_column_is_named(tmp_path: Path) -> None:
    toy_frame(tmp_path).assign(age=np.nan).to_parquet(tmp_path / "data.parquet")
    ds = spec({"kind": "parquet", "path": "data.parquet"}, TOY_MODALITIES, protocol={"folds": 2})
    with pytest.raises(
        DataError, match=r"dataset 'toy'.*tabular column\(s\) \['age'\] have no value"
    ):
        load_table(ds, tmp_path)


def test_non_utf8_csv_and_empty_parquet_say_what_is_wrong(tmp_path: Path) -> None:
    frame = toy_frame(tmp_path).assign(title="café")
    frame.to_csv(tmp_path / "latin1.csv", index=False, encoding="latin-1")
    ds = spec({"kind": "csv", "path": "latin1.csv"}, TOY_MODALITIES, protocol={"folds": 2})
    with pytest.raises(DataError, match=r"latin1\.csv'\] are not UTF-8 text.*encoding: latin-1"):
        load_table(ds, tmp_path)
    fixed = spec(
        {"kind": "csv", "path": "latin1.csv", "options": {"encoding": "latin-1"}},
        TOY_MODALITIES,
        protocol={"folds": 2},
    )
    assert load_table(fixed, tmp_path).text[1].startswith("café")
    frame.iloc[:0].to_parquet(tmp_path / "empty.parquet")
    ds = spec({"kind": "parquet", "path": "empty.parquet"}, TOY_MODALITIES)
    with pytest.raises(DataError, match=r"dataset 'toy'.*empty\.parquet' has no rows"):
        load_table(ds, tmp_path)


def test_single_class_is_rejected(tmp_path: Path) -> None:
    frame = toy_frame(tmp_path).assign(label="cat")
    frame.to_parquet(tmp_path / "data.parquet")
    ds = spec({"kind": "parquet", "path": "data.parquet"}, TOY_MODALITIES)
    with pytest.raises(DataError, match="only class 'cat'"):
        load_table(ds, tmp_path)


def test_smallest_class_must_fill_every_fold_on_train_only(tmp_path: Path) -> None:
    frame = toy_frame(tmp_path)
    frame.loc[[0, 2], "label"] = "bird"
    frame.to_parquet(tmp_path / "data.parquet")
    source = {"kind": "parquet", "path": "data.parquet"}
    ds = spec(source, TOY_MODALITIES, protocol={"folds": 3}, test_source=source)
    with pytest.raises(
        DataError, match=r"class 'bird' has 2 row\(s\), fewer than protocol\.folds=3"
    ):
        load_table(ds, tmp_path)
    assert load_table(ds, tmp_path, split="test").classes == ["bird", "cat", "dog"]


def test_wrong_media_column_type_is_rejected(tmp_path: Path) -> None:
    toy_frame(tmp_path).to_parquet(tmp_path / "data.parquet")
    ds = spec({"kind": "parquet", "path": "data.parquet"}, {"image": "age"})
    with pytest.raises(DataError, match="image column 'age' has type"):
        load_table(ds, tmp_path)


def test_missing_target_values_are_reported(tmp_path: Path) -> None:
    frame = toy_frame(tmp_path)
    frame.loc[4, "label"] = None
    frame.to_parquet(tmp_path / "data.parquet")
    ds = spec({"kind": "parquet", "path": "data.parquet"}, TOY_MODALITIES)
    with pytest.raises(DataError, match=r"missing in 1 row\(s\) \(rows 4\)"):
        load_table(ds, tmp_path)


def _corrupt_image_dataset(tmp_path: Path, on_unreadable: str) -> DatasetSpec:
    toy_frame(tmp_path).to_parquet(tmp_path / "data.parquet")
    (tmp_path / "img" / "3.png").write_bytes(b"this is not a png")
    source = {"kind": "parquet", "path": "data.parquet"}
    return spec(source, TOY_MODALITIES, on_unreadable=on_unreadable, protocol={"folds": 2})


def test_unreadable_image_is_an_error_naming_row_and_path(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_table(_corrupt_image_dataset(tmp_path, "error"), tmp_path)
    message = str(info.value)
    assert "1 unreadable image" in message and "row 3" in message
    assert str(tmp_path / "img" / "3.png") in message


def test_unreadable_image_can_become_missing(tmp_path: Path) -> None:
    table = load_table(_corrupt_image_dataset(tmp_path, "missing"), tmp_path, progress=True)
    assert table.image[3] is None and table.present("image").sum() == 11
    assert table.meta["unreadable"] == {"image": 1}


def test_unreadable_audio_bytes_are_detected(tmp_path: Path) -> None:
    import datasets

    good = wav_bytes(np.zeros(400), 8000)
    clips = [{"bytes": b"RIFFnope" if i == 5 else good, "path": None} for i in range(8)]
    saved = datasets.Dataset.from_dict({"clip": clips, "label": ["a", "b"] * 4})
    saved.cast_column("clip", datasets.Audio()).save_to_disk(str(tmp_path / "saved"))
    source = {"kind": "disk", "path": "saved"}
    with pytest.raises(DataError, match=r"1 unreadable audio value\(s\): row 5: <8 bytes>"):
        load_table(spec(source, {"audio": "clip"}, protocol={"folds": 2}), tmp_path)
    lenient = spec(source, {"audio": "clip"}, protocol={"folds": 2}, on_unreadable="missing")
    table = load_table(lenient, tmp_path)
    assert table.audio[5] is None and table.meta["unreadable"] == {"audio": 1}


# -- conversion ------------------------------------------------------------------------------------


def test_max_rows_draws_a_stratified_reproducible_subsample(tmp_path: Path) -> None:
    source = {"kind": "synthetic", "options": {"n_rows": 120}}
    ds = spec(source, {"tabular": ["num_0"]}, max_rows=60, protocol={"folds": 2})
    table = load_table(ds, tmp_path)
    full = np.bincount(load_table(ds, tmp_path, max_rows=1000).labels)
    assert len(table) == 60 and table.meta["n_rows_source"] == 120
    assert table.meta["subsample"] == {"max_rows": 60, "seed": 0}
    assert np.abs(np.bincount(table.labels) - full / 2).max() <= 1
    assert load_table(ds, tmp_path).fingerprint == table.fingerprint
    assert load_table(ds, tmp_path, seed=1).fingerprint != table.fingerprint


def test_stratified_subsample_keeps_every_class() -> None:
    labels = np.array([0] * 50 + [1] * 3 + [2] * 1)
    rows = stratified_subsample(labels, 10, seed=0)
    assert len(rows) == 10 and set(labels[rows]) == {0, 1, 2}


def test_a_grouped_subsample_keeps_every_groups_share_of_each_class(tmp_path: Path) -> None:
    """``max_rows`` on a grouped dataset draws per (group, class): each speaker keeps its
    share of every digit, so grouped folds split the subsample as they split the table."""
    rng = np.random.default_rng(3)
    speakers = np.repeat([f"s{i}" for i in range(6)], [40, 60, 80, 100, 120, 200])
    frame = pd.DataFrame(
        {
            "text": [f"t{i}" for i in range(len(speakers))],
            "speaker": speakers,
            "label": rng.choice(["x", "y", "z"], len(speakers)),
        }
    )
    frame.to_csv(tmp_path / "d.csv", index=False)
    ds = DatasetSpec.model_validate(
        {"name": "g", "source": {"kind": "csv", "path": "d.csv"}, "target": "label",
         "modalities": {"text": "text"}, "max_rows": 120,
         "protocol": {"folds": 5, "group_column": "speaker"}}
    )  # fmt: skip
    table = load_table(ds, tmp_path, seed=0)
    assert len(table) == 120 and table.meta["groups"]["n"] == 6
    kept = pd.crosstab(table.groups, np.array(table.classes)[table.labels])
    full = pd.crosstab(frame["speaker"], frame["label"])
    # largest remainder after the one row every (speaker, label) cell keeps: within 2 rows
    assert (kept - full * 120 / len(frame)).abs().to_numpy().max() < 2


def test_an_ungrouped_subsample_is_the_class_stratified_one() -> None:
    labels = np.random.default_rng(4).integers(0, 3, 500)
    rows = stratified_subsample(labels, 50, seed=2)
    assert rows.tolist() == stratified_subsample(labels, 50, seed=2, groups=None).tolist()
    grouped = stratified_subsample(labels, 50, seed=2, groups=np.arange(500) % 5)
    per_group = np.bincount(np.arange(500)[grouped] % 5)
    assert len(grouped) == 50 and np.abs(per_group - 10).max() <= 1


def test_a_grouped_subsample_smaller_than_its_group_class_pairs_keeps_every_class() -> None:
    """Fewer rows than (group, class) pairs: every class still keeps its share, and which
    groups give rows is drawn with the seed, not taken in the order of their names."""
    groups = np.repeat([f"g{i:02d}" for i in range(60)], 6).astype(object)
    labels = np.tile([0, 1, 1, 1, 1, 1], 60)  # class 0: one row in each group
    rows = stratified_subsample(labels, 50, seed=0, groups=groups)
    assert len(rows) == 50 and np.abs(np.bincount(labels[rows]) - [8, 42]).max() <= 1
    speakers = np.repeat([f"s{i:03d}" for i in range(100)], 20).astype(object)
    digits = np.tile(np.arange(10), 200)
    drawn = [set(speakers[stratified_subsample(digits, 200, seed, speakers)]) for seed in (1, 2)]
    assert all(len(d) > 50 for d in drawn) and drawn[0] != drawn[1]
    rows = stratified_subsample(digits, 200, 1, speakers)
    assert len(rows) == 200 and (np.bincount(digits[rows]) == 20).all()


def test_test_split_is_encoded_with_the_training_classes(tmp_path: Path) -> None:
    frame = toy_frame(tmp_path)
    frame.to_parquet(tmp_path / "train.parquet")
    frame.assign(label="dog").to_parquet(tmp_path / "test.parquet")
    frame.assign(label="cow").to_parquet(tmp_path / "bad.parquet")
    ds = spec(
        {"kind": "parquet", "path": "train.parquet"},
        TOY_MODALITIES,
        test_source={"kind": "parquet", "path": "test.parquet"},
    )
    train = load_table(ds, tmp_path)
    test = load_table(ds, tmp_path, split="test", classes=train.classes)
    assert test.classes == ["cat", "dog"] and set(test.labels.tolist()) == {1}
    ds.test_source = SourceSpec(kind="parquet", path="bad.parquet")
    with pytest.raises(DataError, match="not among the training classes"):
        load_table(ds, tmp_path, split="test", classes=train.classes)
    ds.test_source = None
    with pytest.raises(DataError, match="no 'test_source'"):
        load_table(ds, tmp_path, split="test")


@pytest.mark.parametrize(
    ("column", "speakers", "needle"),
    [
        (
            "speker",
            ["a", "b", "c"] * 4,
            "protocol.group_column column 'speker' (did you mean 'speaker'?)",
        ),
        (
            "speaker",
            ["a", "b"] * 6,
            "group column 'speaker' has 2 group(s), fewer than protocol.folds=3",
        ),
        ("speaker", ["a", None, "b", "c"] * 3, "group column 'speaker' is missing in 3 row(s)"),
    ],
    ids=["typo", "too few groups", "missing group"],
)
def test_group_column_problems_are_named(
    tmp_path: Path, column: str, speakers: list, needle: str
) -> None:
    frame = pd.DataFrame(
        {"text": [f"t{i}" for i in range(12)], "speaker": speakers, "label": ["x", "y"] * 6}
    )
    frame.to_csv(tmp_path / "d.csv", index=False)
    spec = DatasetSpec.model_validate(
        {"name": "g", "source": {"kind": "csv", "path": "d.csv"}, "target": "label",
         "modalities": {"text": "text"}, "protocol": {"folds": 3, "group_column": column}}
    )  # fmt: skip
    with pytest.raises(DataError) as info:
        load_table(spec, tmp_path)
    assert needle in str(info.value)

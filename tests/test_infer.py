"""``modalities: auto`` (mmbench/data/infer.py): columns typed from generated tables whose
media paths point at real PNG and WAV files, the decisions it records, and its errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from mmbench.data import load_table
from mmbench.errors import DataError, SuiteError
from mmbench.suite import load_suite, parse_suite

N_ROWS = 60
WORDS = [
    "red",
    "green",
    "blue",
    "small",
    "large",
    "quick",
    "slow",
    "bright",
    "dark",
    "warm",
    "cold",
    "soft",
]


def _table(folder: Path, rows: int = N_ROWS, media: bool = True) -> pd.DataFrame:
    """Every kind of column auto types, with a label that depends on the numbers."""
    rng = np.random.default_rng(0)
    price = rng.normal(10, 3, rows).round(2)
    frame = pd.DataFrame(
        {
            "price": price,
            "stock": rng.integers(0, 500, rows),
            "colour": rng.choice(["red", "green", "blue"], rows),
            "review": [" ".join(rng.choice(WORDS, 8)) + f" item {i}" for i in range(rows)],
            "label": np.where(price > 10, "high", "low"),
        }
    )
    if media:
        frame["photo"] = [_png(folder / "img" / f"{i}.png", i) for i in range(rows)]
        frame["clip"] = [_wav(folder / "wav" / f"{i}.wav", i) for i in range(rows)]
    return frame


def _png(path: Path, i: int) -> str:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (i % 256, 0, 0)).save(path)
    return f"{path.parent.name}/{path.name}"


def _wav(path: Path, i: int) -> str:
    import soundfile

    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(800) / 8000
    soundfile.write(path, 0.1 * np.sin(2 * np.pi * (200 + i) * t), 8000)
    return f"{path.parent.name}/{path.name}"


def _suite(folder: Path, frame: pd.DataFrame, modalities: Any = "auto", **extra: Any) -> Path:
    frame.to_csv(folder / "train.csv", index=False)
    dataset = {
        "name": "gen",
        "source": {"kind": "csv", "path": "train.csv"},
        "target": "label",
        "modalities": modalities,
        "protocol": {"folds": 3},
        **extra,
    }
    path = folder / "auto.yaml"
    path.write_text(yaml.safe_dump({"name": "auto", "datasets": [dataset]}))
    return path


def _load(path: Path) -> Any:
    suite = load_suite(path)
    return load_table(suite.datasets[0], suite.root)


def test_auto_types_numbers_categories_text_and_media_paths(tmp_path: Path) -> None:
    table = _load(_suite(tmp_path, _table(tmp_path)))
    record = table.meta["inferred_modalities"]
    assert record["columns"] == {
        "price": "numeric",
        "stock": "numeric",
        "colour": "categorical",
        "review": "text",
        "photo": "image",
        "clip": "audio",
    }
    assert record["notes"] == []
    assert table.modalities == ["image", "text", "tabular", "audio"]
    assert list(table.tabular.columns) == ["price", "stock", "colour"]
    assert str(table.image[0]["path"]).endswith("img/0.png")
    assert str(table.audio[5]["path"]).endswith("wav/5.wav")


def test_named_columns_stay_as_named_and_ignored_ones_are_left_out(tmp_path: Path) -> None:
    frame = _table(tmp_path, media=False)
    frame["row_id"] = range(N_ROWS)
    path = _suite(tmp_path, frame, {"auto": True, "text": "colour", "ignore": ["row_id", "stock"]})
    table = _load(path)
    assert table.meta["inferred_modalities"]["columns"] == {"price": "numeric", "review": "text"}
    assert list(table.tabular.columns) == ["price"]
    assert table.text[0].startswith(str(_table(tmp_path, media=False)["colour"][0]))


def test_many_short_distinct_strings_become_text_with_a_recorded_note(tmp_path: Path) -> None:
    frame = _table(tmp_path, media=False)
    frame["code"] = [f"sku{i}" for i in range(N_ROWS)]
    table = _load(_suite(tmp_path, frame))
    record = table.meta["inferred_modalities"]
    assert record["columns"]["code"] == "text"
    [note] = record["notes"]
    assert "'code' typed text: 60 distinct values in 60 rows" in note and "tabular" in note


def test_image_paths_that_do_not_resolve_are_an_error_naming_the_column(tmp_path: Path) -> None:
    frame = _table(tmp_path, media=False)
    frame["photo"] = [f"missing/{i}.jpg" for i in range(N_ROWS)]
    with pytest.raises(DataError, match=r"column 'photo' holds image file names, but 60 of 60"):
        _load(_suite(tmp_path, frame))


def test_two_image_columns_are_an_error_not_a_silent_pick(tmp_path: Path) -> None:
    frame = _table(tmp_path)
    frame["thumb"] = frame["photo"]
    with pytest.raises(DataError, match=r"found 2 image columns \['photo', 'thumb'\]"):
        _load(_suite(tmp_path, frame))


def test_an_empty_column_is_left_out_with_a_note(tmp_path: Path) -> None:
    frame = _table(tmp_path, media=False)
    frame["blank"] = None
    record = _load(_suite(tmp_path, frame)).meta["inferred_modalities"]
    assert "blank" not in record["columns"]
    assert record["notes"] == ["'blank' left out: no value in the 60 rows inspected"]


def test_an_ignored_column_that_does_not_exist_is_named(tmp_path: Path) -> None:
    path = _suite(tmp_path, _table(tmp_path, media=False), {"auto": True, "ignore": ["stok"]})
    with pytest.raises(DataError, match=r"modalities.ignore column 'stok'.*did you mean 'stock'"):
        _load(path)


@pytest.mark.parametrize(
    ("modalities", "message"),
    [
        ("automatic", "'automatic': modalities are a mapping"),
        ({"text": "review", "ignore": ["stock"]}, "'ignore' applies to auto typing only"),
        ({"auto": True, "text": "review", "ignore": ["review"]}, "both named and ignored"),
        ({"auto": True, "ignore": ["label"]}, "target column 'label' is also listed under ignore"),
    ],
)
def test_auto_schema_errors(modalities: Any, message: str) -> None:
    dataset = {"name": "d", "source": {"kind": "csv", "path": "x.csv"}, "target": "label"}
    with pytest.raises(SuiteError, match=message):
        parse_suite({"name": "s", "datasets": [{**dataset, "modalities": modalities}]})


def test_the_test_split_and_the_result_file_use_the_training_mapping(tmp_path: Path) -> None:
    """On the test rows alone ``colour`` would be text (every value distinct); it is loaded,
    scored and recorded as the training rows typed it."""
    from mmbench.data.infer import with_inferred
    from mmbench.results import ResultLayout
    from mmbench.run import Reporter, RunOptions, run_suite

    test = _table(tmp_path, rows=30, media=False)
    test["colour"] = [f"shade number {i}" for i in range(30)]
    test.to_csv(tmp_path / "test.csv", index=False)
    path = _suite(
        tmp_path,
        _table(tmp_path, media=False),
        test_source={"kind": "csv", "path": "test.csv"},
        budget={"trials": 1},
    )
    suite = load_suite(path)
    spec = suite.datasets[0]
    train = load_table(spec, suite.root)
    held_out = load_table(
        with_inferred(spec, train.meta["inferred_modalities"]),
        suite.root,
        split="test",
        classes=train.classes,
    )
    assert list(held_out.tabular.columns) == ["price", "stock", "colour"]
    assert "inferred_modalities" not in held_out.meta

    options = RunOptions(
        results_dir=tmp_path / "res", track=False, pipelines=["xgboost-early-fusion"]
    )
    [outcome] = run_suite(suite, options, Reporter(enabled=False))
    assert outcome.error is None, outcome.error
    [written] = ResultLayout(tmp_path / "res", "auto").load()
    assert written.test_metrics and "roc_auc" in written.test_metrics
    inferred = written.dataset.inferred_modalities
    assert inferred is not None and inferred.columns == {
        "price": "numeric",
        "stock": "numeric",
        "colour": "categorical",
        "review": "text",
    }


def test_rows_to_score_need_the_typed_modalities(tmp_path: Path) -> None:
    from mmbench.data.loading import table_from_frame
    from mmbench.data.spec import Modalities

    frame = _table(tmp_path, rows=4, media=False)
    with pytest.raises(DataError, match="modalities: auto"):
        table_from_frame(frame, Modalities.model_validate("auto"), ["high", "low"])

"""The synthetic generator: determinism, shape of the data, and the per-modality signal contract."""

from __future__ import annotations

import io
import json
from collections import Counter
from functools import cache

import numpy as np
import pytest

from mmbench.data.media import load_audio, load_image
from mmbench.data.synthetic import SYNTHETIC_DEFAULT_SIGNAL, generate, recipe
from mmbench.errors import DataError


def test_same_seed_gives_identical_data_and_another_seed_differs() -> None:
    a, b, c = generate(n_rows=40, seed=1), generate(n_rows=40, seed=1), generate(n_rows=40, seed=2)
    for column in ("label", "text", "num_0", "cat_0"):
        assert a[column] == b[column]
    assert [r["bytes"] for r in a["image"]] == [r["bytes"] for r in b["image"]]
    assert [r["bytes"] for r in a["audio"]] == [r["bytes"] for r in b["audio"]]
    assert a["text"] != c["text"]
    assert [r["bytes"] for r in a["image"]] != [r["bytes"] for r in c["image"]]


def test_changing_one_modality_signal_leaves_the_others_untouched() -> None:
    base = generate(n_rows=30, seed=3)
    louder = generate(n_rows=30, seed=3, signal={"audio": 1.0})
    assert base["label"] == louder["label"]
    assert [r["bytes"] for r in base["image"]] == [r["bytes"] for r in louder["image"]]
    assert base["text"] == louder["text"]
    assert [r["bytes"] for r in base["audio"]] != [r["bytes"] for r in louder["audio"]]


def test_imbalance_orders_class_frequencies() -> None:
    counts = Counter(generate(n_rows=120, n_classes=3, imbalance=0.5)["label"])
    assert counts["class_0"] > counts["class_1"] > counts["class_2"] >= 1
    assert sum(counts.values()) == 120
    balanced = Counter(generate(n_rows=120, n_classes=4, imbalance=0.0)["label"])
    assert set(balanced.values()) == {30}


def test_size_options_shape_every_modality() -> None:
    ds = generate(n_rows=24, n_classes=4, image_size=16, audio_seconds=0.25, sample_rate=4000)
    assert len(ds) == 24
    assert sorted(set(ds["label"])) == ["class_0", "class_1", "class_2", "class_3"]
    assert load_image(ds[0]["image"]).size == (16, 16)
    assert load_audio(ds[0]["audio"], sample_rate=4000).shape == (1000,)
    assert isinstance(ds[0]["text"], str) and ds[0]["text"].endswith(".")
    assert {f"num_{j}" for j in range(4)} | {"cat_0", "cat_1"} <= set(ds.column_names)


def test_many_classes_get_zero_padded_names_that_sort_in_class_order() -> None:
    labels = sorted(set(generate(n_rows=24, n_classes=12, imbalance=0.0)["label"]))
    assert labels[:3] == ["class_00", "class_01", "class_02"] and labels[-1] == "class_11"


def test_recipe_is_recorded_in_the_dataset_info() -> None:
    ds = generate(n_rows=20, seed=5, signal={"text": 0.9})
    stored = json.loads(ds.info.description)
    assert stored == recipe(n_rows=20, seed=5, signal={"text": 0.9})
    assert stored["signal"] == {**SYNTHETIC_DEFAULT_SIGNAL, "text": 0.9}
    assert stored["agreement"]["audio"] == pytest.approx(1 / 3)


def test_missing_blanks_media_text_and_tabular_cells() -> None:
    ds = generate(n_rows=60, missing=0.3)
    for column in ("image", "text", "audio"):
        assert 5 <= sum(v is None for v in ds[column]) <= 35
    frame = ds.select_columns(["num_0", "num_1", "num_2", "num_3", "cat_0", "cat_1"]).to_pandas()
    assert frame.isna().to_numpy().sum() > 5
    assert not frame.isna().all(axis=1).any()  # one cell per hit row, never a whole row


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"signal": {"imgae": 0.5}}, "did you mean 'image'"),
        ({"signal": {"image": 1.5}}, "signal['image']"),
        ({"n_classes": 1}, "n_classes"),
        ({"n_rows": 2, "n_classes": 3}, "n_rows"),
        ({"imbalance": 1.0}, "imbalance"),
    ],
)
def test_bad_options_raise_data_error(options: dict, needle: str) -> None:
    with pytest.raises(DataError) as info:
        generate(**options)
    assert needle in str(info.value)


# -- the signal contract: informative modalities are learnable, a noise modality is not ---------


@cache
def _signal_scores(audio: float, image: float) -> dict[str, float]:
    """4-fold CV accuracy of a linear model on simple hand features of each modality."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ds = generate(n_rows=400, imbalance=0.0, seed=0, signal={"audio": audio, "image": image})
    y = np.array(ds["label"])
    features = {
        "image": np.array([_hue_histogram(r) for r in ds["image"]]),
        "tabular": np.column_stack([ds["num_0"], ds["num_1"], np.log(ds["num_2"])]),
        "audio": np.array([_spectrum_bands(r) for r in ds["audio"]]),
        "text": CountVectorizer().fit_transform(ds["text"]),
    }
    scores = {}
    for name, x in features.items():
        model = LogisticRegression(max_iter=500)
        clf = model if name == "text" else make_pipeline(StandardScaler(), model)
        scores[name] = float(cross_val_score(clf, x, y, cv=4).mean())
    return scores


def _hue_histogram(ref: dict) -> np.ndarray:
    """Hue distribution of strongly saturated pixels: the shape's colour, mostly."""
    hsv = np.asarray(load_image(ref).convert("HSV"), dtype=np.float64) / 255
    saturated = hsv[..., 1] > 0.5
    hist = np.histogram(hsv[..., 0][saturated], bins=12, range=(0, 1))[0]
    return hist / max(1, saturated.sum())


def _spectrum_bands(ref: dict) -> np.ndarray:
    """Log energy in 24 frequency bands: enough to read the pitch of a tone."""
    import soundfile as sf

    wave, sr = sf.read(io.BytesIO(ref["bytes"]))
    spectrum = np.abs(np.fft.rfft(wave))
    freqs = np.fft.rfftfreq(len(wave), 1 / sr)
    return np.log1p(np.histogram(freqs, bins=24, range=(0, sr / 2), weights=spectrum)[0])


def test_default_signal_makes_image_and_tabular_informative_and_audio_noise() -> None:
    scores = _signal_scores(audio=SYNTHETIC_DEFAULT_SIGNAL["audio"], image=0.75)
    chance = 1 / 3
    assert scores["image"] > 0.6, scores
    assert scores["tabular"] > 0.5, scores
    assert scores["text"] > chance, scores  # weak by design
    assert abs(scores["audio"] - chance) < 0.1, scores
    assert scores["image"] > scores["tabular"] > scores["audio"], scores


def test_signal_controls_what_each_modality_carries() -> None:
    # the same hand features separate audio perfectly once audio shows the true class,
    # so the near-chance score above is the data's doing, not the features'
    scores = _signal_scores(audio=1.0, image=0.0)
    assert scores["audio"] > 0.9, scores
    assert abs(scores["image"] - 1 / 3) < 0.1, scores

"""Feature cache: the key the pipeline uses, hits, misses, invalidation, corruption, housekeeping."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_suite

from mmbench.data import load_table
from mmbench.data.table import MultiModalTable
from mmbench.encoders.base import Encoder, create_encoder
from mmbench.pipeline import encode
from mmbench.pipeline.cache import FeatureCache, default_cache_dir, feature_key, index_digest


class Counter:
    """A compute function that records how often it ran."""

    def __init__(self, value: float = 1.0) -> None:
        self.calls = 0
        self.value = value

    def __call__(self) -> np.ndarray:
        self.calls += 1
        return np.full((3, 2), self.value, dtype=np.float32)


def key(**changes: object) -> dict:
    spec = create_encoder("tfidf", **changes).spec()
    return feature_key("fp0001", "text", spec, train_index=np.arange(10))


def test_miss_then_hit_returns_identical_array(tmp_path: Path) -> None:
    cache, compute = FeatureCache(tmp_path), Counter()
    first = cache.get_or_compute(key(), compute)
    second = cache.get_or_compute(key(), compute)
    assert compute.calls == 1 and (cache.hits, cache.misses) == (1, 1)
    np.testing.assert_array_equal(first, second)
    assert second.dtype == np.float32
    assert cache.seconds_saved >= 0 and cache.stats()["hits"] == 1
    sidecar = json.loads(cache.path_for(key()).with_suffix(".json").read_text())
    assert sidecar["key"]["modality"] == "text" and sidecar["shape"] == [3, 2]


def test_changed_option_fingerprint_or_fold_misses(tmp_path: Path) -> None:
    cache, compute = FeatureCache(tmp_path), Counter()
    cache.get_or_compute(key(), compute)
    cache.get_or_compute(key(svd_dim=8), compute)
    other_data = feature_key("fp0002", "text", create_encoder("tfidf").spec(), np.arange(10))
    cache.get_or_compute(other_data, compute)
    other_fold = feature_key("fp0001", "text", create_encoder("tfidf").spec(), np.arange(1, 11))
    cache.get_or_compute(other_fold, compute)
    assert compute.calls == 4 and cache.hits == 0
    assert len(list(tmp_path.glob("*/*.npy"))) == 4


# -- the key the pipeline caches encoder outputs under ----------------------------------------


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> MultiModalTable:
    """Tiny generated rows with a fitted (tfidf) and a frozen (logmel) encoder's modality."""
    root = tmp_path_factory.mktemp("table")
    suite = tiny_suite(root, modalities={"text": "text", "audio": "audio"}, n_rows=40)
    return load_table(suite.datasets[0], suite.root, seed=0)


def encoders(**tfidf: object) -> dict[str, Encoder]:
    return {"text": create_encoder("tfidf", **tfidf), "audio": create_encoder("logmel")}


def test_pipeline_stores_features_under_feature_key(tmp_path: Path, table: MultiModalTable) -> None:
    cache, train = FeatureCache(tmp_path), np.arange(30)
    encs = encoders()
    features, _ = encode(table, encs, train, cache)
    text_key = feature_key(table.fingerprint, "text", encs["text"].spec(), train)
    audio_key = feature_key(table.fingerprint, "audio", encs["audio"].spec())
    for m, k in (("text", text_key), ("audio", audio_key)):
        np.testing.assert_array_equal(np.load(cache.path_for(k)), features.features[m])
    assert len(list(tmp_path.glob("*/*.npy"))) == 2


def test_same_spec_hits_and_changed_option_misses(tmp_path: Path, table: MultiModalTable) -> None:
    cache, train = FeatureCache(tmp_path), np.arange(30)
    first, _ = encode(table, encoders(), train, cache)
    again, _ = encode(table, encoders(), train, cache)  # fresh encoder objects, same specs
    assert (cache.hits, cache.misses) == (2, 2)
    np.testing.assert_array_equal(first.features["text"], again.features["text"])
    encode(table, encoders(svd_dim=4), train, cache)
    assert (cache.hits, cache.misses) == (3, 3)  # only tfidf's entry is new


def test_fitted_encoders_are_keyed_per_fold_frozen_ones_shared(
    tmp_path: Path, table: MultiModalTable
) -> None:
    cache = FeatureCache(tmp_path)
    encode(table, encoders(), np.arange(30), cache)
    encode(table, encoders(), np.arange(10, 40), cache)  # another fold's training rows
    assert (cache.hits, cache.misses) == (1, 3)  # logmel hit; tfidf refitted and stored
    keys = [json.loads(p.read_text())["key"] for p in tmp_path.glob("*/*.json")]
    assert sorted(k["modality"] for k in keys) == ["audio", "text", "text"]
    assert all(("train_rows" in k) == (k["modality"] == "text") for k in keys)


def test_corrupt_entry_is_recomputed(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)
    cache.get_or_compute(key(), Counter(1.0))
    path = cache.path_for(key())
    path.write_bytes(path.read_bytes()[:20])  # truncated
    redo = Counter(2.0)
    assert cache.get_or_compute(key(), redo)[0, 0] == 2.0 and redo.calls == 1
    assert FeatureCache(tmp_path).get_or_compute(key(), Counter())[0, 0] == 2.0  # rewritten


def test_disabled_cache_always_computes(tmp_path: Path) -> None:
    cache, compute = FeatureCache(None), Counter()
    cache.get_or_compute(key(), compute)
    cache.get_or_compute(key(), compute)
    assert compute.calls == 2 and cache.hits == 0 and not cache.enabled


def test_clear_removes_only_entries(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)
    cache.get_or_compute(key(), Counter())
    (tmp_path / "notes.txt").write_text("keep me")
    assert cache.clear() == 2
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    assert FeatureCache(tmp_path / "never-created").clear() == 0


def test_keys_accept_numpy_values_and_reject_objects(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)
    assert cache.path_for({"n": np.int64(3)}) == cache.path_for({"n": 3})
    with pytest.raises(TypeError, match="JSON"):
        cache.path_for({"n": object()})


def test_index_digest_and_default_dir(monkeypatch, tmp_path: Path) -> None:
    assert index_digest(np.array([1, 2, 3])) == index_digest([1, 2, 3])
    assert index_digest([1, 2, 3]) != index_digest([3, 2, 1])
    monkeypatch.setenv("MMBENCH_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("MMBENCH_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "mmbench" / "features"


def test_sparse_features_round_trip_as_sparse(tmp_path: Path) -> None:
    from scipy import sparse

    cache = FeatureCache(tmp_path)
    matrix = sparse.random(20, 500, density=0.02, random_state=0, format="csr", dtype=np.float32)
    first = cache.get_or_compute(key(sparse=True), lambda: matrix)
    again = FeatureCache(tmp_path).get_or_compute(key(sparse=True), lambda: pytest.fail("miss"))
    assert sparse.issparse(first) and sparse.issparse(again)
    assert (again != matrix).nnz == 0 and again.shape == (20, 500)
    assert cache.clear() == 2  # the .npz and its sidecar

"""Feature cache: hits, misses, invalidation, corruption and housekeeping."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mmbench.cache import FeatureCache, default_cache_dir, feature_key, index_digest
from mmbench.encoders.base import create_encoder


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

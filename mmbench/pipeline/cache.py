"""On-disk cache of encoder outputs, keyed by everything that determines them.

Encoding images or text with a pretrained model is usually the most expensive step of a
candidate, and the same (dataset, modality, encoder) recurs across folds, trials and suites.
A key is a JSON-serialisable dict -- dataset fingerprint, modality, ``encoder.spec()`` and, for
encoders fitted per fold, :func:`index_digest` of the training rows. Its canonical JSON is hashed
(sha256) into ``<root>/<h[:2]>/<h>.npy``; a ``.json`` sidecar stores the key for humans and the
compute time, which a hit adds to :attr:`FeatureCache.seconds_saved`. Writes go to a temporary
file and are renamed into place, so concurrent workers and interrupted runs never leave a
half-written entry behind; an unreadable entry is treated as a miss and rewritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mmbench._io import TMP_PREFIX, atomic_write

_ENTRY_SUFFIXES = (".npy", ".npz", ".json")


def default_cache_dir() -> Path:
    """``$MMBENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/mmbench/features`` (``~/.cache/...``)."""
    explicit = os.environ.get("MMBENCH_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "mmbench" / "features"


def index_digest(index: np.ndarray | list[int]) -> str:
    """Short hash of training-row indices; keys the features of a per-fold fitted encoder.

    Order matters on purpose: some fits (randomised SVD) depend on row order.
    """
    data = np.ascontiguousarray(np.asarray(index, dtype=np.int64)).tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


def feature_key(
    fingerprint: str,
    modality: str,
    encoder_spec: dict[str, Any],
    train_index: np.ndarray | list[int] | None = None,
) -> dict[str, Any]:
    """The key of one encoder's output on all rows of a dataset (what the pipeline caches).

    ``encoder_spec`` is ``encoder.spec()``: name, options and whatever else determines the
    output (model revision, checkpoint digest). ``train_index`` is given for encoders with
    ``fits_on_data``: their output depends on which rows they were fitted on, so each fold gets
    its own entry, while frozen encoders share one entry across folds, trials and suites.
    """
    key: dict[str, Any] = {"dataset": fingerprint, "modality": modality, "encoder": encoder_spec}
    if train_index is not None:
        key["train_rows"] = index_digest(train_index)
    return key


def key_digest(key: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of ``key`` (sorted keys, no whitespace)."""
    text = json.dumps(key, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()


def _json_default(value: Any) -> Any:
    """Let keys carry numpy scalars/arrays, paths and sets without the caller converting them."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"feature-cache key value {value!r} is not JSON-serialisable")


class FeatureCache:
    """``get_or_compute(key, compute)`` with hit/miss counters; ``root=None`` disables storage."""

    def __init__(self, root: Path | str | None) -> None:
        self.root = None if root is None else Path(root).expanduser()
        self.hits = 0
        self.misses = 0
        self.write_error: str | None = None  # the first failed write (warned about once)
        self.seconds_saved = 0.0

    @property
    def enabled(self) -> bool:
        return self.root is not None

    def path_for(self, key: dict[str, Any]) -> Path:
        """Where the array for ``key`` lives (whether or not it exists yet)."""
        if self.root is None:
            raise RuntimeError("the feature cache is disabled (root=None)")
        digest = key_digest(key)
        return self.root / digest[:2] / f"{digest}.npy"

    def contains(self, key: dict[str, Any]) -> bool:
        """Whether features for ``key`` are stored (a later ``get_or_compute`` costs no encoding)."""
        if self.root is None:
            return False
        path = self.path_for(key)
        return path.is_file() or path.with_suffix(".npz").is_file()

    def get_or_compute(self, key: dict[str, Any], compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The cached array for ``key``, or ``compute()``'s result, stored for next time."""
        if self.root is None:
            self.misses += 1
            return _as_array(compute())
        path = self.path_for(key)
        cached = _read(path)
        if cached is None:
            cached = _read_sparse(path.with_suffix(".npz"))
        if cached is not None:
            self.hits += 1
            self.seconds_saved += _recorded_seconds(path.with_suffix(".json"))
            return cached
        self.misses += 1
        start = time.perf_counter()
        array = _as_array(compute())
        seconds = time.perf_counter() - start
        try:
            self._write(path, key, array, seconds)
        except OSError as exc:  # a full or read-only disk costs the cache, never the features
            if self.write_error is None:
                self.write_error = str(exc)
                warnings.warn(f"feature cache {self.root} not written: {exc}", stacklevel=2)
            path.with_suffix(".json").unlink(missing_ok=True)  # no entry without its array
        return array

    def _write(self, path: Path, key: dict[str, Any], array: np.ndarray, seconds: float) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        sidecar = {
            "key": key,
            "shape": list(array.shape),
            "dtype": str(array.dtype),
            "seconds": round(seconds, 6),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        text = json.dumps(sidecar, sort_keys=True, indent=1, default=_json_default)
        atomic_write(path.with_suffix(".json"), lambda f: f.write(text.encode()))
        if _is_sparse(array):
            from scipy import sparse

            atomic_write(path.with_suffix(".npz"), lambda f: sparse.save_npz(f, array))
        else:
            atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))

    def clear(self) -> int:
        """Delete every cache entry under ``root`` (and nothing else); returns files removed."""
        if self.root is None or not self.root.is_dir():
            return 0
        removed = 0
        for shard in self.root.iterdir():
            if not (shard.is_dir() and len(shard.name) == 2):
                continue
            for file in shard.iterdir():
                if file.suffix in _ENTRY_SUFFIXES or file.name.startswith(TMP_PREFIX):
                    file.unlink(missing_ok=True)
                    removed += 1
            with contextlib.suppress(OSError):  # not empty: someone else's files
                shard.rmdir()
        return removed

    def stats(self) -> dict[str, Any]:
        """Counters for logs and result files."""
        return {
            "hits": self.hits,
            "misses": self.misses,
            "seconds_saved": round(self.seconds_saved, 3),
        }

    def __repr__(self) -> str:
        return f"FeatureCache(root={self.root!s}, hits={self.hits}, misses={self.misses})"


def _read(path: Path) -> np.ndarray | None:
    """The stored array, or None when absent or unreadable (truncated, corrupt, wrong format)."""
    if not path.is_file():
        return None
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None


def _read_sparse(path: Path) -> Any:
    """A stored ``scipy.sparse`` matrix (n-gram TF-IDF), or None when absent or unreadable."""
    if not path.is_file():
        return None
    from scipy import sparse

    try:
        return sparse.load_npz(path).tocsr()
    except (OSError, ValueError, EOFError, KeyError):
        return None


def _is_sparse(x: Any) -> bool:
    return hasattr(x, "tocsr") and hasattr(x, "nnz")


def _as_array(x: Any) -> Any:
    """Dense features as an ndarray; sparse ones stay sparse (CSR)."""
    return x.tocsr() if _is_sparse(x) else np.asarray(x)


def _recorded_seconds(sidecar: Path) -> float:
    try:
        return float(json.loads(sidecar.read_text())["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0

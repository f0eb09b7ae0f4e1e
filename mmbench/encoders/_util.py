"""Small helpers shared by the built-in encoders (no heavy imports at module level)."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import MMBenchError


def present_rows(values: Sequence[Any]) -> np.ndarray:
    """Indices of rows whose value is not ``None``."""
    return np.array([i for i, v in enumerate(values) if v is not None], dtype=np.int64)


def file_digest(path: str | Path) -> str:
    """Short content hash of a weights file, so a changed checkpoint invalidates cached features."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise MMBenchError(f"checkpoint file not found: {path}")
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def package_version(name: str) -> str:
    """Installed version of a distribution, part of cache keys of model-backed encoders."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def batches(n: int, size: int) -> list[slice]:
    """Consecutive slices of at most ``size`` covering ``range(n)``."""
    size = max(int(size), 1)
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's CPU generator for model construction without disturbing the caller's stream.

    Towers are built before the training loop seeds itself, so unseeded initialisation would
    make otherwise identical runs differ.
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield

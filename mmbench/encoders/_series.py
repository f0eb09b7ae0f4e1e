"""Helpers shared by the sensor encoders: channel counts, resampling to one length, stacking."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mmbench.encoders._util import present_rows
from mmbench.errors import MMBenchError


def channel_count(values: Sequence[Any], encoder: str) -> int:
    """Channels of the present series (loading checked that they agree); 0 when none is."""
    counts = {int(v.shape[0]) for v in values if v is not None}
    if len(counts) > 1:
        raise MMBenchError(f"{encoder}: series with different channel counts {sorted(counts)}")
    return counts.pop() if counts else 0


def longest(values: Sequence[Any]) -> int:
    """The longest present series' length (0 when none is present)."""
    return max((int(v.shape[1]) for v in values if v is not None), default=0)


def resample(series: np.ndarray, length: int) -> np.ndarray:
    """``(channels, T)`` -> ``(channels, length)`` by linear interpolation over the same span.

    Unequal-length recordings of the same activity become comparable (a time-warp, not a crop);
    a series of exactly ``length`` steps is returned unchanged.
    """
    series = np.asarray(series, dtype=np.float32)
    t = series.shape[1]
    if t == length:
        return series
    if t == 1:
        return np.repeat(series, length, axis=1)
    grid = np.linspace(0.0, t - 1.0, length)
    return np.stack([np.interp(grid, np.arange(t), ch) for ch in series]).astype(np.float32)


def stacked(
    values: Sequence[Any], channels: int, length: int, encoder: str
) -> tuple[np.ndarray, np.ndarray]:
    """Present rows resampled to ``(n_present, channels, length)``, and their row indices."""
    rows = present_rows(values)
    out = np.zeros((len(rows), channels, length), dtype=np.float32)
    for j, i in enumerate(rows):
        series = values[i]
        if series.shape[0] != channels:
            raise MMBenchError(
                f"{encoder} was fitted on {channels}-channel series; row {i} has {series.shape[0]}"
            )
        out[j] = resample(series, length)
    return out, rows

"""Per-channel summary statistics of sensor series: the cheap sensor encoder.

Each channel is summarised by its level (mean, median, min, max), spread (std) and roughness
(mean and std of the first difference: how fast it moves), plus one column for the series'
length in log steps: ``7 * channels + 1`` features whatever the length, so unequal-length rows
need no resampling. The channel count is learned from the training rows (fitted per fold), so a
batch of rows whose series are all missing still gets the trained width, as zeros.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmbench.encoders._series import channel_count
from mmbench.encoders._util import present_rows
from mmbench.encoders.base import Encoder, register_encoder

STATS = ("mean", "std", "min", "max", "median", "diff_mean_abs", "diff_std")


@register_encoder("sensor_stats")
class SensorStatsEncoder(Encoder):
    """``7 * channels + 1`` statistics per series; missing series are zero rows."""

    modality = "sensor"
    fits_on_data = True
    version = 1

    def __init__(self) -> None:
        super().__init__("sensor_stats")
        self.channels: int | None = None

    def fit(self, values: Any, labels: np.ndarray) -> SensorStatsEncoder:
        self.channels = channel_count(list(values), self.name)
        return self

    def transform(self, values: Any) -> np.ndarray:
        if self.channels is None:
            raise RuntimeError(f"encoder {self.name!r} must be fitted before transform")
        values = list(values)
        out = np.zeros((len(values), len(STATS) * self.channels + 1), dtype=np.float32)
        if self.channels == 0:
            return out
        for i in present_rows(values):
            out[i] = series_stats(values[i], self.channels)
        return out


def series_stats(series: np.ndarray, channels: int) -> np.ndarray:
    """The statistics of one ``(channels, T)`` series, channel-major, then ``log1p(T)``."""
    x = np.asarray(series, dtype=np.float64)
    if x.shape[0] != channels:
        raise ValueError(f"sensor_stats was fitted on {channels}-channel series, got {x.shape[0]}")
    diff = np.diff(x, axis=1) if x.shape[1] > 1 else np.zeros((channels, 1))
    columns = [
        x.mean(1),
        x.std(1),
        x.min(1),
        x.max(1),
        np.median(x, axis=1),
        np.abs(diff).mean(1),
        diff.std(1),
    ]
    return np.concatenate([np.stack(columns, axis=1).ravel(), [np.log1p(x.shape[1])]])

"""Sensor series as inputs of a small 1-D CNN tower trained with a torch fusion head.

``transform`` returns model inputs, not features: each series resampled to ``length`` steps and
standardised per channel with the mean and std of the training rows (fitted per fold, so the
validation rows never inform the scale), ``(n, channels, length)``. :meth:`build_tower` gives a
fresh :class:`~mmbench.encoders.towers.SeriesCNN` that the head trains end to end; missing
series are zero inputs, and the head's presence mask tells it they are missing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmbench.encoders._series import channel_count, stacked
from mmbench.encoders._util import seeded
from mmbench.encoders.base import Encoder, register_encoder
from mmbench.errors import MMBenchError


@register_encoder("sensorcnn")
class SensorCNNEncoder(Encoder):
    """Standardised, resampled series for a :class:`~mmbench.encoders.towers.SeriesCNN`."""

    modality = "sensor"
    fits_on_data = True
    trainable = True
    version = 1

    def __init__(
        self,
        length: int = 128,
        channels: list[int] | tuple[int, ...] = (32, 64),
        kernel_size: int = 7,
        seed: int = 0,
    ) -> None:
        channels = [int(c) for c in channels]
        if length < 8 or not channels or min(channels) < 1 or kernel_size < 1:
            raise MMBenchError("sensorcnn needs length >= 8, channels >= 1 and kernel_size >= 1")
        super().__init__(
            "sensorcnn",
            length=int(length),
            channels=channels,
            kernel_size=int(kernel_size),
            seed=int(seed),
        )
        self._mean: np.ndarray | None = None
        self._std: np.ndarray | None = None

    def fit(self, values: Any, labels: np.ndarray) -> SensorCNNEncoder:
        values = list(values)
        channels = channel_count(values, self.name)
        x, _ = stacked(values, channels, self.options["length"], self.name)
        if len(x):
            self._mean = x.mean(axis=(0, 2))[:, None].astype(np.float32)
            self._std = (x.std(axis=(0, 2))[:, None] + 1e-6).astype(np.float32)
        else:
            self._mean = np.zeros((channels, 1), np.float32)
            self._std = np.ones((channels, 1), np.float32)
        return self

    @property
    def in_channels(self) -> int:
        if self._mean is None:
            raise RuntimeError(f"encoder {self.name!r} must be fitted first")
        return int(self._mean.shape[0])

    def transform(self, values: Any) -> np.ndarray:
        values = list(values)
        length = self.options["length"]
        out = np.zeros((len(values), self.in_channels, length), dtype=np.float32)
        x, rows = stacked(values, self.in_channels, length, self.name)
        if len(rows):
            out[rows] = (x - self._mean) / self._std
        return out

    @property
    def tower_dim(self) -> int:
        return 2 * self.options["channels"][-1]

    def build_tower(self) -> Any:
        from mmbench.encoders.towers import SeriesCNN

        o = self.options
        with seeded(o["seed"]):
            return SeriesCNN(self.in_channels, o["channels"], o["kernel_size"])

"""MiniRocket (Dempster et al., 2021): random convolutional features of sensor series, via aeon.

MiniRocket convolves each series with a fixed set of short kernels at many dilations and keeps
the proportion of positive values (PPV) per kernel, dilation and bias. The biases are quantiles of
convolution outputs *of the training series*, so the transform is fitted per fold on training
rows only (``fits_on_data``, like TF-IDF's vocabulary) and its features are cached per
(dataset, training rows). Multichannel series use aeon's multivariate variant (random channel
combinations per kernel).

aeon's MiniRocket needs equal lengths: every series is resampled to ``length`` steps (default:
the longest training series), a time-warp that keeps each recording whole. ``n_kernels`` is
rounded down to a multiple of 84 (the fixed kernel set); ``n_kernels: 84`` is the tiny variant
the tests run. Needs the ``sensor`` extra (``pip install "mmbench[sensor]"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmbench.data.series import require_aeon
from mmbench.encoders._series import channel_count, longest, stacked
from mmbench.encoders._util import package_version
from mmbench.encoders.base import Encoder, register_encoder
from mmbench.errors import MMBenchError

MIN_LENGTH = 9  # MiniRocket's kernels are 9 steps long


@register_encoder("minirocket")
class MiniRocketEncoder(Encoder):
    """``n_kernels // 84 * 84`` PPV features per series; missing series are zero rows."""

    modality = "sensor"
    fits_on_data = True
    version = 1

    def __init__(
        self,
        n_kernels: int = 10_000,
        max_dilations: int = 32,
        length: int | None = None,
        seed: int = 0,
    ) -> None:
        if n_kernels < 84 or max_dilations < 1 or (length is not None and length < MIN_LENGTH):
            raise MMBenchError(
                f"minirocket needs n_kernels >= 84, max_dilations >= 1, length >= {MIN_LENGTH}"
            )
        super().__init__(
            "minirocket",
            n_kernels=int(n_kernels),
            max_dilations=int(max_dilations),
            length=None if length is None else int(length),
            seed=int(seed),
        )
        self._rocket: Any = None
        self._shape: tuple[int, int] | None = None  # (channels, length) it was fitted on

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), "aeon": package_version("aeon")}

    @property
    def feature_dim(self) -> int:
        return self.options["n_kernels"] // 84 * 84

    def fit(self, values: Any, labels: np.ndarray) -> MiniRocketEncoder:
        require_aeon("encoder minirocket")
        from aeon.transformations.collection.convolution_based import MiniRocket

        values = list(values)
        channels = channel_count(values, self.name)
        length = max(self.options["length"] or longest(values), MIN_LENGTH)
        self._shape, self._rocket = (channels, length), None
        x, _ = stacked(values, channels, length, self.name)
        if len(x):
            self._rocket = MiniRocket(
                n_kernels=self.options["n_kernels"],
                max_dilations_per_kernel=self.options["max_dilations"],
                n_jobs=1,
                random_state=self.options["seed"],
            ).fit(x)
        return self

    def transform(self, values: Any) -> np.ndarray:
        if self._shape is None:
            raise RuntimeError(f"encoder {self.name!r} must be fitted before transform")
        values = list(values)
        out = np.zeros((len(values), self.feature_dim), dtype=np.float32)
        x, rows = stacked(values, *self._shape, self.name)
        if self._rocket is not None and len(rows):
            features = np.asarray(self._rocket.transform(x), dtype=np.float32)
            out[rows, : features.shape[1]] = features[:, : self.feature_dim]
        return out

"""Video encoders: ``k`` frames sampled uniformly, each through a frozen image encoder, then
pooled over time (mean or max: flat features for every head) or handed to a temporal tower (a GRU
or a self-attention layer over the frame features, trained with a torch fusion).

``frames/<image encoder>`` accepts every frozen image encoder by name (``frames/pixels``,
``frames/efficientnet_lite0``, ``frames/timm/test_resnet``); options that are not the video
encoder's own go to the image encoder (``frames/efficientnet_lite0`` with ``image_size: 128``),
so the backbone and its options are part of the feature-cache key, with ``k`` and the pooling.
Frames are decoded by :mod:`mmbench.data.video`; a missing video is a zero row (zero frames).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from mmbench.data.video import sample_frames
from mmbench.encoders._util import batches, present_rows, seeded
from mmbench.encoders.base import Encoder, create_encoder, register_encoder
from mmbench.errors import MMBenchError

FLAT_POOLING = ("mean", "max")
"""Pooling over time inside the encoder: ``(rows, d)`` features any head can take."""
TEMPORAL_POOLING = ("gru", "attention")
"""Pooling learned by a tower: the encoder emits ``(rows, k, d)`` frame features."""


@register_encoder("frames")
class FrameEncoder(Encoder):
    """``k`` uniformly sampled frames -> a frozen image encoder -> pooled over time.

    Options: ``model`` (the image encoder's name, default ``efficientnet_lite0``), ``k`` (frames
    per video), ``pooling`` (``mean``/``max`` -> ``d`` features; ``gru``/``attention`` -> a
    trainable temporal tower of width ``hidden``, seeded by ``tower_seed``), ``videos_per_batch``
    (videos decoded before one call of the image encoder), and any option of the image encoder.
    """

    modality = "video"
    version = 1

    def __init__(
        self,
        model: str = "efficientnet_lite0",
        k: int = 8,
        pooling: str = "mean",
        hidden: int = 64,
        tower_seed: int = 0,
        videos_per_batch: int = 16,
        **frame_options: Any,
    ) -> None:
        if pooling not in FLAT_POOLING + TEMPORAL_POOLING:
            raise MMBenchError(
                f"frames: pooling must be one of {', '.join(FLAT_POOLING + TEMPORAL_POOLING)}, "
                f"got {pooling!r}"
            )
        if not 1 <= int(k) <= 256 or int(hidden) < 1:
            raise MMBenchError(f"frames: need 1 <= k <= 256 and hidden >= 1, got {k}, {hidden}")
        self.frame_encoder = create_encoder(model, **frame_options)
        if self.frame_encoder.modality != "image" or self.frame_encoder.trainable:
            raise MMBenchError(
                f"frames: {model!r} is not a frozen image encoder (modality "
                f"{self.frame_encoder.modality!r}); frames go through a frozen image encoder"
            )
        super().__init__(
            f"frames/{model}",
            model=model,
            k=int(k),
            pooling=pooling,
            hidden=int(hidden),
            tower_seed=int(tower_seed),
            videos_per_batch=int(videos_per_batch),
            **frame_options,
        )
        self.trainable = pooling in TEMPORAL_POOLING
        self._dim: int | None = None

    def spec(self) -> dict[str, Any]:
        """``k``, the pooling and the image encoder's own spec (backbone, options, weights).

        The temporal poolings share one entry: they cache the same ``(rows, k, d)`` frame
        features, and the tower's width and seed do not change them.
        """
        pooling = self.options["pooling"]
        return {
            "name": "frames",
            "options": {"k": self.options["k"], "pooling": "frames" if self.trainable else pooling},
            "version": self.version,
            "frame_encoder": self.frame_encoder.spec(),
        }

    @property
    def frame_dim(self) -> int:
        """Width of one frame's features (one blank frame through the image encoder)."""
        if self._dim is None:
            self._dim = int(self.frame_encoder.transform([_blank_frame()]).shape[1])
        return self._dim

    def transform(self, values: Any) -> np.ndarray:
        """``(rows, d)`` pooled features, or ``(rows, k, d)`` frame features for a tower."""
        values = list(values)
        k = self.options["k"]
        shape = (
            (len(values), k, self.frame_dim) if self.trainable else (len(values), self.frame_dim)
        )
        out = np.zeros(shape, dtype=np.float32)
        rows = present_rows(values)
        for part in batches(len(rows), self.options["videos_per_batch"]):
            idx = rows[part]
            refs = [_as_ref(f) for i in idx for f in sample_frames(values[i], k, row=int(i))]
            frames = np.asarray(self.frame_encoder.transform(refs), dtype=np.float32)
            frames = frames.reshape(len(idx), k, -1)
            if self.trainable:
                out[idx] = frames
            else:
                out[idx] = (
                    frames.max(axis=1) if self.options["pooling"] == "max" else frames.mean(1)
                )
        return out

    @property
    def tower_dim(self) -> int:
        if not self.trainable:
            return super().tower_dim
        return self.options["hidden"]

    def build_tower(self) -> Any:
        """A fresh temporal tower: ``(B, k, d)`` frame features -> ``(B, hidden)``."""
        if not self.trainable:
            return super().build_tower()
        from mmbench.encoders._temporal import TemporalTower

        o = self.options
        with seeded(o["tower_seed"]):
            return TemporalTower(self.frame_dim, o["hidden"], kind=o["pooling"])


def _as_ref(image: Any) -> dict[str, Any]:
    """A decoded frame as an image reference the image encoders read (BMP: no compression cost)."""
    buf = io.BytesIO()
    image.save(buf, format="BMP")
    return {"bytes": buf.getvalue(), "path": None}


def _blank_frame() -> dict[str, Any]:
    from PIL import Image

    return _as_ref(Image.new("RGB", (32, 32)))

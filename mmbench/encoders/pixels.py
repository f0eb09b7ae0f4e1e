"""``pixels``: a small thumbnail's raw values, the image features a hand-written script would use.

Decoding and shrinking an image costs milliseconds, so this encoder lets a search start with an
image-aware candidate long before a pretrained backbone has encoded the dataset, and it is the
honest yardstick for what a backbone adds. Values are in [0, 1]; missing images are zero rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmbench.data.media import load_image
from mmbench.encoders.base import Encoder, register_encoder
from mmbench.errors import MMBenchError


@register_encoder("pixels")
class PixelEncoder(Encoder):
    """``size``×``size`` thumbnail, grayscale or RGB, flattened (``size² × channels`` features)."""

    modality = "image"
    version = 1

    def __init__(self, size: int = 16, color: bool = True) -> None:
        if not 2 <= size <= 128:
            raise MMBenchError(f"pixels: size must be between 2 and 128, got {size}")
        super().__init__("pixels", size=int(size), color=bool(color))

    @property
    def width(self) -> int:
        return self.options["size"] ** 2 * (3 if self.options["color"] else 1)

    def transform(self, values: Any) -> np.ndarray:
        from PIL import Image

        size, mode = self.options["size"], "RGB" if self.options["color"] else "L"
        out = np.zeros((len(values), self.width), dtype=np.float32)
        for i, ref in enumerate(values):
            if ref is None:
                continue
            image = (
                load_image(ref, row=i).convert(mode).resize((size, size), Image.Resampling.BILINEAR)
            )
            out[i] = np.asarray(image, dtype=np.float32).reshape(-1) / 255.0
        return out

"""What a tabular tool can consume from a multi-modal table: one DataFrame, one row per table row.

Tabular tools cannot read images or audio, so this gives them what a hand-written script would:
the joined text as one string column, the tabular columns as they are, a tiny grayscale
thumbnail as pixel columns, MFCC summary statistics and per-channel statistics of each sensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from mmbench.data.table import MultiModalTable

TEXT_COLUMN = "text"
THUMBNAIL = 8
"""Side of the grayscale image thumbnail: 8×8 = 64 pixel columns, scikit-learn's digits size."""
N_MFCC = 20
AUDIO_SAMPLE_RATE = 16000


def peer_frame(
    table: MultiModalTable,
    *,
    thumbnail: int = THUMBNAIL,
    n_mfcc: int = N_MFCC,
    sample_rate: int = AUDIO_SAMPLE_RATE,
) -> pd.DataFrame:
    """Everything a tabular tool can consume from ``table``, one row per table row.

    ``text`` is the joined text; tabular columns come as they are; the image becomes
    ``px_0..px_{t*t-1}``, a ``thumbnail``×``thumbnail`` grayscale in [0, 1] (a script feeding a
    tree model shrinks pictures to a few dozen numbers; more would drown the other columns); audio
    becomes ``mfcc_mean_i``/``mfcc_std_i``, the classic summary of a clip; each sensor becomes
    ``<modality>.<stat>_<channel>`` (:mod:`mmbench.encoders.sensor_stats`). Missing media are NaN.
    Decoding is the expensive part: compute this once per table and slice it per fold.
    """
    parts: list[pd.DataFrame] = []
    if table.text is not None:
        parts.append(pd.DataFrame({TEXT_COLUMN: pd.Series(table.text, dtype=object)}))
    if table.image is not None:
        parts.append(_thumbnails(table.image, thumbnail))
    if table.audio is not None:
        parts.append(_mfcc_stats(table.audio, n_mfcc, sample_rate))
    parts += [_sensor_stats(m, values) for m, values in table.sensors.items()]
    generated = {str(c) for p in parts for c in p.columns}
    if table.tabular is not None:
        tab = table.tabular.reset_index(drop=True)
        clashes = {c: f"tabular.{c}" for c in tab.columns if str(c) in generated}
        parts.append(tab.rename(columns=clashes))
    if not parts:
        return pd.DataFrame(index=pd.RangeIndex(len(table)))
    return pd.concat(parts, axis=1)


def _thumbnails(refs: Sequence[Any], size: int) -> pd.DataFrame:
    from PIL import Image

    from mmbench.data.media import load_image

    pixels = np.full((len(refs), size * size), np.nan, dtype=np.float32)
    for i, ref in enumerate(refs):
        if ref is not None:
            gray = load_image(ref, row=i).convert("L")
            small = gray.resize((size, size), Image.Resampling.BOX)  # area average: no aliasing
            pixels[i] = np.asarray(small, dtype=np.float32).ravel() / 255.0
    return pd.DataFrame(pixels, columns=[f"px_{j}" for j in range(size * size)])


def _mfcc_stats(refs: Sequence[Any], n_mfcc: int, sample_rate: int) -> pd.DataFrame:
    """MFCC mean and std over time, via mmbench's own ``mfcc`` encoder (same decoding path)."""
    from mmbench.encoders.audio import MFCCEncoder

    encoder = MFCCEncoder(n_mfcc=n_mfcc, sample_rate=sample_rate, n_mels=max(40, n_mfcc))
    stats = encoder.transform(list(refs)).astype(np.float32)
    stats[np.array([r is None for r in refs], dtype=bool)] = np.nan
    names = [f"mfcc_mean_{j}" for j in range(n_mfcc)] + [f"mfcc_std_{j}" for j in range(n_mfcc)]
    return pd.DataFrame(stats, columns=names)


def _sensor_stats(modality: str, values: Sequence[Any]) -> pd.DataFrame:
    """Per-channel statistics of one sensor's series (the ``sensor_stats`` encoder's)."""
    from mmbench.encoders.sensor_stats import STATS, SensorStatsEncoder

    encoder = SensorStatsEncoder().fit(list(values), np.zeros(len(values)))
    stats = encoder.transform(list(values))
    stats[np.array([v is None for v in values], dtype=bool)] = np.nan
    channels = range(encoder.channels or 0)
    names = [f"{modality}.{s}_{k}" for k in channels for s in STATS] + [f"{modality}.log_length"]
    return pd.DataFrame(stats, columns=names)


def categorical_columns(frame: pd.DataFrame) -> list[str]:
    """Columns a script would one-hot encode: every non-numeric one except the text."""
    return [
        str(c)
        for c in frame.columns
        if c != TEXT_COLUMN and not pd.api.types.is_numeric_dtype(frame[c])
    ]

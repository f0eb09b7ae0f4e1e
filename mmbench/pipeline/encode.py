"""A table's rows as features: encoders built from a spec, fitted on training rows only,
frozen features through the feature cache, and the measured cost of encoding.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from mmbench.budget import NO_DEADLINE, Deadline
from mmbench.config import PipelineSpec
from mmbench.data.table import MultiModalTable
from mmbench.encoders.base import Encoder, create_encoder
from mmbench.fusion.base import FeatureSet
from mmbench.pipeline.cache import FeatureCache, feature_key


def take(values: Any, index: np.ndarray) -> Any:
    """Rows ``index`` of one modality's values (list or DataFrame)."""
    if hasattr(values, "iloc"):
        return values.iloc[index].reset_index(drop=True)
    return [values[i] for i in index]


def build_encoders(spec: PipelineSpec, modalities: list[str]) -> dict[str, Encoder]:
    missing = [m for m in modalities if m not in spec.encoders]
    if missing:
        from mmbench.errors import MMBenchError

        raise MMBenchError(f"pipeline has no encoder for modality {missing}")
    return {
        m: create_encoder(spec.encoders[m].name, **spec.encoders[m].options) for m in modalities
    }


def encode(
    table: MultiModalTable,
    encoders: dict[str, Encoder],
    train: np.ndarray,
    cache: FeatureCache | None = None,
    *,
    keep_fitted: bool = False,
    deadline: Deadline = NO_DEADLINE,
) -> tuple[FeatureSet, dict[str, Any]]:
    """Features of every row, with data-dependent encoders fitted on ``train`` rows only.

    Returns the feature set and the towers of trainable encoders. Frozen encoders are cached
    once per dataset; fitted ones once per (dataset, training rows), unless ``keep_fitted``:
    then they are always fitted, because the caller keeps them to encode new rows later.
    """
    cache = cache or FeatureCache(None)
    features: dict[str, np.ndarray] = {}
    towers: dict[str, Any] = {}
    for m, enc in encoders.items():
        values = table[m]
        if not enc.fits_on_data:
            features[m] = frozen_features(table, m, enc, cache, deadline)
        elif enc.trainable or keep_fitted:  # its fitted state is needed
            features[m] = enc.fit(take(values, train), table.labels[train]).transform(values)
        else:
            key = feature_key(table.fingerprint, m, enc.spec(), train)

            def compute(enc: Encoder = enc, values: Any = values) -> np.ndarray:
                enc.fit(take(values, train), table.labels[train])
                return enc.transform(values)

            features[m] = cache.get_or_compute(key, compute)
        if enc.trainable:
            towers[m] = enc.build_tower()
    present = {m: table.present(m) for m in encoders}
    meta = {"categorical": categorical_tails(table, encoders)}
    data = FeatureSet(
        features=features, present=present, labels=table.labels, meta=meta, groups=table.groups
    )
    return data, towers


def categorical_tails(table: MultiModalTable, encoders: dict[str, Encoder]) -> dict[str, int]:
    """Modality -> number of trailing category-code columns, for encoders that emit them."""
    tails = {}
    for m, enc in encoders.items():
        count = getattr(enc, "categorical_codes", None)
        if count is not None and count(table[m]):
            tails[m] = int(count(table[m]))
    return tails


PROBE_ROWS = 16


CHUNK_ROWS = 256


def transform_in_chunks(enc: Encoder, values: Any, deadline: Deadline = NO_DEADLINE) -> Any:
    """``enc.transform(values)`` a chunk of rows at a time, checking ``deadline`` in between.

    Frozen encoders treat rows independently, so chunking changes nothing but when a long
    encoding (a pretrained backbone over thousands of images) can stop for the budget.
    """
    if deadline.at is None or len(values) <= CHUNK_ROWS:
        return enc.transform(values)
    parts = []
    for start in range(0, len(values), CHUNK_ROWS):
        deadline.check(f"encoding with {enc.name}")
        rows = np.arange(start, min(start + CHUNK_ROWS, len(values)))
        parts.append(enc.transform(take(values, rows)))
    if hasattr(parts[0], "tocsr"):
        from scipy import sparse

        return sparse.vstack(parts, format="csr")
    return np.concatenate(parts, axis=0)


def encode_seconds(
    table: MultiModalTable,
    spec: PipelineSpec,
    cache: FeatureCache | None,
    measured: dict[str, float] | None = None,
) -> float:
    """Wall seconds the frozen encoders of ``spec`` would spend on the rows not yet cached.

    Measured, not guessed: each uncached frozen encoder transforms a small probe of rows (after
    one warm-up row that pays for loading its model) and the rate is extrapolated to the table.
    ``measured`` memoizes rates by encoder spec across calls (one probe per encoder and study).
    Encoders fitted per fold (TF-IDF, scalers) are cheap and not probed.
    """
    cache = cache or FeatureCache(None)
    measured = {} if measured is None else measured
    total = 0.0
    for m in [m for m in table.modalities if m in spec.encoders]:
        enc = create_encoder(spec.encoders[m].name, **spec.encoders[m].options)
        if enc.fits_on_data or enc.trainable:
            continue
        if cache.contains(feature_key(table.fingerprint, m, enc.spec(), None)):
            continue
        ident = repr(enc.spec())
        if ident not in measured:
            measured[ident] = _seconds_per_row(enc, table[m])
        total += measured[ident] * len(table)
    return total


def _seconds_per_row(enc: Encoder, values: Any) -> float:
    rows = [i for i in range(len(values)) if values[i] is not None][: PROBE_ROWS + 1]
    if len(rows) < 2:
        return 0.0
    enc.transform(take(values, np.array(rows[:1])))  # loads the model
    start = time.perf_counter()
    enc.transform(take(values, np.array(rows[1:])))
    return (time.perf_counter() - start) / (len(rows) - 1)


def input_dims(features: FeatureSet, towers: dict[str, Any]) -> dict[str, int]:
    return {
        m: int(towers[m].out_dim) if m in towers else int(x.shape[1])
        for m, x in features.features.items()
    }


def transform(
    table: MultiModalTable,
    encoders: dict[str, Encoder],
    cache: FeatureCache | None = None,
    deadline: Deadline = NO_DEADLINE,
) -> dict[str, Any]:
    """Features of every row of ``table`` from fitted or frozen encoders (frozen ones through
    ``cache``, keyed like :func:`encode` keys them)."""
    cache = cache or FeatureCache(None)
    return {
        m: enc.transform(table[m])
        if enc.fits_on_data
        else frozen_features(table, m, enc, cache, deadline)
        for m, enc in encoders.items()
    }


def frozen_features(
    table: MultiModalTable,
    modality: str,
    enc: Encoder,
    cache: FeatureCache,
    deadline: Deadline = NO_DEADLINE,
) -> Any:
    """A frozen encoder's features of every row, cached once per (dataset, encoder spec)."""
    key = feature_key(table.fingerprint, modality, enc.spec(), None)
    return cache.get_or_compute(key, lambda: transform_in_chunks(enc, table[modality], deadline))

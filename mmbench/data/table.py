"""The in-memory form every encoder consumes: raw inputs split by modality, aligned by row.

Media stay encoded (file path or bytes) until an encoder decodes them in batches, so a table of
thousands of images costs little memory. A missing value is ``None`` (image, text, audio) or NaN
(tabular cells); a row whose whole modality is missing is masked by :meth:`MultiModalTable.present`.
A sensor row is a ``(channels, time)`` float32 array (its length may differ between rows).
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

MediaRef = dict[str, Any]
"""An undecoded image, audio or video value: ``{"path": str | None, "bytes": bytes | None}``; a
video given as frame images also has ``"frames": [MediaRef, ...]`` (:mod:`mmbench.data.video`)."""

Series = np.ndarray
"""One sensor row: ``(channels, time)`` float32."""


@dataclass
class MultiModalTable:
    """Rows of one dataset: per-modality raw values, integer labels and class names.

    ``image``, ``audio`` and ``video`` are lists of :data:`MediaRef` or ``None``; ``text`` is a
    list of ``str`` or ``None`` (several text columns are joined); ``tabular`` is a DataFrame;
    ``sensors`` maps each sensor modality (``sensor_accel``) to its rows of :data:`Series` or
    ``None``. ``table[m]`` is modality ``m``'s values, whatever its kind.
    """

    name: str
    labels: np.ndarray
    classes: list[str]
    image: list[MediaRef | None] | None = None
    text: list[str | None] | None = None
    tabular: pd.DataFrame | None = None
    audio: list[MediaRef | None] | None = None
    video: list[MediaRef | None] | None = None
    sensors: dict[str, list[Series | None]] = field(default_factory=dict)
    fingerprint: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    groups: np.ndarray | None = None
    """One group id per row (``protocol.group_column``): folds never split a group. Not a
    feature and not part of the fingerprint (the grouping is the protocol's, recorded there)."""

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        n = len(self.labels)
        if self.groups is not None and len(self.groups) != n:
            raise ValueError(f"groups has {len(self.groups)} rows, labels have {n}")
        for m in self.modalities:
            if len(self[m]) != n:
                raise ValueError(f"modality {m!r} has {len(self[m])} rows, labels have {n}")
        if not self.fingerprint:
            self.fingerprint = self.compute_fingerprint()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, modality: str) -> Any:
        if modality in self.sensors:
            return self.sensors[modality]
        return getattr(self, modality)

    @property
    def modalities(self) -> list[str]:
        """Modalities this table carries, in canonical order (named sensors last)."""
        kinds = ("image", "text", "tabular", "audio", "video")
        return [m for m in kinds if getattr(self, m) is not None] + list(self.sensors)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def present(self, modality: str) -> np.ndarray:
        """Boolean mask of rows whose ``modality`` value is not missing."""
        values = self[modality]
        if modality == "tabular":
            return np.asarray(~values.isna().all(axis=1))
        return np.array([v is not None for v in values], dtype=bool)

    def subset(self, index: np.ndarray | list[int], fingerprint: str = "") -> MultiModalTable:
        """Rows ``index`` as a new table: its fingerprint recomputed, or ``fingerprint`` (one
        the caller derives from this table's and ``index``, so no media is read again)."""
        idx = np.asarray(index, dtype=np.int64)
        parts: dict[str, Any] = {}
        for m in self.modalities:
            values = self[m]
            if m == "tabular":
                parts[m] = values.iloc[idx].reset_index(drop=True)
            else:
                parts[m] = [values[i] for i in idx]
        return MultiModalTable(
            name=self.name,
            labels=self.labels[idx],
            classes=list(self.classes),
            meta=dict(self.meta),
            groups=None if self.groups is None else self.groups[idx],
            fingerprint=fingerprint,
            **modality_fields(parts),
        )

    def rows_of(self, index: np.ndarray, salt: str = "") -> MultiModalTable:
        """Rows ``index`` as a new table whose fingerprint is derived from this table's, the
        index and ``salt`` (what the rows are for), so no media is read again and the same rows
        of the same table always get the same fingerprint (and feature-cache entries)."""
        index = np.asarray(index, dtype=np.int64)
        key = f"{self.fingerprint}:{salt}{index.tobytes().hex()}"
        return self.subset(index, fingerprint=hashlib.sha256(key.encode()).hexdigest()[:16])

    def without(self, modalities: list[str] | set[str]) -> MultiModalTable:
        """The same rows with the given modalities dropped entirely."""
        keep = {m: self[m] for m in self.modalities if m not in modalities}
        return MultiModalTable(
            name=self.name,
            labels=self.labels,
            classes=list(self.classes),
            meta=dict(self.meta),
            groups=self.groups,
            **modality_fields(keep),
        )

    def compute_fingerprint(self) -> str:
        """Content hash of labels and every modality value; keys the feature cache and the gate.

        It identifies the *data*, not the machine that produced it: labels as little-endian
        int64, tabular cells through :func:`_column_digest` (floats at float32 precision, so a
        last-bit difference from another CPU's ``exp`` or ``sin`` does not change it; no pandas
        hashing, whose output may change between pandas versions and dtypes), media by bytes:
        in-memory bytes as they are, a file by the SHA-256 of its content
        (:func:`file_sha256`), not its path.
        """
        h = hashlib.sha256()
        h.update(self.labels.astype("<i8").tobytes())
        h.update("\x1f".join(self.classes).encode())
        for m in self.modalities:
            h.update(m.encode())
            values = self[m]
            if m == "tabular":
                for name in values.columns:
                    h.update(str(name).encode() + b"\x1e")
                    h.update(_column_digest(values[name]))
                continue
            for v in values:
                h.update(_value_digest(v))
        return h.hexdigest()[:16]


def modality_fields(parts: dict[str, Any]) -> dict[str, Any]:
    """Values by modality as :class:`MultiModalTable` keywords: named sensors under ``sensors``."""
    fields = {m: v for m, v in parts.items() if m in MultiModalTable.__dataclass_fields__}
    return {**fields, "sensors": {m: v for m, v in parts.items() if m not in fields}}


def _column_digest(column: pd.Series) -> bytes:
    """Canonical bytes of one tabular column, independent of dtype spelling and CPU.

    Integers and booleans hash exactly (as int64); other numbers at float32 precision with one
    NaN pattern, so floats that differ only in their last bits (another SIMD path, another
    libm) hash the same while any change a person would see does not; everything else
    (strings, categories, mixed objects) as text with a marker for missing cells.
    """
    exact = pd.api.types.is_bool_dtype(column) or pd.api.types.is_integer_dtype(column)
    if exact and not column.isna().any():
        return b"i" + column.to_numpy(dtype="<i8").tobytes()
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan).astype("<f4")
        values[np.isnan(values)] = np.float32("nan")  # one NaN bit pattern
        return b"f" + values.tobytes()
    cells = ("\x00" if _missing(v) else str(v) for v in column.tolist())
    return b"s" + hashlib.blake2b("\x1f".join(cells).encode(), digest_size=16).digest()


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA


def _value_digest(value: Any) -> bytes:
    if value is None:
        return b"\x00"
    if isinstance(value, str):
        return hashlib.blake2b(value.encode(), digest_size=8).digest()
    if isinstance(value, np.ndarray):  # a sensor series: its shape and float32 values
        shape = np.asarray(value.shape, dtype="<i8").tobytes()
        data = np.ascontiguousarray(value, dtype="<f4").tobytes()
        return hashlib.blake2b(shape + data, digest_size=8).digest()
    if value.get("frames") is not None:  # a video as frame images: every frame counts
        frames = b"".join(map(_value_digest, value["frames"]))
        return hashlib.blake2b(frames, digest_size=8).digest()
    data = value.get("bytes")
    if data is not None:
        return hashlib.blake2b(data, digest_size=8).digest()
    path = value.get("path")
    content = None if path is None else file_sha256(path)
    if content is None:  # no file to read (a URL, a missing file): only its name is known
        return hashlib.blake2b(str(path).encode(), digest_size=8).digest()
    return hashlib.blake2b(b"file:" + content.encode(), digest_size=8).digest()


_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}
"""SHA-256 of files this process has read or verified, by (path, size, modification time)."""
RACY_MTIME_S = 2.0
"""A file modified this recently is hashed again each time rather than remembered: the kernel
stamps mtimes with a coarse clock (milliseconds), so a second edit that soon could leave size
and mtime unchanged (git's "racily clean" files; it applies the same rule)."""


def file_sha256(path: str | os.PathLike[str]) -> str | None:
    """Hex SHA-256 of a file's bytes, or None when it cannot be read (missing, a URL).

    A media file is part of the fingerprint by what it holds, not where it lies: the same data
    under another ``MMBENCH_DATA_DIR`` keeps its fingerprint (and feature-cache entries), and a
    file edited in place gets a new one. Read in 1 MiB blocks and remembered by (path, size,
    mtime), so a table of thousands of files is read once per process and re-fingerprinting
    it (``subset``, ``without``) costs a ``stat`` per file; an edit moves the mtime.
    """
    try:
        key = _stat_key(path)
    except (OSError, ValueError):
        return None
    known = _FILE_DIGESTS.get(key)
    if known is not None:
        return known
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    _remember(key, digest.hexdigest())
    return digest.hexdigest()


def remember_file_sha256(path: str | os.PathLike[str], sha256: str) -> None:
    """Record the SHA-256 a caller has just verified ``path`` against (a download checked
    against its registry), so fingerprinting the table does not read the file a second time."""
    _remember(_stat_key(path), sha256.lower())


def _stat_key(path: str | os.PathLike[str]) -> tuple[str, int, int]:
    stat = os.stat(path)
    return os.path.abspath(path), stat.st_size, stat.st_mtime_ns


def _remember(key: tuple[str, int, int], sha256: str) -> None:
    if time.time_ns() - key[2] > RACY_MTIME_S * 1e9:
        _FILE_DIGESTS[key] = sha256

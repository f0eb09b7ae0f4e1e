"""Sensor time series: ``.ts`` files in, and columns of lists turned into ``(channels, time)`` rows.

A sensor modality names columns; each cell holds one channel's series (a list of numbers) or
several channels (a list of equal-length lists). :func:`sensor_rows` stacks a row's channels
into one float32 array and checks what an encoder would otherwise trip over deep in a run: the
channels of a row share one length, every row has the same channels, values are finite.

``.ts`` (the UEA/UCR archive's format, e.g. BasicMotions) is read with aeon's
``load_from_ts_file`` (the ``sensor`` extra), into one list column ``dim_K`` per channel and the
class in ``label``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from mmbench.data.table import Series
from mmbench.errors import DataError, MMBenchError

if TYPE_CHECKING:
    import datasets

TS_LABEL = "label"
SENSOR_EXTRA = 'pip install "mmbench[sensor]"'


def require_aeon(what: str) -> Any:
    """The ``aeon`` package, or an error that says which extra installs it."""
    try:
        import aeon
    except ImportError:
        raise MMBenchError(f"{what} needs aeon: {SENSOR_EXTRA}") from None
    return aeon


def load_ts_files(paths: list[str]) -> datasets.Dataset:
    """Rows of one or more ``.ts`` files: ``dim_0 .. dim_{C-1}`` (float32 lists) and ``label``.

    Unequal-length series stay unequal; the files must agree on the number of channels.
    """
    import datasets
    import pyarrow as pa

    require_aeon("reading .ts files")
    from aeon.datasets import load_from_ts_file

    rows: list[np.ndarray] = []
    labels: list[Any] = []
    for path in paths:
        try:
            x, y = load_from_ts_file(path)
        except Exception as exc:
            raise DataError(
                f"could not read .ts file {path!r}: {type(exc).__name__}: {exc}"
            ) from None
        rows.extend(np.asarray(r, dtype=np.float32) for r in x)
        labels.extend(y.tolist() if y is not None else [None] * len(x))
    channels = {r.shape[0] for r in rows}
    if len(channels) > 1:
        raise DataError(f".ts files {paths} disagree on the number of channels: {sorted(channels)}")
    n_channels = channels.pop() if channels else 0
    columns = {
        f"dim_{k}": pa.array([r[k] for r in rows], type=pa.list_(pa.float32()))
        for k in range(n_channels)
    }
    columns[TS_LABEL] = pa.array([None if v is None else str(v) for v in labels], pa.string())
    return datasets.Dataset(pa.table(columns))


def sensor_rows(
    cells: list[list[Any]],
    columns: list[str],
    rows: np.ndarray,
    on_unreadable: str,
    where: str,
) -> tuple[list[Series | None], int]:
    """One sensor's rows from its columns' cells (``cells[j][i]``: column ``j``, row ``i``).

    A row with any column missing is a missing series. A row whose channels differ in length,
    or that holds a non-finite value, raises (naming the column and the source row ``rows[i]``),
    or is missing with ``on_unreadable="missing"``. Returns the rows and how many were dropped.
    """
    out: list[Series | None] = []
    bad: list[str] = []
    for i, parts in enumerate(zip(*cells, strict=True)):
        if any(_is_missing(p) for p in parts):
            out.append(None)
            continue
        series, reason = _stack(parts, columns)
        if reason is not None:
            bad.append(f"row {rows[i]}: {reason}")
            out.append(None)
            continue
        out.append(series)
    if bad and on_unreadable == "error":
        more = f"; and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise DataError(
            f"{where}: {len(bad)} unreadable sensor series ({', '.join(columns)}): "
            f"{'; '.join(bad[:5])}{more}. Fix the data or set on_unreadable: missing"
        )
    _check_channels(out, columns, rows, where)
    return out, len(bad)


def _stack(parts: tuple[Any, ...], columns: list[str]) -> tuple[Series | None, str | None]:
    """The row's channels as one ``(channels, time)`` array, or why they cannot be."""
    channels: list[np.ndarray] = []
    for column, part in zip(columns, parts, strict=True):
        try:
            values = np.asarray(part, dtype=np.float32)
        except (TypeError, ValueError):
            return None, f"column {column!r} holds lists of unequal length or non-numbers"
        if values.ndim not in (1, 2) or values.shape[-1] == 0:
            return None, f"column {column!r} holds no series (shape {values.shape})"
        channels.extend(np.atleast_2d(values))
    lengths = sorted({len(c) for c in channels})
    if len(lengths) > 1:
        return None, f"its channels have different lengths {lengths}"
    series = np.stack(channels)
    if not np.isfinite(series).all():
        return None, "holds a missing or infinite value inside the series"
    return series, None


def _check_channels(
    series: list[Series | None], columns: list[str], rows: np.ndarray, where: str
) -> None:
    """Every present row has the first row's number of channels."""
    counts = [(i, s.shape[0]) for i, s in enumerate(series) if s is not None]
    if not counts:
        return
    first = counts[0][1]
    odd = [(i, c) for i, c in counts if c != first]
    if odd:
        i, c = odd[0]
        raise DataError(
            f"{where}: sensor columns {columns} give {first} channel(s) in row {rows[counts[0][0]]} "
            f"but {c} in row {rows[i]} ({len(odd)} row(s) differ); every row needs the same channels"
        )


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))

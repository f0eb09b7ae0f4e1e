"""The data layer's entry point: a suite's dataset entry in, a validated MultiModalTable out.

Order matters: the source is loaded, its schema and labels are validated, rows are subsampled,
and only then are media opened, so a bad column name fails in seconds and ``max_rows`` keeps
quick runs from reading every file.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from mmbench import modality_kind
from mmbench.data.infer import infer_modalities
from mmbench.data.series import sensor_rows
from mmbench.data.sources import load_source, media_root
from mmbench.data.table import MediaRef, MultiModalTable, modality_fields
from mmbench.data.validate import (
    check_classes,
    check_columns,
    check_features,
    check_media,
    check_tabular,
    first_rows,
)
from mmbench.data.video import frame_list_ref
from mmbench.errors import DataError
from mmbench.evaluation.splits import stratified_subsample

if TYPE_CHECKING:
    import pyarrow as pa

    from mmbench.data.spec import DataSpec, Modalities, SourceSpec

TEXT_SEPARATOR = " . "


def load_table(
    dataset: DataSpec,
    root: Path,
    *,
    split: Literal["train", "test"] = "train",
    max_rows: int | None = None,
    seed: int = 0,
    progress: bool = False,
    classes: list[str] | None = None,
) -> MultiModalTable:
    """Load ``dataset.source`` (or ``test_source``) as a validated :class:`MultiModalTable`.

    ``max_rows`` (default ``dataset.max_rows``) draws a stratified subsample with ``seed``.
    ``classes`` fixes the class order, so a test split is encoded like its training split;
    a label outside it is an error. Raises DataError for every problem with the data.

    ``modalities: auto`` types the unnamed columns from the rows of this split
    (:mod:`mmbench.data.infer`), recorded in ``meta["inferred_modalities"]``; a test split is
    loaded with its training split's mapping: pass
    :func:`~mmbench.data.infer.with_inferred` of the dataset and the training table's record.
    """
    spec = _source(dataset, split)
    where = f"dataset {dataset.name!r} ({split}: {spec.describe()})"
    inferred = None
    try:
        ds = load_source(spec, Path(root), modalities=dataset.modalities)
        if dataset.modalities.auto:
            check_columns(list(ds.column_names), dataset, where)
            folder = media_root(spec, Path(root))
            dataset, inferred = infer_modalities(ds, dataset, folder, where)
    except DataError as exc:
        raise DataError(exc.args[0] if str(exc).startswith(where) else f"{where}: {exc}") from None
    check_columns(list(ds.column_names), dataset, where)
    check_features(dict(ds.features), dataset, where)
    labels, names = encode_labels(ds, dataset.target, classes, where)
    grouped = split == "train" and dataset.protocol.group_column is not None
    all_groups = load_groups(ds, dataset, where) if grouped else None
    rows = np.arange(len(ds))
    limit = max_rows or dataset.max_rows
    note = ""
    if limit is not None and len(ds) > limit:
        rows = stratified_subsample(labels, limit, seed, all_groups)
        note = f" in a subsample of max_rows={limit}"
    if split == "train" or classes is None:  # a test split may hold fewer training classes
        folds = dataset.protocol.folds if split == "train" else None
        check_classes(labels[rows], names, folds, where, note)
    table = _as_arrow(ds, dataset, rows)
    parts, unreadable = _modalities(
        table, dataset, dict(ds.features), media_root(spec, Path(root)), rows, where, progress
    )
    if split == "train" and "tabular" in parts:
        check_tabular(parts["tabular"], where + note)
    meta = _provenance(spec, split, len(ds), len(rows))
    if inferred is not None:
        meta["inferred_modalities"] = inferred
    if note:
        meta["subsample"] = {"max_rows": limit, "seed": seed}
    if unreadable:
        meta["unreadable"] = unreadable
    groups = None
    if all_groups is not None:
        groups = check_group_count(all_groups[rows], dataset, where + note)
        meta["groups"] = {"column": dataset.protocol.group_column, "n": len(set(groups))}
    return MultiModalTable(
        name=dataset.name,
        labels=labels[rows],
        classes=names,
        meta=meta,
        groups=groups,
        **modality_fields(parts),
    )


def load_groups(ds: Any, dataset: DataSpec, where: str) -> np.ndarray:
    """The group id of every row of the source (as text), read before any subsample is drawn
    (a subsample keeps every group's share, :func:`stratified_subsample`); a missing id is an error
    that names the column and the rows."""
    column = dataset.protocol.group_column
    assert column is not None
    raw = ds.select_columns([column]).with_format("arrow")[:].column(0).to_pylist()
    missing = np.array([_is_missing(v) for v in raw], dtype=bool)
    if missing.any():
        raise DataError(
            f"{where}: group column {column!r} is missing in {int(missing.sum())} row(s) "
            f"(rows {first_rows(missing, np.arange(len(raw)))}); every row needs its group"
        )
    return np.array([str(v) for v in raw], dtype=object)


def check_group_count(groups: np.ndarray, dataset: DataSpec, where: str) -> np.ndarray:
    """``groups``, or an error when they are fewer than the folds (each fold needs one)."""
    n_groups, folds = len(set(groups)), dataset.protocol.folds
    if n_groups < folds:
        raise DataError(
            f"{where}: group column {dataset.protocol.group_column!r} has {n_groups} group(s), "
            f"fewer than protocol.folds={folds}; grouped folds need at least one group per fold"
        )
    return groups


def _source(dataset: DataSpec, split: str) -> SourceSpec:
    if split == "train":
        return dataset.source
    if split == "test":
        if dataset.test_source is None:
            raise DataError(f"dataset {dataset.name!r} has no 'test_source' to load a test split")
        return dataset.test_source
    raise DataError(f"dataset {dataset.name!r}: split must be 'train' or 'test', got {split!r}")


def encode_labels(
    ds: Any, target: str, classes: list[str] | None, where: str
) -> tuple[np.ndarray, list[str]]:
    """Integer codes and class names: ClassLabel order, else names sorted as strings.

    Classes of a ClassLabel that have no row are dropped, so every class can be learned.
    """
    import datasets

    feature = ds.features[target]
    raw = ds.select_columns([target]).with_format("arrow")[:].column(0).to_pylist()
    if isinstance(feature, datasets.ClassLabel):
        raw = [feature.names[v] if v is not None and v >= 0 else None for v in raw]
    missing = np.array([_is_missing(v) for v in raw], dtype=bool)
    if missing.any():
        raise DataError(
            f"{where}: target {target!r} is missing in {int(missing.sum())} row(s) "
            f"(rows {first_rows(missing, np.arange(len(raw)))}); drop or label them"
        )
    values = [str(v) for v in raw]
    if classes is None:
        seen = set(values)
        if isinstance(feature, datasets.ClassLabel):
            classes = [n for n in feature.names if n in seen]
        else:
            classes = sorted(seen)
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted(set(values) - set(index))
    if unknown:
        raise DataError(
            f"{where}: target {target!r} has labels not among the training classes "
            f"{list(classes)}: {unknown[:10]}"
        )
    return np.array([index[v] for v in values], dtype=np.int64), list(classes)


def _as_arrow(ds: Any, dataset: DataSpec, rows: np.ndarray) -> pa.Table:
    """The needed columns of the chosen rows as one Arrow table (undecoded, no Python objects)."""
    subset = ds.select_columns(list(dict.fromkeys(dataset.modalities.columns())))
    if len(rows) != len(ds):
        subset = subset.select(rows)
    return subset.with_format("arrow")[:]


def _modalities(
    table: pa.Table,
    dataset: DataSpec,
    features: dict[str, Any],
    root: Path,
    rows: np.ndarray,
    where: str,
    progress: bool,
) -> tuple[dict[str, Any], dict[str, int]]:
    """Per-modality values for :class:`MultiModalTable`, and counts of unreadable media."""
    mods = dataset.modalities
    parts: dict[str, Any] = {}
    unreadable: dict[str, int] = {}
    for modality in ("image", "audio", "video"):
        for col in getattr(mods, modality):
            refs = media_refs(table.column(col).to_pylist(), root)
            refs, bad = check_media(refs, modality, rows, dataset.on_unreadable, where, progress)
            parts[modality] = refs
            if bad:
                unreadable[modality] = bad
    if mods.text:
        parts["text"] = join_text([table.column(c).to_pylist() for c in mods.text])
    if mods.tabular:
        parts["tabular"] = tabular_frame(table, mods.tabular, features)
    for modality, columns in mods.by_modality().items():
        if modality_kind(modality) == "sensor":
            cells = [table.column(c).to_pylist() for c in columns]
            parts[modality], bad = sensor_rows(cells, columns, rows, dataset.on_unreadable, where)
            if bad:
                unreadable[modality] = bad
    return parts, unreadable


def media_refs(values: list[Any], root: Path) -> list[MediaRef | None]:
    """Paths or ``{bytes, path}`` records as MediaRefs; relative paths resolve against ``root``.

    A list of them is a video given as frame images (:func:`mmbench.data.video.frame_list_ref`).
    """
    return [_media_ref(value, root) for value in values]


def _media_ref(value: Any, root: Path) -> MediaRef | None:
    if isinstance(value, list | tuple):
        frames = [f for f in (_media_ref(v, root) for v in value) if f is not None]
        return frame_list_ref(frames) if frames else None
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
    elif isinstance(value, bytes | bytearray):
        data, path = bytes(value), None
    elif isinstance(value, str):
        data, path = None, value
    else:
        return None
    if data is None:
        if not path or not str(path).strip():
            return None
        if "://" not in path:  # a URL is left for the decoder to reject
            local = Path(path).expanduser()
            path = str(local if local.is_absolute() else root / local)
    return {"bytes": data, "path": path}


def join_text(columns: list[list[Any]]) -> list[str | None]:
    """Row-wise join of text columns with :data:`TEXT_SEPARATOR`, skipping missing parts."""
    joined: list[str | None] = []
    for parts in zip(*columns, strict=True):
        present = [str(p).strip() for p in parts if not _is_missing(p) and str(p).strip()]
        joined.append(TEXT_SEPARATOR.join(present) if present else None)
    return joined


def tabular_frame(table: pa.Table, columns: list[str], features: dict[str, Any]) -> pd.DataFrame:
    """Numeric columns keep their dtype (missing = NaN); others become object str (missing = None).

    ClassLabel columns are categorical: their codes are replaced by the class names.
    """
    frame = table.select(columns).to_pandas()
    for col in columns:
        series = frame[col]
        names = getattr(features[col], "names", None)
        if names is None and (
            pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
        ):
            continue
        values = [
            None if _is_missing(v) else (names[int(v)] if names is not None else str(v))
            for v in series.tolist()
        ]
        frame[col] = pd.Series(values, dtype=object, index=frame.index)
    return frame.reset_index(drop=True)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _provenance(spec: SourceSpec, split: str, n_source: int, n_rows: int) -> dict[str, Any]:
    """What a result must record to know which rows it was computed on."""
    meta: dict[str, Any] = {
        "source": spec.describe(),
        "revision": spec.revision,
        "split": split,
        "n_rows": n_rows,
        "n_rows_source": n_source,
    }
    if spec.kind == "synthetic":
        from mmbench.data.synthetic import recipe

        meta["recipe"] = recipe(**spec.options)
    return meta


def table_from_frame(
    frame: pd.DataFrame, modalities: Modalities, classes: list[str], root: Path | None = None
) -> MultiModalTable:
    """Unlabelled rows (e.g. a serving request) as a table, columns mapped like the suite's.

    Media cells may be paths (relative to ``root``), raw bytes or ``{bytes, path}`` records.
    Media are not probed here: an unreadable one fails at prediction with its row and path.
    """
    if modalities.auto:
        raise DataError(
            "the dataset says 'modalities: auto': its columns are typed when its training rows "
            "are read; pass the typed modalities (mmbench.data.infer.with_inferred, with the "
            "mapping its result file records under dataset.inferred_modalities)"
        )
    root = root or Path.cwd()
    missing = [c for c in modalities.columns() if c not in frame.columns]
    if missing:
        from mmbench.errors import did_you_mean

        hint = did_you_mean(missing[0], [str(c) for c in frame.columns])
        raise DataError(f"input rows lack columns {missing}{hint}")
    parts: dict[str, Any] = {}
    for m in ("image", "audio", "video"):
        if getattr(modalities, m):
            parts[m] = media_refs(frame[getattr(modalities, m)[0]].tolist(), root)
    if modalities.text:
        parts["text"] = join_text([frame[c].tolist() for c in modalities.text])
    if modalities.tabular:
        parts["tabular"] = frame[modalities.tabular].reset_index(drop=True)
    rows = np.arange(len(frame))
    for m, cols in modalities.by_modality().items():
        if modality_kind(m) == "sensor":
            cells = [frame[c].tolist() for c in cols]
            parts[m] = sensor_rows(cells, cols, rows, "error", "input rows")[0]
    labels = np.zeros(len(frame), dtype=np.int64)
    return MultiModalTable(
        name="rows", labels=labels, classes=list(classes), **modality_fields(parts)
    )


def frame_from_table(table: MultiModalTable, modalities: Modalities, rows: int) -> pd.DataFrame:
    """The first ``rows`` rows back in the suite's column layout (an MLflow input example)."""
    out: dict[str, Any] = {}
    n = min(rows, len(table))
    for m in ("image", "audio", "video"):
        if getattr(modalities, m) and table[m] is not None:
            out[getattr(modalities, m)[0]] = [_cell(r) for r in table[m][:n]]
    if modalities.text and table.text is not None:
        out[modalities.text[0]] = table.text[:n]
        for c in modalities.text[1:]:
            out[c] = [None] * n
    for m, cols in modalities.by_modality().items():
        if m in table.sensors:
            out.update(_sensor_cells(table.sensors[m][:n], cols))
    frame = pd.DataFrame(out)
    if modalities.tabular and table.tabular is not None:
        frame = pd.concat([frame, table.tabular.iloc[:n].reset_index(drop=True)], axis=1)
    return frame


def _cell(ref: MediaRef | None) -> Any:
    """A media value as a serving request carries it: bytes, a path, or a list of frames."""
    if ref is None:
        return None
    if ref.get("frames") is not None:
        return [_cell(f) for f in ref["frames"]]
    return ref["bytes"] if ref.get("bytes") is not None else ref["path"]


def _sensor_cells(series: list[Any], columns: list[str]) -> dict[str, list[Any]]:
    """Sensor rows back as cells of ``columns``: one channel per column when the counts agree,
    else every channel (a list of lists) in the first column."""
    present = [s for s in series if s is not None]
    per_column = bool(present) and present[0].shape[0] == len(columns)
    cells: dict[str, list[Any]] = {c: [] for c in columns}
    for s in series:
        for j, c in enumerate(columns):
            if s is None or (not per_column and j > 0):
                cells[c].append(None)
            else:
                cells[c].append(s[j].tolist() if per_column else s.tolist())
    return cells

"""``modalities: auto``: the columns a dataset does not name, typed by inspecting the training rows.

A suite may say ``modalities: auto`` (every column but the target, the group column and
``ignore``), or name some columns and add ``auto: true`` to type the rest. Each remaining
column gets one type, decided in this order on up to :data:`SAMPLE_ROWS` evenly spaced rows:

1. a ``datasets.Image`` / ``Audio`` / ``Video`` feature -> ``image`` / ``audio`` / ``video``;
   a list or record column (a series, a nested value) is left out, with a note: name it (e.g.
   under ``sensor``) to use it;
2. numbers and booleans (skrub's ``numeric() | boolean()`` selectors) -> ``numeric`` (tabular);
3. strings whose every value ends with an image (audio) file extension -> ``image``
   (``audio``) path, when every sampled path resolves to a file (relative paths against the
   source's media folder, as loading does); when some do not, the load fails naming the column;
4. free text, AutoGluon's rule (most rows distinct, several words each): strings of
   :data:`TEXT_TOKENS` or more whitespace-separated words on average, with distinct values in at
   least :data:`TEXT_DISTINCT` of the rows -> ``text``;
5. strings with fewer distinct values than skrub's ``TableVectorizer`` ``cardinality_threshold``
   (40: its rule for one-hot encoding) -> ``categorical`` (tabular);
6. other strings (many distinct short values: names, dates, keywords) -> ``text``, and a note
   records that decision: name the column under ``tabular`` to encode it as categories, or
   under ``ignore`` to leave it out.

A column with no value in the sampled rows is left out with a note. Image, audio and video
take one column each: two columns typed the same is an error that names them. The mapping and
the notes are printed by ``mmbench validate --data`` and recorded in the result file
(``dataset.inferred_modalities``); an identifier column (a row number, a URL) is typed like any
other, so list it under ``ignore``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mmbench.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from mmbench.data.spec import DataSpec

SAMPLE_ROWS = 10_000
TEXT_TOKENS = 3
TEXT_DISTINCT = 0.5
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".ogg", ".m4a", ".aac")
COLUMN_TYPES = ("text", "categorical", "numeric", "image", "audio", "video")
_MODALITY = {"categorical": "tabular", "numeric": "tabular"}


def infer_modalities(
    ds: Any, dataset: DataSpec, root: Path, where: str
) -> tuple[DataSpec, dict[str, Any]]:
    """``dataset`` with every column typed (``auto`` off), and the record of what was inferred:
    ``{"columns": {column: type}, "notes": [...]}``, types from :data:`COLUMN_TYPES`."""
    mods = dataset.modalities
    named = set(mods.columns()) | set(mods.ignore) | {dataset.target}
    if dataset.protocol.group_column is not None:
        named.add(dataset.protocol.group_column)
    candidates = [c for c in ds.column_names if c not in named]
    columns, notes = type_columns(ds, candidates, root)
    record = {"columns": columns, "notes": notes}
    for media in ("image", "audio", "video"):
        found = getattr(mods, media) + [c for c, k in columns.items() if k == media]
        if len(found) > 1:
            raise DataError(
                f"{where}: modalities: auto found {len(found)} {media} columns {found}; a "
                f"dataset takes one: name it under {media} and the others under "
                "modalities.ignore"
            )
    typed = with_inferred(dataset, record)
    if not typed.modalities.present():
        raise DataError(f"{where}: modalities: auto found no column to use; notes: {notes}")
    return typed, record


def with_inferred(dataset: DataSpec, record: dict[str, Any]) -> DataSpec:
    """``dataset`` with the columns of an inference ``record`` (a table's
    ``meta["inferred_modalities"]``) added to its modalities and ``auto`` off: what loads its
    test split with the mapping of its training split. A dataset without ``auto`` is returned
    as it is."""
    from mmbench.data.spec import Modalities

    mods = dataset.modalities
    if not mods.auto:
        return dataset
    fields = mods.model_dump(exclude={"auto", "ignore"})
    for column, kind in record["columns"].items():
        fields[_MODALITY.get(kind, kind)].append(column)
    return dataset.model_copy(update={"modalities": Modalities(**fields)})


def type_columns(ds: Any, columns: list[str], root: Path) -> tuple[dict[str, str], list[str]]:
    """Each column's type (:data:`COLUMN_TYPES`, in column order) and the notes on decisions
    and on columns left out, for a ``datasets.Dataset``'s ``columns``."""
    import datasets

    typed: dict[str, str] = {}
    notes: list[str] = []
    scalars = []
    for column in columns:
        feature = ds.features[column]
        media = {datasets.Image: "image", datasets.Audio: "audio", datasets.Video: "video"}
        kind = next((k for t, k in media.items() if isinstance(feature, t)), None)
        if kind is not None:
            typed[column] = kind
        elif type(feature).__name__ == "Value":
            scalars.append(column)
        else:
            notes.append(f"{column!r} left out: holds {type(feature).__name__} values, not scalars")
    if scalars:
        found, more = _type_scalars(_sample(ds, scalars), root)
        typed.update(found)
        notes += more
    return {c: typed[c] for c in columns if c in typed}, notes


def _sample(ds: Any, columns: list[str]) -> pd.DataFrame:
    """Up to :data:`SAMPLE_ROWS` evenly spaced rows of ``columns`` (the same on every call)."""
    subset = ds.select_columns(columns)
    if len(subset) > SAMPLE_ROWS:
        subset = subset.select(np.linspace(0, len(subset) - 1, SAMPLE_ROWS).astype(int))
    return subset.with_format("arrow")[:].to_pandas()


def _type_scalars(frame: pd.DataFrame, root: Path) -> tuple[dict[str, str], list[str]]:
    import inspect

    import skrub
    import skrub.selectors as s

    threshold = inspect.signature(skrub.TableVectorizer).parameters["cardinality_threshold"]
    few = set((s.cardinality_below(threshold.default)).expand(frame))
    numeric = set((s.numeric() | s.boolean()).expand(frame))
    typed: dict[str, str] = {}
    notes: list[str] = []
    for column in frame.columns:
        values = frame[column].dropna()
        if values.empty:
            notes.append(f"{column!r} left out: no value in the {len(frame)} rows inspected")
            continue
        if column in numeric:
            typed[column] = "numeric"
            continue
        texts = values.astype(str)
        typed[column] = _media_kind(column, texts, root) or _string_kind(
            column, texts, column in few, threshold.default, notes
        )
    return typed, notes


def _string_kind(column: str, texts: pd.Series, few: bool, threshold: int, notes: list[str]) -> str:
    """Rules 4 to 6 of the module docstring; rule 6 adds its note to ``notes``."""
    words = float(texts.str.split().str.len().mean())
    distinct = int(texts.nunique())
    if words >= TEXT_TOKENS and distinct >= TEXT_DISTINCT * len(texts):
        return "text"
    if few:
        return "categorical"
    notes.append(
        f"{column!r} typed text: {distinct} distinct values in {len(texts)} rows, "
        f"{words:.1f} words on average (not free text, not under {threshold} categories); name "
        "it under tabular to encode it as categories, or under ignore to leave it out"
    )
    return "text"


def _media_kind(column: str, texts: pd.Series, root: Path) -> str | None:
    """``image``/``audio`` when every value names such a file, after checking they exist."""
    lower = texts.str.lower()
    for kind, suffixes in (("image", IMAGE_SUFFIXES), ("audio", AUDIO_SUFFIXES)):
        if bool(lower.str.endswith(suffixes).all()):
            missing = [v for v in texts if not _resolve(v, root).is_file()]
            if missing:
                raise DataError(
                    f"column {column!r} holds {kind} file names, but {len(missing)} of "
                    f"{len(texts)} inspected do not resolve to a file under {root} (e.g. "
                    f"{missing[0]!r}); fix the paths, name the column under modalities.ignore, "
                    f"or type it yourself"
                )
            return kind
    return None


def _resolve(value: str, root: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path


def describe_inference(record: dict[str, Any]) -> list[str]:
    """Lines for a terminal: each type with its columns, then the notes (none for ``{}``)."""
    if not record:
        return []
    by_type: dict[str, list[str]] = {}
    for column, kind in record["columns"].items():
        by_type.setdefault(kind, []).append(column)
    lines = [f"{kind}: {', '.join(map(repr, cols))}" for kind, cols in by_type.items()]
    return lines + [f"note: {n}" for n in record["notes"]]

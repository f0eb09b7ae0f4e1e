"""Checks a loaded dataset against its suite entry before anything is converted or trained.

Each check raises a :class:`~mmbench.errors.DataError` that starts with ``where`` (the dataset,
split and source) and says what is wrong in terms of the suite: the column, the class, the row
and the file. Catching these problems here is what keeps a typo from becoming a stack trace deep
inside an encoder an hour into a run.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np

from mmbench.data.media import describe_ref, load_image
from mmbench.data.table import MediaRef
from mmbench.data.video import describe_video, is_frame_list, probe_video
from mmbench.errors import DataError, did_you_mean

if TYPE_CHECKING:
    from mmbench.data.spec import DataSpec

MAX_LISTED = 5
_NUMERIC = ("bool", "int", "uint", "float", "double", "half")
_STRINGS = ("string", "large_string")


def check_columns(available: list[str], dataset: DataSpec, where: str) -> None:
    """Every column the suite names exists; the message suggests the closest real column."""
    roles = [("target", dataset.target)] + [
        (m, c) for m, cols in dataset.modalities.by_modality().items() for c in cols
    ]
    if dataset.protocol.group_column is not None:
        roles.append(("protocol.group_column", dataset.protocol.group_column))
    roles += [("modalities.ignore", c) for c in dataset.modalities.ignore]
    missing = [(role, col) for role, col in roles if col not in available]
    if not missing:
        return
    listed = "; ".join(
        f"{role} column {col!r}{did_you_mean(col, available)}" for role, col in missing
    )
    raise DataError(f"{where}: not found: {listed}. Available columns: {available}")


def check_features(features: dict[str, Any], dataset: DataSpec, where: str) -> None:
    """Column types fit their role: media are images/audio/video/paths (a video also a list of
    frame images), tabular cells are scalars."""
    import datasets

    media = {"image": datasets.Image, "audio": datasets.Audio, "video": datasets.Video}
    for modality, feature_type in media.items():
        for col in getattr(dataset.modalities, modality):
            feature = features[col]
            if not (
                isinstance(feature, feature_type)
                or _is_string(feature)
                or _is_ref(feature)
                or (modality == "video" and is_frame_list(feature))
            ):
                frames = ", lists of frame images" if modality == "video" else ""
                raise DataError(
                    f"{where}: {modality} column {col!r} has type {feature}; expected "
                    f"datasets.{feature_type.__name__}, file paths (strings){frames} or "
                    "{bytes, path} records"
                )
    for col in dataset.modalities.tabular:
        if not _is_scalar(features[col]):
            raise DataError(
                f"{where}: tabular column {col!r} has type {features[col]}; tabular columns must "
                "hold numbers, booleans or strings"
            )
    for name, columns in dataset.modalities.sensor.items():
        for col in columns:
            if not _is_series(features[col]):
                raise DataError(
                    f"{where}: sensor {name!r} column {col!r} has type {features[col]}; sensor "
                    "columns hold a series per row: a list of numbers (one channel) or a list of "
                    "equal-length lists (several)"
                )
    if not _is_scalar(features[dataset.target]):
        raise DataError(
            f"{where}: target column {dataset.target!r} has type {features[dataset.target]}; "
            "expected class labels (strings, integers or a ClassLabel)"
        )


def check_tabular(frame: Any, where: str) -> None:
    """A tabular column with no value in any row is a mistake in the suite (or the data)."""
    empty = [str(c) for c in frame.columns if frame[c].isna().all()]
    if empty:
        raise DataError(
            f"{where}: tabular column(s) {empty} have no value in any row; fix the data or drop "
            "them from modalities.tabular"
        )


def _is_string(feature: Any) -> bool:
    return getattr(feature, "dtype", None) in _STRINGS and type(feature).__name__ == "Value"


def _is_ref(feature: Any) -> bool:
    return isinstance(feature, dict) and {"bytes", "path"} <= set(feature)


def _is_series(feature: Any, depth: int = 0) -> bool:
    """A list (``List``, ``LargeList``, ``Sequence``) of numbers, or of lists of numbers."""
    inner = getattr(feature, "feature", None)
    if type(feature).__name__ not in ("List", "LargeList", "Sequence") or inner is None:
        return False
    if type(inner).__name__ == "Value":
        return str(inner.dtype).startswith(_NUMERIC)
    return depth == 0 and _is_series(inner, depth + 1)


def _is_scalar(feature: Any) -> bool:
    """A ``Value`` of a number, boolean or string, or a ``ClassLabel``."""
    kind = type(feature).__name__
    if kind == "ClassLabel":
        return True
    dtype = str(getattr(feature, "dtype", ""))
    return kind == "Value" and (dtype.startswith(_NUMERIC) or dtype in _STRINGS)


def check_classes(
    labels: np.ndarray, classes: list[str], folds: int | None, where: str, note: str = ""
) -> None:
    """At least two classes, and (for training data) each class populous enough for every fold.

    ``folds`` is None for a test split, which is never cross-validated. ``note`` explains the
    counts when they come from a subsample (``max_rows``).
    """
    counts = np.bincount(labels, minlength=len(classes))
    present = [i for i, n in enumerate(counts) if n > 0]
    if len(present) < 2:
        only = f"only class {classes[present[0]]!r}" if present else "no rows"
        raise DataError(
            f"{where}: the target has {only}{note}; classification needs at least 2 classes"
        )
    if folds is None:
        return
    smallest = int(np.argmin(counts))
    if counts[smallest] < folds:
        raise DataError(
            f"{where}: class {classes[smallest]!r} has {counts[smallest]} row(s){note}, fewer than "
            f"protocol.folds={folds}; lower 'folds', raise 'max_rows' or drop the class"
        )


def check_media(
    values: list[MediaRef | None],
    modality: str,
    rows: np.ndarray,
    on_unreadable: str,
    where: str,
    progress: bool = False,
) -> tuple[list[MediaRef | None], int]:
    """Open every value; unreadable ones raise, or become None when ``on_unreadable="missing"``.

    ``rows`` maps positions to the source's row indices so messages point into the user's data.
    Returns the (possibly blanked) values and how many were unreadable.
    """
    probe = {"image": _image_probe, "audio": _audio_probe, "video": probe_video}[modality]
    describe = describe_video if modality == "video" else describe_ref
    bad: list[tuple[int, str]] = []
    for i in _track(range(len(values)), f"checking {modality}", progress):
        ref = values[i]
        if ref is None:
            continue
        reason = probe(ref)
        if reason is not None:
            bad.append((i, reason))
    if bad and on_unreadable == "error":
        shown = "; ".join(
            f"row {rows[i]}: {describe(values[i])} ({reason})" for i, reason in bad[:MAX_LISTED]
        )
        more = f"; and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
        raise DataError(
            f"{where}: {len(bad)} unreadable {modality} value(s): {shown}{more}. "
            "Fix the files or set on_unreadable: missing to treat them as missing"
        )
    if bad:
        values = list(values)
        for i, _ in bad:
            values[i] = None
    return values, len(bad)


def _image_probe(ref: MediaRef) -> str | None:
    """None when the image decodes, else why not (the full decode an encoder will do)."""
    try:
        load_image(ref)
    except DataError as exc:
        return str(exc).removeprefix(f"unreadable image {describe_ref(ref)}: ")
    return None


def _audio_probe(ref: MediaRef) -> str | None:
    """None when soundfile can read the header, else why not; cheaper than decoding every clip."""
    import soundfile as sf

    try:
        source = io.BytesIO(ref["bytes"]) if ref.get("bytes") is not None else ref["path"]
        info = sf.info(source)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()
    return None if info.frames > 0 else "no audio frames"


def _track(items: range, description: str, enabled: bool) -> Any:
    import sys

    if not enabled or not sys.stderr.isatty():  # transient bars leave blank lines in logs
        return items
    from rich.console import Console
    from rich.progress import track

    # stderr, like the rest of mmbench's progress, so stdout stays clean for tables
    return track(items, description=description, transient=True, console=Console(stderr=True))


def first_rows(mask: np.ndarray, rows: np.ndarray) -> str:
    """Up to :data:`MAX_LISTED` source row indices where ``mask`` holds, for messages."""
    hits = rows[np.flatnonzero(mask)]
    listed = ", ".join(str(r) for r in hits[:MAX_LISTED])
    return listed + (", ..." if len(hits) > MAX_LISTED else "")

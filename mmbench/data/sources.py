"""Turning a :class:`~mmbench.data.spec.SourceSpec` into a ``datasets.Dataset``.

Every failure becomes a :class:`~mmbench.errors.DataError` that names the source and, for local
files, the resolved path, so a typo in a suite never surfaces as a deep stack trace. Image and
audio features are cast to ``decode=False``: mmbench decodes media itself
(:mod:`mmbench.data.media`) in batches, and datasets 5.x would otherwise decode audio with
torchcodec, which may lack its native libraries.
"""

from __future__ import annotations

import dataclasses
import glob
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmbench.errors import DataError, did_you_mean
from mmbench.hub import hub_offline_forced, hub_reachable, offline_mode

if TYPE_CHECKING:
    import datasets

    from mmbench.data.spec import Modalities, SourceSpec


def load_source(
    spec: SourceSpec, root: Path, *, modalities: Modalities | None = None
) -> datasets.Dataset:
    """Load the rows ``spec`` points at; relative paths are resolved against ``root``.

    ``modalities`` names the columns that should hold media: such a column stored as a plain
    ``{bytes, path}`` struct (e.g. parquet written by pandas) is cast to an undecoded
    Image/Audio feature too, so later stages see one representation.
    """
    loaders: dict[str, Callable[[SourceSpec, Path], Any]] = {
        "hub": _load_hub,
        "url": _load_url,
        "parquet": _load_files,
        "csv": _load_files,
        "json": _load_files,
        "ts": _load_files,
        "imagefolder": _load_folder,
        "audiofolder": _load_folder,
        "disk": _load_disk,
        "synthetic": _load_synthetic,
    }
    ds = loaders[spec.kind](spec, Path(root))
    return _undecoded_media(ds, modalities)


def datasets_cache_dir() -> Path:
    """Where ``datasets`` keeps the Arrow copy it makes of a local file or folder source:
    ``$MMBENCH_CACHE_DIR/datasets``, else ``$XDG_CACHE_HOME/mmbench/datasets``
    (``~/.cache/mmbench/datasets``). Files the user points mmbench at are mmbench's to cache,
    beside its features and downloads, not in the shared Hugging Face cache; a hub dataset
    stays there, where its download lives."""
    explicit = os.environ.get("MMBENCH_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser() / "datasets"
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "mmbench" / "datasets"


def _load_hub(spec: SourceSpec, root: Path) -> Any:
    """``load_dataset`` at the pinned revision; without the hub, from the local cache only."""
    import datasets

    offline = hub_offline_forced() or not hub_reachable()
    where = f"hub dataset {spec.id!r} revision {spec.revision!r}"
    with offline_mode(offline):
        try:
            return datasets.load_dataset(
                spec.id, spec.config, revision=spec.revision, split=spec.split, **spec.options
            )
        except Exception as exc:
            if offline:
                raise DataError(
                    f"dataset {spec.id!r} revision {spec.revision!r} is not in the local cache "
                    f"and the hub is unreachable ({type(exc).__name__}: {exc})"
                ) from None
            raise DataError(f"could not load {where}: {type(exc).__name__}: {exc}") from None


def _load_url(spec: SourceSpec, root: Path) -> Any:
    """Downloaded (or mirrored) files: one table file, a table inside an archive, or a registry."""
    import datasets

    from mmbench.data.remote import fetch_source, registry_frame

    fetched = fetch_source(spec, root, progress=sys.stderr.isatty())  # bars on a terminal only
    if spec.base_url:
        return datasets.Dataset.from_pandas(
            registry_frame(spec, fetched.files), preserve_index=False
        )
    local = _as_local_files(spec, fetched.tables)
    return _load_files(local, fetched.folder)


def _as_local_files(spec: SourceSpec, tables: list[Path]) -> SourceSpec:
    """The url source as the local file source that reads its fetched table(s)."""
    fmt = spec.format or table_format(tables[0])
    return spec.model_copy(update={"kind": fmt, "path": [str(t) for t in tables]})


TABLE_SUFFIXES = {
    "csv": (".csv", ".tsv"),
    "parquet": (".pq", ".parquet"),
    "json": (".json", ".jsonl"),
    "ts": (".ts",),
}


def table_format(path: Path) -> str:
    name = path.name.lower()
    for fmt, suffixes in TABLE_SUFFIXES.items():
        if name.endswith(suffixes):
            return fmt
    raise DataError(
        f"cannot tell the format of {path.name!r}; give the source 'format: csv|parquet|json|ts'"
    )


def media_root(spec: SourceSpec, root: Path) -> Path:
    """Where relative media paths in a source's rows point: the unpacked archive of a url source
    (fetched already by :func:`load_source`), else the suite's folder."""
    if spec.kind == "url" and spec.url:
        from mmbench.data.remote import source_folder

        return source_folder(spec)
    return root


def resolve_paths(spec: SourceSpec, root: Path) -> list[Path]:
    """Absolute paths of ``spec.path`` (a string, glob or list); DataError names a missing one."""
    raw = [spec.path] if isinstance(spec.path, str) else list(spec.path or [])
    found: list[Path] = []
    for item in raw:
        path = Path(item).expanduser()
        path = path if path.is_absolute() else root / path
        if glob.has_magic(str(path)):
            matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
            if not matches:
                raise DataError(f"{spec.kind} source: no file matches {str(path)!r}")
            found.extend(matches)
        elif path.exists():
            found.append(path)
        else:
            hint = ""
            if path.parent.is_dir():
                hint = did_you_mean(path.name, [p.name for p in path.parent.iterdir()])
            raise DataError(f"{spec.kind} source: {str(path)!r} does not exist{hint}")
    return found


def _load_files(spec: SourceSpec, root: Path) -> Any:
    import datasets

    files = [str(p) for p in resolve_paths(spec, root)]
    if spec.kind == "ts":
        from mmbench.data.series import load_ts_files

        return load_ts_files(files)
    if spec.kind == "parquet":
        _check_parquet_rows(files)
    try:
        return datasets.load_dataset(
            spec.kind,
            data_files=files,
            split="train",
            **{"cache_dir": str(datasets_cache_dir()), **spec.options},
        )
    except Exception as exc:
        cause = root_cause(exc)
        if isinstance(cause, UnicodeDecodeError):
            raise DataError(
                f"{spec.kind} file(s) {files} are not {cause.encoding.upper()} text (byte "
                f"{cause.object[cause.start]:#04x}); give the source its encoding, e.g. "
                "`options: {encoding: latin-1}`"
            ) from None
        raise DataError(
            f"could not read {spec.kind} files {files}: {type(cause).__name__}: {cause}"
        ) from None


def root_cause(exc: BaseException) -> BaseException:
    """The innermost exception ``exc`` was raised from (``datasets`` wraps the useful one)."""
    seen = {id(exc)}
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        if isinstance(exc, UnicodeDecodeError):
            break  # what pyarrow raised while decoding is less clear than this
        exc = inner
    return exc


def _check_parquet_rows(files: list[str]) -> None:
    """An empty parquet file is an error that names it (``datasets`` fails obscurely)."""
    import pyarrow.parquet as pq

    for f in files:
        try:
            rows = pq.ParquetFile(f).metadata.num_rows
        except Exception as exc:
            raise DataError(f"parquet file {f!r} cannot be read: {exc}") from None
        if rows == 0:
            raise DataError(f"parquet file {f!r} has no rows")


def _load_folder(spec: SourceSpec, root: Path) -> Any:
    """imagefolder/audiofolder: class subfolders become a ClassLabel ``label`` column."""
    import datasets

    paths = resolve_paths(spec, root)
    if len(paths) != 1 or not paths[0].is_dir():
        raise DataError(f"{spec.kind} source: 'path' must be one directory, got {spec.path!r}")
    try:
        return datasets.load_dataset(
            spec.kind,
            data_dir=str(paths[0]),
            split=spec.split or "train",
            **{"cache_dir": str(datasets_cache_dir()), **spec.options},
        )
    except Exception as exc:
        raise DataError(
            f"could not read {spec.kind} {str(paths[0])!r} split {spec.split!r}: "
            f"{type(exc).__name__}: {exc}"
        ) from None


def _load_disk(spec: SourceSpec, root: Path) -> Any:
    """A ``save_to_disk`` directory holding a Dataset, or a DatasetDict from which we take ``split``."""
    import datasets

    paths = resolve_paths(spec, root)
    if len(paths) != 1:
        raise DataError(f"disk source: 'path' must name one directory, got {spec.path!r}")
    try:
        loaded = datasets.load_from_disk(str(paths[0]))
    except Exception as exc:
        raise DataError(
            f"could not read saved dataset {str(paths[0])!r}: {type(exc).__name__}: {exc}"
        ) from None
    if isinstance(loaded, datasets.DatasetDict):
        if spec.split not in loaded:
            splits = list(loaded)
            raise DataError(
                f"saved dataset {str(paths[0])!r} has no split {spec.split!r}"
                f"{did_you_mean(spec.split, splits)}; splits: {splits}"
            )
        return loaded[spec.split]
    return loaded


def _load_synthetic(spec: SourceSpec, root: Path) -> Any:
    from mmbench.data import synthetic

    accepted = list(inspect.signature(synthetic.recipe).parameters)
    for key in spec.options:
        if key not in accepted:
            raise DataError(
                f"synthetic source: unknown option {key!r}{did_you_mean(key, accepted)}; "
                f"valid options: {', '.join(accepted)}"
            )
    return synthetic.generate(**spec.options)


def _undecoded_media(ds: Any, modalities: Modalities | None) -> Any:
    """Cast Image/Audio features (and listed media columns stored as structs) to ``decode=False``."""
    import datasets

    wanted = {}
    if modalities is not None:
        wanted = {c: datasets.Image for c in modalities.image}
        wanted.update({c: datasets.Audio for c in modalities.audio})
        wanted.update({c: datasets.Video for c in modalities.video})
    for name, feature in ds.features.items():
        if isinstance(feature, datasets.Image | datasets.Audio | datasets.Video):
            if feature.decode:
                ds = ds.cast_column(name, dataclasses.replace(feature, decode=False))
        elif name in wanted and _is_media_struct(feature):
            try:
                ds = ds.cast_column(name, wanted[name](decode=False))
            except Exception:  # leave it to validation, which names the column and the type
                continue
    return ds


def _is_media_struct(feature: Any) -> bool:
    return isinstance(feature, dict) and {"bytes", "path"} <= set(feature)

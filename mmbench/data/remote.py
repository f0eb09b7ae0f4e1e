"""A ``url`` source's files: fetched into the data cache, verified, unpacked, listed.

:mod:`mmbench.data.download` knows URLs and hashes; this module knows what a suite's
:class:`~mmbench.data.spec.SourceSpec` asks for — one file (maybe an archive whose members hold
the table), or a base URL and a registry file of many — and reports what a fetch did, for
``mmbench fetch`` and for the source loader that reads the files afterwards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mmbench.data import download
from mmbench.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from mmbench.data.spec import SourceSpec


@dataclass
class FetchedSource:
    """What one source's fetch left in the cache."""

    files: list[download.Fetched]
    folder: Path  # the unpacked archive, the registry's folder, or the file's folder
    tables: list[Path] = field(default_factory=list)  # the files holding rows (not a registry)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def downloaded(self) -> int:
        return sum(f.downloaded for f in self.files)


def lock_file(spec: SourceSpec, root: Path) -> download.LockFile:
    """The suite's ``<suite>.lock`` (set by the suite loader), else ``mmbench.lock`` in ``root``."""
    return download.LockFile(spec._lock_path or Path(root) / "mmbench.lock")


def fetch_source(
    spec: SourceSpec, root: Path, *, mirror: str | None = None, progress: bool = False
) -> FetchedSource:
    """Fetch (or find in the cache) every file of a ``url`` source and verify it.

    ``mirror`` defaults to ``$MMBENCH_MIRROR``. Raises DataError naming the URL, the cache path
    and the mirror option.
    """
    mirror = mirror or download.mirror_from_env()
    if spec.base_url:
        registry = download.read_registry(Path(root) / str(spec.registry))
        files = download.fetch_registry(spec.base_url, registry, mirror=mirror, progress=progress)
        return FetchedSource(files, download.cache_path(_base(spec.base_url) + "x").parent)
    assert spec.url and spec.hash
    fetched = download.fetch_pinned(
        spec.url, spec.hash, lock_file(spec, root), mirror=mirror, progress=progress
    )
    if not download.is_archive(fetched.path.name):
        return FetchedSource([fetched], fetched.path.parent, [fetched.path])
    folder = download.unpack(fetched.path)
    if not spec.path:
        raise DataError(f"archive {spec.url}: name the member(s) holding the table in 'path'")
    patterns = [spec.path] if isinstance(spec.path, str) else spec.path
    tables = [t for p in patterns for t in download.archive_members(folder, p, spec.url)]
    return FetchedSource([fetched], folder, tables)


def source_folder(spec: SourceSpec) -> Path:
    """Where relative media paths of a fetched single-file source point: the folder of its
    table, inside the unpacked archive (``path: '*/rows.csv'`` -> ``<archive>.d/<folder>``)."""
    assert spec.url
    path = download.cache_path(spec.url)
    if not download.is_archive(path.name):
        return path.parent
    folder = path.with_name(path.name + ".d")
    pattern = spec.path if isinstance(spec.path, str) else (spec.path or ["*"])[0]
    tables = sorted(p for p in folder.glob(pattern) if p.is_file())
    return tables[0].parent if tables else folder


def registry_frame(spec: SourceSpec, files: list[download.Fetched]) -> pd.DataFrame:
    """One row per registry file: its cached path and the named groups of its file name."""
    import pandas as pd

    assert spec.rows_from_names and spec.base_url
    pattern = re.compile(spec.rows_from_names.pattern)
    base = _base(spec.base_url)
    rows, unmatched = [], []
    for f in files:
        name = f.url[len(base) :]
        match = pattern.fullmatch(Path(name).name) or pattern.fullmatch(name)
        if match is None:
            unmatched.append(name)
            continue
        groups = match.groupdict()
        if all(re.fullmatch(rx, groups[c] or "") for c, rx in spec.rows_from_names.select.items()):
            rows.append({spec.rows_from_names.file_column: str(f.path), **groups})
    if unmatched:
        raise DataError(
            f"{len(unmatched)} file name(s) of registry {spec.registry!r} do not match "
            f"rows_from_names.pattern {pattern.pattern!r}, e.g. {unmatched[:3]}"
        )
    return pd.DataFrame(rows)


def _base(url: str) -> str:
    return url if url.endswith("/") else url + "/"

"""``mmbench fetch``: every source of a suite's datasets downloaded and verified ahead of a run.

One row per source (train, test) with what it took; a failure is that row's error, so one bad
dataset never hides the state of the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mmbench.data.remote import fetch_source
from mmbench.errors import DataError

if TYPE_CHECKING:
    from mmbench.data.spec import DataSpec


@dataclass
class FetchRow:
    """One line of ``mmbench fetch``: a dataset's source (or test source) and what it took."""

    dataset: str
    split: str
    files: int = 0
    size: int = 0
    downloaded: int = 0
    verified: str = ""
    cache: str = ""
    license: str = ""
    error: str | None = None


def fetch_dataset(
    dataset: DataSpec, root: Path, *, mirror: str | None = None, progress: bool = False
) -> list[FetchRow]:
    """Fetch and verify every source of ``dataset`` ahead of a run; a failure is a row's error.

    ``url`` sources are downloaded (or found in the cache) and verified, ``hub`` sources loaded
    into the hub cache, local files checked to exist; the generator needs nothing.
    """
    from mmbench.data.sources import load_source, resolve_paths
    from mmbench.data.spec import FILE_KINDS

    rows = []
    license_ = dataset.card.license if dataset.card else ""
    for split, spec in (("train", dataset.source), ("test", dataset.test_source)):
        if spec is None:
            continue
        row = FetchRow(dataset.name, split, license=license_)
        try:
            if spec.kind == "url":
                fetched = fetch_source(spec, root, mirror=mirror, progress=progress)
                row.files, row.size = len(fetched.files), fetched.size
                row.downloaded = fetched.downloaded
                row.verified = "sha256 (pinned)" if spec.hash == "unpublished" else "yes"
                row.cache = str(fetched.folder)
            elif spec.kind == "hub":
                load_source(spec, root)
                row.verified, row.cache = "hub revision", f"{spec.id}@{spec.revision}"
            elif spec.kind in FILE_KINDS:
                paths = resolve_paths(spec, root)
                row.files, row.verified = len(paths), "local"
                row.size = sum(p.stat().st_size for p in paths if p.is_file())
                row.cache = str(paths[0].parent) if paths else ""
            else:
                row.verified = "generated"
        except DataError as exc:
            row.error = str(exc)
        rows.append(row)
    return rows

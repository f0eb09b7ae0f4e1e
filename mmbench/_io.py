"""File and repository helpers shared by every layer: atomic writes and the git commit.

The lowest layer of mmbench (it imports nothing from the package), so that the feature cache,
result files, ablation reports and baselines all write files the same crash-safe way and stamp
the same commit string.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

TMP_PREFIX = ".tmp-"
"""Prefix of in-flight temporary files; readers skip dot-files, cache cleanup removes these."""


def _file_mode() -> int:
    """The mode ``open()`` would give a new file (0o666 less the umask, usually 0o644)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()  # read once, at import: the umask is process state


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Write through a temporary file in the same directory, then rename it over ``path``.

    A reader (or a crash) never sees a half-written file: it finds the old content or the new.
    The file gets the permissions a plain ``open()`` would give it (not ``mkstemp``'s 0600), so
    result files stay readable by the CI job or web server that publishes them.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            os.fchmod(f.fileno(), FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Indented JSON (NaN kept as ``NaN``, as the result files always had it), written atomically."""
    text = json.dumps(data, indent=2, sort_keys=False, allow_nan=True) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))


CODE_PATHS = ("mmbench", "suites", "pyproject.toml")
"""What produces a result: a change here makes a commit ``-dirty``. Outputs (``results/``,
baselines, benchmark tables) are not code: writing them must not mark the next result dirty."""


def git_commit(paths: Sequence[str] = CODE_PATHS) -> str | None:
    """Commit of the mmbench checkout, with ``-dirty`` when tracked files under ``paths`` (the
    code, by default) have changes. None outside a git checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", *paths],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha

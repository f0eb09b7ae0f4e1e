"""What every command shares: argument types, suite names, the mirror option, quiet libraries."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

MIRROR_HELP = (
    "fetch https://HOST/PATH from MIRROR/HOST/PATH instead: a local folder or an http(s) URL "
    "(default $MMBENCH_MIRROR); the same hashes are verified"
)


def command(sub: Any, name: str, help: str, example: str) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` ends with one real ``example`` (one command per line)."""
    lines = "\n".join(f"  {line}" for line in example.strip().splitlines())
    return sub.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        epilog=f"example:\n{lines}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    """An argparse ``type``: a number of ``kind`` greater than zero, else a usage error."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def suite_name(path: Path) -> str:
    """The suite's name from its YAML file; a bare name (no such file, no suffix) is taken as is."""
    from mmbench.suite import load_suite

    if not path.exists() and not path.suffix and path.parent == Path("."):
        return path.name
    return load_suite(path).name


def suite_file(path: Path) -> Any:
    """The suite when ``path`` is its file (not a bare name), else None."""
    from mmbench.suite import load_suite

    return load_suite(path) if path.is_file() else None


def use_mirror(mirror: str | None) -> None:
    """``--mirror`` as ``$MMBENCH_MIRROR`` (absolute), which the data layer and workers read."""
    from mmbench.data.download import MIRROR_ENV

    if mirror:
        is_url = mirror.startswith(("http://", "https://"))
        os.environ[MIRROR_ENV] = mirror if is_url else str(Path(mirror).expanduser().resolve())


def quiet_library_progress() -> None:
    """mmbench shows its own progress; the datasets library's per-split bars and transformers'
    weight-loading bar only add noise."""
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    try:  # ~0.3 s; hub downloads keep their bars
        from transformers.utils import logging as transformers_logging
    except ImportError:
        return
    transformers_logging.disable_progress_bar()

"""Errors a user can act on.

Every error mmbench raises on bad input is an :class:`MMBenchError`: the CLI prints its message
(never a traceback) and exits non-zero. Messages say *what* is wrong and *where*.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MMBenchError(Exception):
    """Base class for errors caused by user input or environment, shown without a traceback."""


class SuiteError(MMBenchError):
    """A suite file is malformed: unknown key, wrong type, invalid value."""


class DataError(MMBenchError):
    """A dataset cannot be loaded or does not match its suite entry."""


class UnknownNameError(MMBenchError, KeyError):
    """A registry lookup failed; the message suggests the closest valid name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The closest valid choice to ``name``, or None when nothing is reasonably close."""
    options = list(choices)
    lowered = {c.lower(): c for c in options}
    if name.lower() in lowered:
        return lowered[name.lower()]
    match = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    if match:
        return match[0]
    match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.5)
    return lowered[match[0]] if match else None


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A short hint such as ``" (did you mean 'folds'?)"``, or an empty string."""
    guess = closest(name, choices)
    return f" (did you mean {guess!r}?)" if guess else ""

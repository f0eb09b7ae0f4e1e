"""A griffe extension for the API reference: the package's docstrings use Sphinx roles
(``:class:`~mmbench.run.RunOptions```, ``:func:`run_suite```), which Markdown would print as
written; each becomes a code span of the name it shows (the last dotted part after ``~``)."""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):`(~?)([^`]+)`")


def _plain(match: re.Match[str]) -> str:
    short, target = match.group(1), match.group(2).strip()
    if short:
        target = target.rsplit(".", 1)[-1]
    return f"`{target.lstrip('.')}`"


class SphinxRoles(Extension):
    """Rewrites Sphinx cross-reference roles in every docstring before it is parsed."""

    def on_instance(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(_plain, obj.docstring.value)

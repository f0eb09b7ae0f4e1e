"""The data layer: suite dataset entries in, validated :class:`MultiModalTable` out.

``load_table`` is the entry point; :mod:`mmbench.data.sources` reads each source kind,
:mod:`mmbench.data.validate` checks it against the suite, and :mod:`mmbench.data.synthetic`
generates the embedded default dataset with a known amount of signal per modality.
"""

from __future__ import annotations

from mmbench.data.loading import load_table
from mmbench.data.sources import load_source
from mmbench.data.table import MediaRef, MultiModalTable

__all__ = ["MediaRef", "MultiModalTable", "load_source", "load_table"]

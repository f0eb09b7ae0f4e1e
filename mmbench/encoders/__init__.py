"""Encoders: one modality's raw values in, a feature matrix out.

The contract and the registry are in :mod:`mmbench.encoders.base`; every other module of this
package is imported here and registers its encoders with ``@register_encoder``, so a new
encoder is one new file. ``towers`` (torch modules for fine-tuning) is imported only where used.
"""

from __future__ import annotations

from mmbench.registry import import_submodules

import_submodules(__name__, __path__, skip=("towers",))

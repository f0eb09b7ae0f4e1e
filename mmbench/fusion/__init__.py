"""Fusion heads: how per-modality features become class probabilities.

:func:`create_head` is the one public factory. Every fusion is registered in :data:`FUSIONS`
with a :class:`FusionInfo`: torch fusions (``early``, ``late``, ``hybrid``, ``attention``,
``gated``) are ``nn.Module`` builders trained by the shared loop in :mod:`mmbench.fusion.training`;
other heads (``xgboost``, ``torch=False``) build a :class:`Head` themselves. Every module of this
package is imported here, and those defining a fusion register it with ``@FUSIONS.register``, so
a new fusion is one new file; ``modules`` and ``torch_head`` import torch and are imported only
where used, so importing this package does not import torch or xgboost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmbench.config import FusionSpec, TrainSpec
from mmbench.errors import MMBenchError, UnknownNameError, did_you_mean
from mmbench.fusion.base import FUSIONS, EpochCallback, FeatureSet, FusionInfo, Head
from mmbench.fusion.catalog import check_options
from mmbench.registry import import_submodules

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "FUSIONS",
    "EpochCallback",
    "FeatureSet",
    "FusionInfo",
    "Head",
    "create_head",
    "fusion_names",
]

import_submodules(__name__, __path__, skip=("modules", "torch_head"))


def fusion_names() -> list[str]:
    """Every valid ``fusion.name``: torch fusions and other heads."""
    return FUSIONS.names()


def create_head(
    fusion: FusionSpec,
    training: TrainSpec,
    input_dims: dict[str, int],
    n_classes: int,
    *,
    seed: int,
    towers: dict[str, nn.Module] | None = None,
) -> Head:
    """Build the head named by ``fusion`` for features of ``input_dims`` (modality -> width).

    ``towers`` are trainable encoders for fine-tuned modalities: their ``FeatureSet`` columns
    hold raw inputs and ``input_dims[m]`` is ``towers[m].out_dim``. Only torch fusions can train
    towers jointly.
    """
    name = fusion.name
    if name not in FUSIONS:
        known = fusion_names()
        raise UnknownNameError(
            f"unknown fusion {name!r}{did_you_mean(name, known)}; known: {', '.join(known)}"
        )
    entry = FUSIONS.entry(name)
    check_options(entry.obj, fusion.options, f"fusion {name!r}")
    if not entry.meta.torch:
        if towers:
            raise MMBenchError(
                f"fusion {name!r} cannot fine-tune encoders ({', '.join(towers)}); use a torch "
                f"fusion ({', '.join(FUSIONS.names(torch=True))}) or frozen encoders"
            )
        head: Head = entry.obj(n_classes, seed, training=training, **fusion.options)
        return head
    from mmbench.fusion.torch_head import TorchHead

    return TorchHead(fusion, training, input_dims, n_classes, seed=seed, towers=towers)

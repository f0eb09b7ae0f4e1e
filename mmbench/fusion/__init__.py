"""Fusion heads: how per-modality features become class probabilities.

:func:`create_head` is the one public factory. Torch fusions (``early``, ``late``, ``hybrid``,
``attention``, ``gated``) are ``nn.Module`` builders in :data:`FUSIONS`, trained by the shared
loop in :mod:`mmbench.training`; non-torch heads (``xgboost``) live in :data:`HEADS`. Importing
this package does not import torch or xgboost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmbench.config import FusionSpec, TrainSpec
from mmbench.errors import MMBenchError, UnknownNameError, did_you_mean
from mmbench.fusion import catalog, xgb
from mmbench.fusion.base import FUSIONS, HEADS, EpochCallback, FeatureSet, Head
from mmbench.fusion.catalog import check_options

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "FUSIONS",
    "HEADS",
    "EpochCallback",
    "FeatureSet",
    "Head",
    "create_head",
    "fusion_names",
]

del catalog, xgb  # imported for their registrations


def fusion_names() -> list[str]:
    """Every valid ``fusion.name``: torch fusions and other heads."""
    return sorted([*FUSIONS.names(), *HEADS.names()])


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
    if name in HEADS:
        builder = HEADS.get(name)
        check_options(builder, fusion.options, f"fusion {name!r}")
        if towers:
            raise MMBenchError(
                f"fusion {name!r} cannot fine-tune encoders ({', '.join(towers)}); use a torch "
                f"fusion ({', '.join(FUSIONS.names())}) or frozen encoders"
            )
        return builder(n_classes, seed, training=training, **fusion.options)
    if name not in FUSIONS:
        known = fusion_names()
        raise UnknownNameError(
            f"unknown fusion {name!r}{did_you_mean(name, known)}; known: {', '.join(known)}"
        )
    check_options(FUSIONS.get(name), fusion.options, f"fusion {name!r}")
    from mmbench.fusion.torch_head import TorchHead

    return TorchHead(fusion, training, input_dims, n_classes, seed=seed, towers=towers)

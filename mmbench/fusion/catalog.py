"""The built-in fusion names and their builders.

Builders are registered here, each with its :class:`~mmbench.fusion.base.FusionInfo` (default
search ranges of its options), without importing torch: each one imports
:mod:`mmbench.fusion.modules` when it is called, so ``import mmbench.fusion`` (and thereby the
CLI and suite validation) stays cheap. Options of a :class:`~mmbench.config.FusionSpec` are the
keyword arguments of its builder; :func:`check_options` turns typos into readable errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mmbench.errors import MMBenchError, did_you_mean
from mmbench.fusion.base import FUSIONS
from mmbench.registry import option_problems

if TYPE_CHECKING:
    from torch import nn

POSITIONAL = ("input_dims", "n_classes", "dropout", "seed", "training")
"""Builder arguments supplied by :func:`~mmbench.fusion.create_head`, not by the user."""


def check_options(builder: Callable[..., Any], options: dict[str, Any], what: str) -> None:
    """Reject options the builder does not accept, suggesting the closest valid one."""
    problems = option_problems(builder, options, what, POSITIONAL)
    if problems:
        raise MMBenchError(problems[0])


@FUSIONS.register("early", search_space={"hidden": [64, 128, 256]})
def build_early(
    input_dims: dict[str, int], n_classes: int, dropout: float, hidden: int = 128, layers: int = 1
) -> nn.Module:
    """Concatenation (learned placeholders for missing modalities) -> MLP."""
    from mmbench.fusion.modules import EarlyFusion

    return EarlyFusion(input_dims, n_classes, dropout, hidden=hidden, layers=layers)


@FUSIONS.register("late", search_space={"hidden": [32, 64]})
def build_late(
    input_dims: dict[str, int], n_classes: int, dropout: float, hidden: int = 64, layers: int = 1
) -> nn.Module:
    """One MLP per modality; logits averaged with learned weights over present modalities."""
    from mmbench.fusion.modules import LateFusion

    return LateFusion(input_dims, n_classes, dropout, hidden=hidden, layers=layers)


@FUSIONS.register("hybrid", default_search=False)  # needs a choice of early modalities
def build_hybrid(
    input_dims: dict[str, int],
    n_classes: int,
    dropout: float,
    early: list[str] | None = None,
    hidden: int = 128,
    layers: int = 1,
) -> nn.Module:
    """``early`` modalities fused early in one branch, the rest late; combined as late fusion.

    Without ``early`` the first two modalities (in suite order) form the early branch, the
    usual pairing of two dense embeddings (e.g. image and text) next to a tabular late branch.
    With only two modalities that default means a single early branch, i.e. early fusion.
    """
    from mmbench.fusion.modules import HybridFusion

    names = list(input_dims)
    chosen = names[:2] if early is None else list(early)
    for m in chosen:
        if m not in input_dims:
            raise MMBenchError(
                f"hybrid fusion: early modality {m!r} is not an input{did_you_mean(m, names)}; "
                f"inputs: {', '.join(names)}"
            )
    return HybridFusion(input_dims, n_classes, chosen, dropout, hidden=hidden, layers=layers)


@FUSIONS.register(
    "attention", search_space={"heads": [2, 4], "layers": [1, 2], "d_model": [32, 64]}
)
def build_attention(
    input_dims: dict[str, int],
    n_classes: int,
    dropout: float,
    d_model: int = 64,
    heads: int = 4,
    layers: int = 1,
) -> nn.Module:
    """Modality tokens + CLS through a small Transformer encoder, missing tokens masked."""
    from mmbench.fusion.modules import AttentionFusion

    if d_model % heads:
        raise MMBenchError(f"attention fusion: d_model={d_model} is not divisible by heads={heads}")
    return AttentionFusion(
        input_dims, n_classes, dropout, d_model=d_model, heads=heads, layers=layers
    )


@FUSIONS.register("gated", search_space={"d": [32, 64, 128]})
def build_gated(
    input_dims: dict[str, int],
    n_classes: int,
    dropout: float,
    d: int = 64,
    hidden: int = 0,
    layers: int = 1,
) -> nn.Module:
    """Per-modality projections weighted by a per-row softmax gate over present modalities."""
    from mmbench.fusion.modules import GatedFusion

    return GatedFusion(input_dims, n_classes, dropout, d=d, hidden=hidden, layers=layers)

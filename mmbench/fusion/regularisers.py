"""The regularisers and the loss of the torch training loop, one function each.

They are plain functions of tensors, so that each can be tested on its own and the loop in
:mod:`mmbench.fusion.training` reads as a list of steps. ``class_weights`` is numpy-only: the
xgboost head weights its rows with it too. Torch is imported inside the functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch


def class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Weights ∝ 1/frequency, scaled so the average training row weighs 1 (sklearn "balanced").

    Classes absent from ``labels`` get weight 1: they never contribute to the training loss, and
    an arbitrary huge weight would distort the validation loss used for early stopping.
    """
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes).astype(float)
    weights = np.ones(n_classes, dtype=np.float64)
    seen = counts > 0
    weights[seen] = counts.sum() / (seen.sum() * counts[seen])
    return weights


def modality_dropout_mask(
    present: torch.Tensor, p: float, generator: torch.Generator
) -> torch.Tensor:
    """Drop whole modalities per row with probability ``p``, never every present one of a row.

    ``present`` is ``(B, M)`` bool. Rows that would lose all their modalities keep one present
    modality chosen at random, so the model never trains on an all-missing input it did not see.
    """
    import torch

    draws = torch.rand(present.shape, generator=generator).to(present.device)
    keep = present & (draws >= p)
    emptied = present.any(dim=1) & ~keep.any(dim=1)
    if emptied.any():
        scores = torch.rand(present.shape, generator=generator).to(present.device)
        choice = scores.masked_fill(~present, -1.0).argmax(dim=1)
        rescue = torch.zeros_like(keep)
        rescue[torch.arange(len(keep), device=keep.device), choice] = True
        keep = keep | (rescue & emptied[:, None])
    return keep


def drop_modalities(
    x: dict[str, torch.Tensor], present: dict[str, torch.Tensor], p: float, generator: Any
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Modality dropout on a batch: dropped modalities are marked missing and zeroed."""
    import torch

    if p <= 0:
        return x, present
    names = list(present)
    keep = modality_dropout_mask(torch.stack([present[m] for m in names], 1), p, generator)
    present = {m: keep[:, i] for i, m in enumerate(names)}
    x = {m: torch.where(_rows(present[m], xm), xm, torch.zeros_like(xm)) for m, xm in x.items()}
    return x, present


def mixup(
    x: dict[str, torch.Tensor],
    present: dict[str, torch.Tensor],
    targets: torch.Tensor,
    lam: float,
    generator: torch.Generator,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Mix each row with a random partner of the batch: float inputs and soft targets.

    ``lam >= 0.5`` makes the row itself dominant, so it keeps its own presence mask; a modality is
    only mixed where both rows have it. Integer inputs (token ids) cannot be interpolated and stay.
    """
    import torch

    perm = torch.randperm(len(targets), generator=generator).to(targets.device)
    mixed = {}
    for m, xm in x.items():
        if not xm.is_floating_point():
            mixed[m] = xm
            continue
        both = _rows(present[m] & present[m][perm], xm)
        mixed[m] = torch.where(both, lam * xm + (1 - lam) * xm[perm], xm)
    return mixed, lam * targets + (1 - lam) * targets[perm]


def smooth_labels(targets: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Label smoothing: move ``epsilon`` of each target's mass to the uniform distribution."""
    return targets * (1 - epsilon) + epsilon / targets.shape[1]


def soft_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor | None = None,
    gamma: float = 0.0,
) -> torch.Tensor:
    """Class-weighted cross-entropy on soft targets, focal when ``gamma > 0``.

    One formula covers hard labels, label smoothing and mixup targets. Like torch's weighted
    cross-entropy, the sum is divided by the total target weight, so the scale does not depend on
    the class mix of a batch.
    """
    import torch

    logp = torch.log_softmax(logits.float(), dim=1)
    per_class = -targets * logp
    if gamma > 0:
        per_class = per_class * (1 - logp.exp()).pow(gamma)
    if weights is None:
        return per_class.sum() / len(targets)
    return (per_class * weights).sum() / (targets * weights).sum().clamp_min(1e-12)


def _rows(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A ``(B,)`` row mask shaped to broadcast against ``like`` (``(B, ...)``)."""
    return mask.view(-1, *([1] * (like.dim() - 1)))

"""The regularisers and the loss of the torch loop, each on its own tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mmbench.fusion.regularisers import (
    class_weights,
    drop_modalities,
    mixup,
    modality_dropout_mask,
    smooth_labels,
    soft_loss,
)


def test_class_weights_inverse_frequency() -> None:
    y = np.array([0, 0, 0, 1])
    w = class_weights(y, 3)
    assert w[1] / w[0] == pytest.approx(3.0)
    assert w[y].mean() == pytest.approx(1.0)
    assert w[2] == 1.0  # absent class


def test_soft_loss_matches_torch_cross_entropy() -> None:
    logits = torch.randn(10, 3)
    y = torch.randint(0, 3, (10,))
    w = torch.tensor([1.0, 2.0, 0.5])
    onehot = nn.functional.one_hot(y, 3).float()
    expected = nn.functional.cross_entropy(logits, y, weight=w)
    assert soft_loss(logits, onehot, w).item() == pytest.approx(expected.item(), rel=1e-5)
    plain = nn.functional.cross_entropy(logits, y)
    assert soft_loss(logits, onehot).item() == pytest.approx(plain.item(), rel=1e-5)


def test_focal_loss_down_weights_easy_rows_most() -> None:
    """Focal loss shrinks a confident correct row's loss far more than a wrong row's."""
    logits = torch.tensor([[6.0, 0.0], [0.0, 2.0]])  # row 0 easy and right, row 1 wrong
    target = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    ce = [soft_loss(logits[i : i + 1], target[i : i + 1]).item() for i in range(2)]
    focal = [soft_loss(logits[i : i + 1], target[i : i + 1], gamma=2.0).item() for i in range(2)]
    assert focal[0] / ce[0] < 1e-4
    assert focal[1] / ce[1] > 0.5


def test_smooth_labels_moves_mass_to_uniform() -> None:
    onehot = nn.functional.one_hot(torch.tensor([0, 2]), 3).float()
    smooth = smooth_labels(onehot, 0.3)
    assert torch.allclose(smooth[0], torch.tensor([0.8, 0.1, 0.1]))
    assert torch.allclose(smooth.sum(dim=1), torch.ones(2))


def test_modality_dropout_never_drops_every_present_modality() -> None:
    g = torch.Generator().manual_seed(0)
    present = torch.rand(500, 3, generator=g) > 0.3
    keep = modality_dropout_mask(present, 0.9, g)
    assert not (keep & ~present).any()  # never resurrects a missing modality
    rows = present.any(dim=1)
    assert keep[rows].any(dim=1).all()
    assert keep.sum() < 0.5 * present.sum()  # but does drop most


def test_dropped_modalities_are_marked_missing_and_zeroed() -> None:
    g = torch.Generator().manual_seed(0)
    x = {"a": torch.randn(200, 4) + 5, "b": torch.randn(200, 2) + 5}
    present = {m: torch.ones(200, dtype=torch.bool) for m in x}
    dropped_x, dropped_p = drop_modalities(x, present, 0.5, g)
    for m in x:
        gone = ~dropped_p[m]
        assert 0.2 < gone.float().mean() < 0.6
        assert (dropped_x[m][gone] == 0).all()
        assert torch.equal(dropped_x[m][~gone], x[m][~gone])
    assert drop_modalities(x, present, 0.0, g) == (x, present)


def test_mixup_targets_follow_the_mixed_inputs_and_token_ids_stay() -> None:
    g = torch.Generator().manual_seed(0)
    x = {"img": torch.randn(8, 3), "tok": torch.randint(0, 50, (8, 5))}
    present = {"img": torch.ones(8, dtype=torch.bool), "tok": torch.ones(8, dtype=torch.bool)}
    targets = nn.functional.one_hot(torch.arange(8) % 2, 2).float()
    lam = 0.7
    mixed, soft = mixup(x, present, targets, lam, g)
    assert torch.equal(mixed["tok"], x["tok"])
    for i in range(8):  # the partner j of row i is the one that explains its mixed input
        errors = (mixed["img"][i] - (lam * x["img"][i] + (1 - lam) * x["img"])).abs().sum(1)
        j = int(errors.argmin())
        assert errors[j] < 1e-5
        assert torch.allclose(soft[i], lam * targets[i] + (1 - lam) * targets[j])
    assert not torch.equal(soft, targets)  # some rows got a partner of the other class


def test_mixup_keeps_rows_whose_partner_lacks_the_modality() -> None:
    g = torch.Generator().manual_seed(1)
    x = {"img": torch.randn(6, 3)}
    present = {"img": torch.tensor([True, False, True, False, True, False])}
    targets = torch.eye(2)[torch.arange(6) % 2]
    mixed, _ = mixup(x, present, targets, 0.6, g)
    changed = (mixed["img"] != x["img"]).any(dim=1)
    assert not changed[~present["img"]].any()  # a missing row is never mixed into

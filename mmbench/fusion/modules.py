"""Torch fusion modules: per-modality features and presence masks in, logits out.

Imported on first use only (it imports torch). Every module takes ``x[m]`` of shape ``(B, d_m)``
and ``present[m]`` of shape ``(B,)`` bool, and guarantees that a masked value has no influence on
the output: inputs are zeroed where missing and then replaced by a learned placeholder, excluded
from an average, or masked out of attention. Zeroing first matters even where the value is later
discarded: ``0 * NaN`` is NaN, so an unused NaN could otherwise leak into outputs or gradients.
"""

from __future__ import annotations

import torch
from torch import nn

NEG_INF = -1e9
"""Score for masked entries: softmax gives them exactly zero weight, without NaNs in bf16."""


def mlp(in_dim: int, out_dim: int, hidden: int, layers: int, dropout: float) -> nn.Sequential:
    """``layers`` hidden GELU layers of width ``hidden`` then a linear output (linear if 0)."""
    blocks: list[nn.Module] = []
    width = in_dim
    for _ in range(layers if hidden > 0 else 0):
        blocks += [nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout)]
        width = hidden
    blocks.append(nn.Linear(width, out_dim))
    return nn.Sequential(*blocks)


def masked(x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """``x`` with missing rows set to zero (``torch.where``, so NaNs there do not leak)."""
    mask = present.view(-1, *([1] * (x.dim() - 1)))
    return torch.where(mask, x, torch.zeros_like(x))


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the True entries of each row; rows without any are all zero."""
    weights = torch.softmax(scores.float().masked_fill(~mask, NEG_INF), dim=-1) * mask
    return weights / weights.sum(dim=-1, keepdim=True).clamp_min(1e-12)


def stack_present(present: dict[str, torch.Tensor], names: list[str]) -> torch.Tensor:
    """``(B, M)`` bool presence matrix in the order of ``names``."""
    return torch.stack([present[m].bool() for m in names], dim=1)


class FusionModule(nn.Module):
    """Shared bookkeeping: the modality order and optional per-modality weight statistics."""

    observes_weights = False
    """True when :meth:`modality_weights` summarises eval-mode forwards (so data must be seen)."""

    def __init__(self, input_dims: dict[str, int]) -> None:
        super().__init__()
        if not input_dims:
            raise ValueError("a fusion module needs at least one modality")
        self.modalities = list(input_dims)
        self.input_dims = dict(input_dims)

    def modality_weights(self) -> dict[str, float] | None:
        """Learned or observed weight of each modality (or branch); None when not meaningful."""
        return None

    def reset_stats(self) -> None:
        """Forget statistics observed in eval mode (gate weights)."""
        return None


class EarlyFusion(FusionModule):
    """Concatenate modalities (missing -> learned placeholder) plus presence bits, then an MLP.

    The presence bits let the MLP tell a real feature vector from the placeholder even when the
    placeholder has drifted close to real data.
    """

    def __init__(
        self,
        input_dims: dict[str, int],
        n_classes: int,
        dropout: float = 0.2,
        hidden: int = 128,
        layers: int = 1,
    ) -> None:
        super().__init__(input_dims)
        self.placeholders = nn.ParameterDict(
            {m: nn.Parameter(torch.zeros(d)) for m, d in input_dims.items()}
        )
        in_dim = sum(input_dims.values()) + len(input_dims)
        self.net = mlp(in_dim, n_classes, hidden, layers, dropout)

    def features(
        self, x: dict[str, torch.Tensor], present: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        parts = []
        for m in self.modalities:
            p = present[m].bool()
            fill = self.placeholders[m].to(x[m].dtype).expand_as(x[m])
            parts.append(torch.where(p[:, None], masked(x[m], p), fill))
        parts.append(stack_present(present, self.modalities).to(parts[0].dtype))
        return torch.cat(parts, dim=1)

    def forward(self, x: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.net(self.features(x, present))


class LateCombiner(nn.Module):
    """Weighted average of branch logits, softmax weights renormalised over present branches.

    A row with no present branch gets learned prior logits instead of an undefined average.
    """

    def __init__(self, names: list[str], n_classes: int) -> None:
        super().__init__()
        self.names = names
        self.scores = nn.Parameter(torch.zeros(len(names)))
        self.prior = nn.Parameter(torch.zeros(n_classes))

    def forward(self, logits: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        stacked = torch.stack(logits, dim=1).float()  # (B, M, K)
        weights = masked_softmax(self.scores.expand(len(mask), -1), mask)
        combined = (weights.unsqueeze(-1) * stacked).sum(dim=1)
        return torch.where(mask.any(dim=1, keepdim=True), combined, self.prior.float())

    def weights(self) -> dict[str, float]:
        values = torch.softmax(self.scores.detach().float(), dim=0).cpu().tolist()
        return dict(zip(self.names, values, strict=True))


class LateFusion(FusionModule):
    """One classifier per modality; logits averaged with learned weights over present ones."""

    def __init__(
        self,
        input_dims: dict[str, int],
        n_classes: int,
        dropout: float = 0.2,
        hidden: int = 64,
        layers: int = 1,
    ) -> None:
        super().__init__(input_dims)
        self.heads = nn.ModuleDict(
            {m: mlp(d, n_classes, hidden, layers, dropout) for m, d in input_dims.items()}
        )
        self.combine = LateCombiner(self.modalities, n_classes)

    def forward(self, x: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> torch.Tensor:
        mask = stack_present(present, self.modalities)
        logits = [self.heads[m](masked(x[m], present[m].bool())) for m in self.modalities]
        return self.combine(logits, mask)

    def modality_weights(self) -> dict[str, float]:
        return self.combine.weights()


class HybridFusion(FusionModule):
    """Modalities in ``early`` share one early-fusion branch; the others are late branches.

    Branches are combined as in :class:`LateFusion`; the early branch counts as present when any
    of its modalities is.
    """

    def __init__(
        self,
        input_dims: dict[str, int],
        n_classes: int,
        early: list[str],
        dropout: float = 0.2,
        hidden: int = 128,
        layers: int = 1,
    ) -> None:
        super().__init__(input_dims)
        self.early = [m for m in self.modalities if m in early]
        self.late = [m for m in self.modalities if m not in early]
        self.branch = None
        names = self.late
        if self.early:
            dims = {m: input_dims[m] for m in self.early}
            self.branch = EarlyFusion(dims, n_classes, dropout, hidden, layers)
            names = ["+".join(self.early), *self.late]
        self.heads = nn.ModuleDict(
            {m: mlp(input_dims[m], n_classes, hidden, layers, dropout) for m in self.late}
        )
        self.combine = LateCombiner(names, n_classes)

    def forward(self, x: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = [self.heads[m](masked(x[m], present[m].bool())) for m in self.late]
        mask = stack_present(present, self.late) if self.late else None
        if self.branch is not None:
            logits.insert(0, self.branch(x, present))
            any_early = stack_present(present, self.early).any(dim=1, keepdim=True)
            mask = any_early if mask is None else torch.cat([any_early, mask], dim=1)
        assert mask is not None
        return self.combine(logits, mask)

    def modality_weights(self) -> dict[str, float]:
        return self.combine.weights()


class AttentionFusion(FusionModule):
    """One token per modality (+ modality embedding) and a CLS token through a Transformer.

    Missing modalities are padding keys, so no token attends to them; the CLS token is never
    masked, which keeps rows with every modality missing well defined.
    """

    def __init__(
        self,
        input_dims: dict[str, int],
        n_classes: int,
        dropout: float = 0.2,
        d_model: int = 64,
        heads: int = 4,
        layers: int = 1,
    ) -> None:
        super().__init__(input_dims)
        self.proj = nn.ModuleDict({m: nn.Linear(d, d_model) for m, d in input_dims.items()})
        self.modality_embedding = nn.Parameter(torch.randn(len(input_dims), d_model) * 0.02)
        self.cls = nn.Parameter(torch.randn(1, 1, d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(
            d_model,
            heads,
            2 * d_model,
            dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, n_classes))

    def forward(self, x: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> torch.Tensor:
        mask = stack_present(present, self.modalities)
        tokens = torch.stack(
            [self.proj[m](masked(x[m], mask[:, i])) for i, m in enumerate(self.modalities)], dim=1
        )
        tokens = tokens + self.modality_embedding.to(tokens.dtype)
        cls = self.cls.to(tokens.dtype).expand(len(tokens), -1, -1)
        padding = torch.cat([torch.zeros_like(mask[:, :1]), ~mask], dim=1)
        encoded = self.encoder(torch.cat([cls, tokens], dim=1), src_key_padding_mask=padding)
        return self.out(encoded[:, 0])


class GatedFusion(FusionModule):
    """Per-modality projections mixed by a per-row gate (softmax over present modalities).

    The gate sees every present projection and the presence bits, so it can learn to trust a
    modality more when another is missing. Mean gate weights are collected in eval mode.
    """

    observes_weights = True

    def __init__(
        self,
        input_dims: dict[str, int],
        n_classes: int,
        dropout: float = 0.2,
        d: int = 64,
        hidden: int = 0,
        layers: int = 1,
    ) -> None:
        super().__init__(input_dims)
        self.proj = nn.ModuleDict(
            {
                m: nn.Sequential(nn.Linear(dim, d), nn.GELU(), nn.Dropout(dropout))
                for m, dim in input_dims.items()
            }
        )
        n = len(input_dims)
        self.gate = nn.Linear(n * d + n, n)
        self.out = nn.Sequential(nn.LayerNorm(d), mlp(d, n_classes, hidden, layers, dropout))
        self.reset_stats()

    def reset_stats(self) -> None:
        self._weight_sum = torch.zeros(len(self.modalities))
        self._rows = 0

    def forward(self, x: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> torch.Tensor:
        mask = stack_present(present, self.modalities)
        h = torch.stack(
            [
                masked(self.proj[m](masked(x[m], mask[:, i])), mask[:, i])
                for i, m in enumerate(self.modalities)
            ],
            dim=1,
        )  # (B, M, d), zero where missing
        gate_in = torch.cat([h.flatten(1), mask.to(h.dtype)], dim=1)
        weights = masked_softmax(self.gate(gate_in), mask)
        if not self.training:
            self._weight_sum += weights.detach().float().sum(0).cpu()
            self._rows += int(mask.any(dim=1).sum())
        fused = (weights.unsqueeze(-1).to(h.dtype) * h).sum(dim=1)
        return self.out(fused)

    def modality_weights(self) -> dict[str, float] | None:
        if self._rows == 0:
            return None
        mean = (self._weight_sum / self._rows).tolist()
        return dict(zip(self.modalities, mean, strict=True))

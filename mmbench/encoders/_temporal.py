"""The temporal tower of the ``frames`` video encoder: frame features over time -> one vector.

Imported lazily by :mod:`mmbench.encoders.video` (this module imports torch at the top). Mean or
max pooling forgets the order of frames, so motion (where the object goes, not where it is) is
invisible to them; both kinds here see the order: a GRU reads the frames in sequence, and
``attention`` is one self-attention layer over frames with learned position embeddings followed
by attention pooling.
"""

from __future__ import annotations

import torch
from torch import nn


class TemporalTower(nn.Module):
    """``(B, k, d)`` frozen frame features -> ``(B, hidden)``.

    A BatchNorm over the frame features learns their scale (the torch head standardizes flat
    features but not a tower's inputs), a shared projection maps each frame to ``hidden``, then
    the temporal layer combines the frames. A missing video arrives as zero frames and is masked
    by the head.
    """

    def __init__(self, in_dim: int, frames: int, hidden: int = 64, kind: str = "gru") -> None:
        super().__init__()
        if kind not in ("gru", "attention"):
            raise ValueError(f"unknown temporal tower {kind!r}")
        self.kind = kind
        self.norm = nn.BatchNorm1d(in_dim)
        self.project = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU())
        if kind == "gru":
            self.gru = nn.GRU(hidden, hidden, batch_first=True)
        else:
            self.position = nn.Parameter(torch.randn(frames, hidden) * 0.02)
            self.mix = nn.TransformerEncoderLayer(
                hidden, nhead=_heads(hidden), dim_feedforward=2 * hidden, dropout=0.0,
                batch_first=True,
            )  # fmt: skip
            self.score = nn.Linear(hidden, 1)
        self.out_dim = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, k, d = x.shape
        h = self.project(self.norm(x.float().reshape(b * k, d))).reshape(b, k, -1)
        if self.kind == "gru":
            _, last = self.gru(h)
            return last[-1]
        h = self.mix(h + self.position[:k])
        weights = torch.softmax(self.score(h), dim=1)  # (B, k, 1): which frames matter
        return (weights * h).sum(dim=1)


def _heads(hidden: int) -> int:
    """The most attention heads (up to 4) that divide ``hidden``."""
    return next(h for h in (4, 2, 1) if hidden % h == 0)

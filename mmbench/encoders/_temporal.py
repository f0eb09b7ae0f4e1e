"""The temporal tower of the ``frames`` video encoder: frame features over time -> one vector.

Imported lazily by :mod:`mmbench.encoders.video` (this module imports torch at the top). Mean or
max pooling forgets the order of frames, so motion (where the object goes, not where it is) is
invisible to them; both kinds here see the order. ``gru`` reads the frames in sequence and keeps
its last state. ``attention`` is temporal attention pooling over a 1-D convolution across
neighbouring frames (each position sees frames t-1, t, t+1, which is where motion shows), so the
learned weights pick the moments that matter. Attention pooling straight over the frame
features, or one self-attention layer with position embeddings, stayed near chance on the
synthetic motion videos (macro-F1 0.40-0.80 per fold vs 0.96 with the convolution).
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

    def __init__(self, in_dim: int, hidden: int = 64, kind: str = "gru") -> None:
        super().__init__()
        if kind not in ("gru", "attention"):
            raise ValueError(f"unknown temporal tower {kind!r}")
        self.kind = kind
        self.norm = nn.BatchNorm1d(in_dim)
        self.project = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU())
        if kind == "gru":
            self.gru = nn.GRU(hidden, hidden, batch_first=True)
        else:
            self.motion = nn.Sequential(nn.Conv1d(hidden, hidden, 3, padding=1), nn.ReLU())
            self.score = nn.Linear(hidden, 1)
        self.out_dim = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, k, d = x.shape
        h = self.project(self.norm(x.float().reshape(b * k, d))).reshape(b, k, -1)
        if self.kind == "gru":
            _, last = self.gru(h)
            return last[-1]
        h = self.motion(h.transpose(1, 2)).transpose(1, 2)  # (B, k, hidden): frame t with t±1
        weights = torch.softmax(self.score(h), dim=1)  # (B, k, 1): which moments matter
        return (weights * h).sum(dim=1)

"""Torch modules that trainable encoders hand to the fusion head as per-modality towers.

Imported lazily by the encoder modules (this one imports torch at the top), so that
``import mmbench.encoders`` stays cheap. Every tower maps a batch of what its encoder's
``transform`` returned to ``(B, out_dim)`` features.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class ImageTower(nn.Module):
    """A timm backbone (``num_classes=0``) with optional light train-time augmentation.

    Augmentation lives in ``forward`` rather than in the data pipeline because the pixels are
    preprocessed once and cached; random flips and small shifts are applied per sample on the
    batch, only while ``self.training``.
    """

    def __init__(self, backbone: nn.Module, out_dim: int, augment: bool = False) -> None:
        super().__init__()
        self.backbone = backbone
        self.out_dim = out_dim
        self.augment = augment

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.augment:
            x = augment_images(x)
        return self.backbone(x)


def augment_images(x: torch.Tensor, max_shift: float = 1 / 16) -> torch.Tensor:
    """Random horizontal flip and a random shift of up to ``max_shift`` of the side, per sample."""
    b, _, h, w = x.shape
    flip = torch.rand(b, device=x.device) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    pad = max(1, round(min(h, w) * max_shift))
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    dy = torch.randint(0, 2 * pad + 1, (b,)).tolist()
    dx = torch.randint(0, 2 * pad + 1, (b,)).tolist()
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])


class TokenTower(nn.Module):
    """Token ids ``(B, L)`` (0 = padding) -> ``(B, out_dim)``, trained from scratch.

    ``arch="bag"`` mean-pools word embeddings over non-padding tokens (fast, strong on short
    texts); ``arch="cnn"`` adds 1-D convolutions of several widths with masked max-pooling over
    time (Kim, 2014), which captures short phrases.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 64,
        arch: str = "cnn",
        channels: int = 64,
        kernel_sizes: Sequence[int] = (2, 3, 4),
    ) -> None:
        super().__init__()
        self.arch = arch
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        if arch == "bag":
            self.convs = nn.ModuleList()
            self.out_dim = embed_dim
        else:
            self.convs = nn.ModuleList(
                nn.Conv1d(embed_dim, channels, k, padding=k // 2) for k in kernel_sizes
            )
            self.out_dim = channels * len(kernel_sizes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = ids.long()
        mask = (ids != 0).unsqueeze(-1)  # (B, L, 1)
        emb = self.embedding(ids)  # padding rows are zero vectors
        if self.arch == "bag":
            return emb.sum(1) / mask.sum(1).clamp(min=1)
        x = emb.transpose(1, 2)  # (B, E, L)
        length = ids.shape[1]
        pooled = []
        for conv in self.convs:
            h = F.relu(conv(x))[..., :length]  # even kernels produce one extra step
            h = h.masked_fill(~mask.transpose(1, 2), 0.0)  # ReLU output >= 0, so 0 is neutral
            pooled.append(h.amax(-1))
        return torch.cat(pooled, dim=1)


class SpectrogramCNN(nn.Module):
    """Log-mel ``(B, 1, n_mels, T)`` -> ``(B, out_dim)``: a small 2-D CNN trained from scratch.

    The input BatchNorm learns the scale of the (fixed, unnormalised) log-mel values, so the
    encoder needs no data-dependent normalisation.
    """

    def __init__(self, channels: Sequence[int] = (16, 32)) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.BatchNorm2d(1)]
        c_in = 1
        for c_out in channels:
            layers += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            c_in = c_out
        self.body = nn.Sequential(*layers)
        self.out_dim = c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.float()).mean(dim=(2, 3))


class SeriesCNN(nn.Module):
    """Sensor series ``(B, channels, T)`` -> ``(B, out_dim)``: a small 1-D CNN trained from scratch.

    Conv-BatchNorm-ReLU blocks (halving time after each but the last), then global average and
    max pooling over time, so the tower sees both how much and how sharply a pattern occurs.
    """

    def __init__(
        self, in_channels: int, channels: Sequence[int] = (32, 64), kernel_size: int = 7
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = max(in_channels, 1)
        for i, c_out in enumerate(channels):
            layers += [
                nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2, bias=False),
                nn.BatchNorm1d(c_out),
                nn.ReLU(inplace=True),
            ]
            if i < len(channels) - 1:
                layers.append(nn.MaxPool1d(2, ceil_mode=True))
            c_in = c_out
        self.body = nn.Sequential(*layers)
        self.out_dim = 2 * c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x.float())
        return torch.cat([h.mean(-1), h.amax(-1)], dim=1)


class TabularTower(nn.Module):
    """Scaled numerics plus one learned embedding per categorical column -> ``(B, out_dim)``.

    The input row holds the numeric features first and then one integer code per categorical
    column (0 = unseen or missing category, stored as float so the row stays one array).
    """

    def __init__(
        self, n_numeric: int, cardinalities: Sequence[int], embed_dim: int = 8, hidden: int = 64
    ) -> None:
        super().__init__()
        self.n_numeric = n_numeric
        self.embeddings = nn.ModuleList(nn.Embedding(c + 1, embed_dim) for c in cardinalities)
        width = n_numeric + embed_dim * len(cardinalities)
        self.project = nn.Sequential(nn.Linear(max(width, 1), hidden), nn.ReLU())
        self.out_dim = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        numeric, codes = x[:, : self.n_numeric], x[:, self.n_numeric :].long()
        parts = [numeric] + [emb(codes[:, i]) for i, emb in enumerate(self.embeddings)]
        return self.project(torch.cat(parts, dim=1))

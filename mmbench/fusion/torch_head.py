"""The head behind every torch fusion: optional encoder towers, a fusion module, one loop.

Imported on first use by :func:`mmbench.fusion.create_head` (it imports torch).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from mmbench.config import FusionSpec, TrainSpec
from mmbench.errors import MMBenchError
from mmbench.fusion.base import FUSIONS, EpochCallback, FeatureSet, Head, is_sparse
from mmbench.fusion.modules import masked
from mmbench.fusion.training import TrainHistory, fit_module, predict_logits


class MultimodalNet(nn.Module):
    """Towers (raw inputs -> features) for fine-tuned modalities, then the fusion module.

    Missing rows are zeroed before the towers, so a NaN or garbage raw input of a missing row
    can reach neither the output nor the towers' gradients.
    """

    def __init__(self, fusion: nn.Module, towers: dict[str, nn.Module] | None = None) -> None:
        super().__init__()
        self.fusion = fusion
        names: Any = fusion.modalities  # every fusion module lists the modalities it consumes
        self.modalities: list[str] = list(names)
        self.towers = nn.ModuleDict(towers or {})
        self.tower_modalities = list(self.towers)

    def forward(self, x: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> torch.Tensor:
        features = {}
        for m in self.modalities:
            xm = masked(x[m], present[m].bool())
            features[m] = self.towers[m](xm) if m in self.towers else xm
        return self.fusion(features, present)


class TorchHead(Head):
    """A fusion ``nn.Module`` (plus towers) trained by :func:`mmbench.fusion.training.fit_module`.

    The module is built, seeded, at construction so that bad options fail before any data is
    touched; a second :meth:`fit` rebuilds the fusion module (towers keep their weights).
    """

    def __init__(
        self,
        fusion: FusionSpec,
        training: TrainSpec,
        input_dims: dict[str, int],
        n_classes: int,
        *,
        seed: int,
        towers: dict[str, nn.Module] | None = None,
    ) -> None:
        self.fusion_spec = fusion
        self.training = training
        self.input_dims = dict(input_dims)
        self.n_classes = n_classes
        self.seed = seed
        self.towers = dict(towers or {})
        self.history: TrainHistory | None = None
        self._weights: dict[str, float] | None = None
        self.net = self._build()

    def _build(self) -> MultimodalNet:
        unknown = set(self.towers) - set(self.input_dims)
        if unknown:
            raise MMBenchError(f"towers for modalities without input_dims: {sorted(unknown)}")
        torch.manual_seed(self.seed)
        builder = FUSIONS.get(self.fusion_spec.name)
        module = builder(
            dict(self.input_dims), self.n_classes, self.training.dropout, **self.fusion_spec.options
        )
        return MultimodalNet(module, self.towers)

    def _check(self, data: FeatureSet) -> None:
        missing = [m for m in self.input_dims if m not in data.features]
        if missing:
            raise MMBenchError(
                f"fusion {self.fusion_spec.name!r} was built for {list(self.input_dims)} but the "
                f"data lack {missing}"
            )
        sparse = [m for m, x in data.features.items() if is_sparse(x)]
        if sparse:
            accepting = ", ".join(FUSIONS.names(sparse=True))
            raise MMBenchError(
                f"fusion {self.fusion_spec.name!r} needs dense features but {sparse} are sparse "
                f"(e.g. tfidf with sparse: true); use a dense encoder or a sparse-capable fusion "
                f"({accepting})"
            )

    def fit(
        self,
        train: FeatureSet,
        valid: FeatureSet | None = None,
        on_epoch: EpochCallback | None = None,
    ) -> TorchHead:
        self._check(train)
        if valid is not None:
            self._check(valid)
        if self.history is not None:
            self.net = self._build()
        self._fit_scaler(train)
        train = self._standardize(train)
        valid = None if valid is None else self._standardize(valid)
        deadline = self.deadline

        def epoch_done(epoch: int, score: float) -> None:
            deadline.check(f"epoch {epoch}")
            if on_epoch is not None:
                on_epoch(epoch, score)

        self.history = fit_module(
            self.net,
            train,
            valid,
            self.training,
            self.n_classes,
            seed=self.seed,
            on_epoch=epoch_done,
        )
        self._weights = self._modality_weights(train)
        return self

    def _fit_scaler(self, train: FeatureSet) -> None:
        """Per-feature mean and std of frozen features, from present training rows only.

        Encoders emit features on wildly different scales (dB-valued audio statistics, unit
        sentence embeddings, CNN activations); standardizing them keeps one modality from
        dominating the fused input by scale alone, which matters most for early fusion.
        """
        self._scale: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for m, x in train.features.items():
            if m in self.towers or x.ndim != 2 or not np.issubdtype(x.dtype, np.floating):
                continue
            rows = x[train.present[m]]
            if len(rows) < 2:
                continue
            std = rows.std(axis=0)
            std[std < 1e-6] = 1.0
            self._scale[m] = (rows.mean(axis=0).astype(np.float32), std.astype(np.float32))

    def _standardize(self, data: FeatureSet) -> FeatureSet:
        features = dict(data.features)
        for m, (mean, std) in getattr(self, "_scale", {}).items():
            features[m] = ((features[m] - mean) / std).astype(np.float32)
        return FeatureSet(features=features, present=data.present, labels=data.labels)

    def _modality_weights(self, train: FeatureSet) -> dict[str, float] | None:
        """Learned weights (late, hybrid) or mean gate weights over the training rows (gated)."""
        fusion: Any = self.net.fusion  # a FusionModule, or any module with these optional hooks
        if getattr(fusion, "observes_weights", False):
            fusion.reset_stats()
            predict_logits(self.net, train, self.training)
        report = getattr(fusion, "modality_weights", None)
        return report() if callable(report) else None

    def predict_proba(self, data: FeatureSet) -> np.ndarray:
        if self.history is None:
            raise MMBenchError("predict_proba called before fit")
        self._check(data)
        logits = predict_logits(self.net, self._standardize(data), self.training)
        logits = logits.astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        return proba / proba.sum(axis=1, keepdims=True)

    def info(self) -> dict[str, Any]:
        if self.history is None:
            return {}
        out: dict[str, Any] = {
            "epochs_run": self.history.epochs_run,
            "best_epoch": self.history.best_epoch,
            "stopped_early": self.history.stopped_early,
            "seconds": round(self.history.seconds, 3),
            "device": self.history.device,
        }
        if self._weights is not None:
            out["modality_weights"] = self._weights
        return out

"""The encoder contract and its registry.

An encoder turns one modality's raw values into a float32 feature matrix. Encoders whose output
depends on data (TF-IDF vocabularies, scalers) declare ``fits_on_data = True``: the pipeline fits
them inside each fold on training rows only, and the feature cache keys their output by fold.
Rows whose value is missing get all-zero features; the pipeline passes a separate presence mask
to the fusion head.

*Trainable* encoders (``trainable = True``, e.g. ``timm/...`` with ``frozen=False``) are
fine-tuned with the head instead of run once: their :meth:`Encoder.transform` returns *model
inputs* (preprocessed pixels, token ids, spectrograms) rather than features, still cacheable, and
:meth:`Encoder.build_tower` returns a fresh ``torch.nn.Module`` mapping a batch of those inputs to
``(B, tower_dim)`` features, which the fusion head trains end to end
(``create_head(..., towers={modality: encoder.build_tower()})``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from mmbench.errors import MMBenchError
from mmbench.registry import Registry

ENCODERS: Registry[Callable[..., Encoder]] = Registry("encoder")


class Encoder(ABC):
    """Raw values of one modality -> ``(n_rows, dim)`` float32 features."""

    modality: ClassVar[str]
    fits_on_data: ClassVar[bool] = False
    trainable: bool = False
    """Whether ``transform`` returns model inputs for a tower (see :meth:`build_tower`)."""
    dense_only_options: ClassVar[tuple[str, ...]] = ()
    """Options that only matter for dense output, so a search skips them with ``sparse: true``."""

    def __init__(self, name: str, **options: Any) -> None:
        self.name = name
        self.options = options

    def spec(self) -> dict[str, Any]:
        """Everything that determines the output; part of the feature-cache key."""
        return {"name": self.name, "options": self.options, "version": getattr(self, "version", 1)}

    def fit(self, values: Any, labels: np.ndarray) -> Encoder:
        """Learn from training rows. Default: nothing to learn."""
        return self

    @abstractmethod
    def transform(self, values: Any) -> np.ndarray:
        """Features for every row; missing rows are zeros."""

    def fit_transform(self, values: Any, labels: np.ndarray) -> np.ndarray:
        return self.fit(values, labels).transform(values)

    @property
    def tower_dim(self) -> int:
        """Width of :meth:`build_tower`'s output (also the module's ``out_dim``)."""
        raise NotImplementedError(f"encoder {self.name!r} is not trainable")

    def build_tower(self) -> Any:
        """A fresh ``torch.nn.Module``: batch of ``transform`` outputs -> ``(B, tower_dim)``.

        Only trainable encoders have one; each call returns new (initial) weights so every fold
        fine-tunes from the same starting point. Fitted encoders must be fitted first.
        """
        raise NotImplementedError(f"encoder {self.name!r} is not trainable")


def register_encoder(name: str) -> Callable[[Callable[..., Encoder]], Callable[..., Encoder]]:
    """Register a builder under ``name``; ``family/arg`` names pass ``arg`` as ``model``."""
    return ENCODERS.register(name)


def create_encoder(name: str, **options: Any) -> Encoder:
    """Build an encoder by name, e.g. ``create_encoder("timm/resnet18", frozen=True)``.

    A name ``family/model`` looks up ``family`` and passes ``model=...``; sentence-transformers
    names such as ``st/sentence-transformers/all-MiniLM-L6-v2`` keep everything after ``st/``.
    """
    family, _, model = name.partition("/")
    builder = ENCODERS.get(family)
    if model:
        options = {"model": model, **options}
    try:
        encoder = builder(**options)
    except TypeError as exc:
        raise MMBenchError(f"bad options for encoder {name!r}: {exc}") from None
    encoder.name = name
    return encoder


def zeros_for_missing(features: np.ndarray, present: Sequence[bool] | np.ndarray) -> np.ndarray:
    """Zero the rows whose input was missing."""
    mask = np.asarray(present, dtype=bool)
    features = np.asarray(features, dtype=np.float32)
    features[~mask] = 0.0
    return features

"""The head contract: per-modality features in, class probabilities out.

A *head* is what the pipeline trains on top of encoder outputs for one fold. Every fusion is
registered in :data:`FUSIONS` with a :class:`FusionInfo` saying how it is built: torch fusions
register an ``nn.Module`` builder, wrapped in a :class:`~mmbench.fusion.torch_head.TorchHead` and
trained by the shared loop (:mod:`mmbench.fusion.training`); other heads (``xgboost``) register a
builder of a ready :class:`Head`.

Every head accepts missing modalities: ``FeatureSet.present[m]`` is False for rows whose value of
modality ``m`` is missing, both in training and at prediction time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmbench.budget import NO_DEADLINE, Deadline
from mmbench.config import Param
from mmbench.registry import Registry


@dataclass(frozen=True)
class FusionInfo:
    """What a fusion declares about itself: ``FUSIONS.register(name, torch=..., ...)``.

    ``torch``: the builder is ``builder(input_dims, n_classes, dropout, **options) -> nn.Module``,
    trained by the shared torch loop, which can also train encoder towers jointly; otherwise it
    is ``builder(n_classes, seed, training=spec, **options) -> Head`` and the torch-only training
    options (:meth:`~mmbench.config.TrainSpec.torch_only`) do not apply to it.
    ``search_space``: default search ranges of its options, used when a suite's search space does
    not give ``fusion_options`` for it. ``default_search``: whether the default search space picks
    this fusion at all. ``sparse``: the head takes ``scipy.sparse`` feature blocks (e.g. the
    n-gram TF-IDF) as they are; torch heads need dense ones.
    """

    torch: bool = True
    sparse: bool = False
    search_space: Mapping[str, Param] = field(default_factory=dict)
    default_search: bool = True


FUSIONS: Registry[Callable[..., Any], FusionInfo] = Registry("fusion", meta=FusionInfo)
"""Every fusion head by name; :class:`FusionInfo` says how its builder is called."""

EpochCallback = Callable[[int, float], None]
"""Called after each epoch with (epoch, validation score, higher is better); may raise to stop."""


@dataclass
class FeatureSet:
    """Rows of per-modality inputs for a head.

    ``features[m]`` is ``(n, ...)``: a feature matrix for frozen encoders (a ``scipy.sparse`` CSR
    matrix for sparse encoders, which only heads registered with ``sparse=True`` accept), or
    model inputs (pixels, token ids) for trainable encoders whose tower is trained with the head.
    ``meta["categorical"][m]``: how many trailing columns of ``features[m]`` are integer category
    codes (``-1``: unseen), for heads that split on categories natively (``xgboost``).
    ``groups``: the table's group id per row (``protocol.group_column``), carried so that the
    hold-out a head is early-stopped on holds out whole groups, as the folds do.
    """

    features: dict[str, np.ndarray]
    present: dict[str, np.ndarray]
    labels: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    groups: np.ndarray | None = None

    def __len__(self) -> int:
        return int(next(iter(self.features.values())).shape[0])

    @property
    def modalities(self) -> list[str]:
        return list(self.features)

    def take(self, index: np.ndarray) -> FeatureSet:
        return FeatureSet(
            features={m: x[index] for m, x in self.features.items()},
            present={m: p[index] for m, p in self.present.items()},
            labels=None if self.labels is None else self.labels[index],
            meta=self.meta,
            groups=None if self.groups is None else self.groups[index],
        )

    def drop(self, modalities: set[str] | list[str]) -> FeatureSet:
        """Mark ``modalities`` missing on every row (missing-modality robustness checks)."""
        present = {m: (np.zeros_like(p) if m in modalities else p) for m, p in self.present.items()}
        features = {m: (_zeros_like(x) if m in modalities else x) for m, x in self.features.items()}
        return FeatureSet(
            features=features,
            present=present,
            labels=self.labels,
            meta=self.meta,
            groups=self.groups,
        )


def is_sparse(x: Any) -> bool:
    """A ``scipy.sparse`` matrix (e.g. n-gram TF-IDF), checked without importing scipy."""
    return hasattr(x, "tocsr") and hasattr(x, "nnz")


def _zeros_like(x: Any) -> Any:
    return x.multiply(0).tocsr() if is_sparse(x) else np.zeros_like(x)


class Head(ABC):
    """A classifier over a :class:`FeatureSet`, trained per fold.

    ``deadline`` is set by the caller before :meth:`fit`; heads check it between units of work
    (epochs, boosting rounds) and raise :class:`~mmbench.budget.DeadlineReached` once it passed.
    """

    deadline: Deadline = NO_DEADLINE

    @abstractmethod
    def fit(
        self,
        train: FeatureSet,
        valid: FeatureSet | None = None,
        on_epoch: EpochCallback | None = None,
    ) -> Head:
        """Train on ``train``; ``valid`` drives early stopping and per-epoch reports."""

    @abstractmethod
    def predict_proba(self, data: FeatureSet) -> np.ndarray:
        """``(n, n_classes)`` probabilities, rows summing to one."""

    def info(self) -> dict[str, Any]:
        """What was learned that a user may want to see (epochs run, modality weights...)."""
        return {}

"""Fitted pipelines kept to predict new rows: one refit on every row (:class:`FittedPipeline`)
or a cross-validation's fold models (:class:`FoldModels`), and their pickles.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.budget import NO_DEADLINE, Deadline
from mmbench.config import PipelineSpec
from mmbench.data.table import MultiModalTable
from mmbench.encoders.base import Encoder
from mmbench.evaluation import Fold, compute_metrics
from mmbench.fusion.base import FeatureSet, Head
from mmbench.pipeline.cache import FeatureCache
from mmbench.pipeline.encode import build_encoders, encode, transform
from mmbench.pipeline.fold import fit_head, train_fold


@dataclass
class FittedPipeline:
    """A pipeline fitted on all training rows; predicts on new rows of the same columns."""

    spec: PipelineSpec
    classes: list[str]
    encoders: dict[str, Encoder]
    head: Head
    threshold: float | None = None
    decision: np.ndarray | None = None
    """Per-class decision weights the harness tuned on the pipeline's out-of-fold rows
    (:func:`mmbench.evaluation.decide`); when set they decide instead of :attr:`threshold`."""

    def predict_proba(
        self, table: MultiModalTable, cache: FeatureCache | None = None
    ) -> np.ndarray:
        """Class probabilities of ``table``'s rows; frozen features come from (and go to)
        ``cache`` when given, so scoring the same rows again does not encode them again."""
        features = transform(table, self.encoders, cache)
        present = {m: table.present(m) for m in self.encoders}
        return self.head.predict_proba(FeatureSet(features=features, present=present))

    def predict(self, table: MultiModalTable) -> list[str]:
        from mmbench.evaluation import predict_labels

        labels = predict_labels(self.predict_proba(table), self.threshold, self.decision)
        return [self.classes[i] for i in labels]

    def score(self, table: MultiModalTable, proba: np.ndarray | None = None) -> dict[str, float]:
        """Every metric on labelled rows (the held-out test source), with this model's decision
        rule; ``proba`` when the caller already predicted ``table``."""
        proba = self.predict_proba(table) if proba is None else proba
        return compute_metrics(table.labels, proba, threshold=self.threshold, weights=self.decision)

    def save(self, path: str | Path) -> Path:
        """Pickle the fitted encoders and head (torch modules included) to ``path``."""
        return dump(self, path)

    @staticmethod
    def load(path: str | Path) -> FittedPipeline:
        import joblib

        model = joblib.load(path)
        if not isinstance(model, FittedPipeline):
            raise TypeError(f"{path} does not hold an mmbench FittedPipeline")
        return model


def fit_pipeline(
    table: MultiModalTable,
    spec: PipelineSpec,
    seed: int,
    modalities: list[str] | None = None,
    *,
    cache: FeatureCache | None = None,
    deadline: Deadline = NO_DEADLINE,
) -> FittedPipeline:
    """Fit encoders and head on every row of ``table`` (the refit after a search).

    Frozen features come from ``cache`` when given (the search already encoded every row).
    """
    modalities = modalities or [m for m in table.modalities if m in spec.encoders]
    encoders = build_encoders(spec, modalities)
    all_rows = np.arange(len(table))
    features, towers = encode(table, encoders, all_rows, cache=cache, keep_fitted=True)
    head, threshold = fit_head(spec, features, towers, table.n_classes, seed, deadline=deadline)
    return FittedPipeline(spec, list(table.classes), encoders, head, threshold)


def dump(model: Any, path: str | Path) -> Path:
    """Pickle ``model`` to ``path`` atomically (a reader never sees half a file)."""
    import joblib

    from mmbench._io import atomic_write

    path = Path(path)
    atomic_write(path, lambda f: joblib.dump(model, f))  # creates the folder too
    return path


@dataclass
class FoldModels:
    """The models a cross-validation trains, kept: one head per fold, probabilities averaged.

    Frozen encoders are stateless, so one instance of each encodes new rows once for every fold;
    encoders that learn from data (TF-IDF, scalers) are kept per fold, fitted on that fold's
    training rows. Each fold's model is the one whose out-of-fold predictions the search scored,
    so the ensemble weights and decision rule tuned on those predictions describe these models.
    """

    spec: PipelineSpec
    classes: list[str]
    frozen: dict[str, Encoder]
    fitted: list[dict[str, Encoder]]
    heads: list[Head]

    def predict_proba(
        self, table: MultiModalTable, cache: FeatureCache | None = None
    ) -> np.ndarray:
        shared = transform(table, self.frozen, cache)
        present = {m: table.present(m) for m in [*self.frozen, *self.fitted[0]]}
        total = np.zeros((len(table), len(self.classes)))
        for encoders, head in zip(self.fitted, self.heads, strict=True):
            own = {m: enc.transform(table[m]) for m, enc in encoders.items()}
            total += head.predict_proba(FeatureSet(features={**shared, **own}, present=present))
        return total / len(self.heads)

    def save(self, path: str | Path) -> Path:
        return dump(self, path)


def fit_fold_models(
    table: MultiModalTable,
    spec: PipelineSpec,
    folds: list[Fold],
    modalities: list[str] | None = None,
    *,
    cache: FeatureCache | None = None,
    deadline: Deadline = NO_DEADLINE,
) -> FoldModels:
    """Train ``spec`` on every fold's training rows as :func:`~mmbench.pipeline.cv.evaluate_pipeline` does (the same
    :func:`~mmbench.pipeline.fold.train_fold`), and keep the models (frozen features come from
    ``cache``; the deadline is checked between folds and by the heads). Raises
    :class:`~mmbench.budget.DeadlineReached` when it passes."""
    modalities = modalities or [m for m in table.modalities if m in spec.encoders]
    frozen: dict[str, Encoder] = {}
    fitted: list[dict[str, Encoder]] = []
    heads: list[Head] = []
    for fold in folds:
        deadline.check(f"fold model {fold.key}")
        trained = train_fold(
            table, spec, modalities, fold, cache, keep_fitted=True, deadline=deadline
        )
        encoders = trained.encoders
        frozen = frozen or {m: e for m, e in encoders.items() if not e.fits_on_data}
        fitted.append({m: e for m, e in encoders.items() if e.fits_on_data})
        heads.append(trained.head)
    return FoldModels(spec, list(table.classes), frozen, fitted, heads)

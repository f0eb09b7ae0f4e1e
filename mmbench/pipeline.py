"""One candidate pipeline, fitted per fold and scored by cross-validation.

This is where encoders, the feature cache, fusion heads and the evaluation protocol meet; it knows
nothing of Optuna, MLflow or the CLI. Inside every fold, encoders that learn from data are fitted
on that fold's training rows only, and an inner stratified hold-out of the training rows drives
early stopping, per-epoch reports and binary threshold tuning (whole groups on a grouped table),
so the outer validation rows are used for scoring and nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.budget import NO_DEADLINE, Deadline, DeadlineReached
from mmbench.cache import FeatureCache, feature_key
from mmbench.config import PipelineSpec
from mmbench.data.table import MultiModalTable
from mmbench.encoders.base import Encoder, create_encoder
from mmbench.evaluation import (
    DecisionRule,
    Fold,
    FoldScores,
    compute_metrics,
    inner_split,
    no_holdout_reason,
    tune_binary_threshold,
)
from mmbench.fusion.base import EpochCallback, FeatureSet, Head


@dataclass
class FoldResult:
    """Scores of one fold, or the error that stopped it."""

    key: str
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    missing_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    """Scores of the trained head with one modality removed at test time only (no retraining)."""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class CVResult(FoldScores):
    """Out-of-fold probabilities (``oof[repeat, row]``), fold scores and their summary."""

    spec: PipelineSpec
    modalities: list[str]
    folds: list[FoldResult]
    oof: np.ndarray
    seconds: dict[str, float]
    cache: dict[str, int]
    decision: DecisionRule | None = None
    """The decision rule its scores were counted with (:func:`mmbench.evaluation.decide`);
    None: not decided yet (the candidate's own decisions, as a search ranks its trials)."""


def take(values: Any, index: np.ndarray) -> Any:
    """Rows ``index`` of one modality's values (list or DataFrame)."""
    if hasattr(values, "iloc"):
        return values.iloc[index].reset_index(drop=True)
    return [values[i] for i in index]


def build_encoders(spec: PipelineSpec, modalities: list[str]) -> dict[str, Encoder]:
    missing = [m for m in modalities if m not in spec.encoders]
    if missing:
        from mmbench.errors import MMBenchError

        raise MMBenchError(f"pipeline has no encoder for modality {missing}")
    return {
        m: create_encoder(spec.encoders[m].name, **spec.encoders[m].options) for m in modalities
    }


def encode(
    table: MultiModalTable,
    encoders: dict[str, Encoder],
    train: np.ndarray,
    cache: FeatureCache | None = None,
    *,
    keep_fitted: bool = False,
    deadline: Deadline = NO_DEADLINE,
) -> tuple[FeatureSet, dict[str, Any]]:
    """Features of every row, with data-dependent encoders fitted on ``train`` rows only.

    Returns the feature set and the towers of trainable encoders. Frozen encoders are cached
    once per dataset; fitted ones once per (dataset, training rows), unless ``keep_fitted``:
    then they are always fitted, because the caller keeps them to encode new rows later.
    """
    cache = cache or FeatureCache(None)
    features: dict[str, np.ndarray] = {}
    towers: dict[str, Any] = {}
    for m, enc in encoders.items():
        values = table[m]
        if not enc.fits_on_data:
            features[m] = frozen_features(table, m, enc, cache, deadline)
        elif enc.trainable or keep_fitted:  # its fitted state is needed
            features[m] = enc.fit(take(values, train), table.labels[train]).transform(values)
        else:
            key = feature_key(table.fingerprint, m, enc.spec(), train)

            def compute(enc: Encoder = enc, values: Any = values) -> np.ndarray:
                enc.fit(take(values, train), table.labels[train])
                return enc.transform(values)

            features[m] = cache.get_or_compute(key, compute)
        if enc.trainable:
            towers[m] = enc.build_tower()
    present = {m: table.present(m) for m in encoders}
    meta = {"categorical": categorical_tails(table, encoders)}
    data = FeatureSet(
        features=features, present=present, labels=table.labels, meta=meta, groups=table.groups
    )
    return data, towers


def categorical_tails(table: MultiModalTable, encoders: dict[str, Encoder]) -> dict[str, int]:
    """Modality -> number of trailing category-code columns, for encoders that emit them."""
    tails = {}
    for m, enc in encoders.items():
        count = getattr(enc, "categorical_codes", None)
        if count is not None and count(table[m]):
            tails[m] = int(count(table[m]))
    return tails


PROBE_ROWS = 16
CHUNK_ROWS = 256


def transform_in_chunks(enc: Encoder, values: Any, deadline: Deadline = NO_DEADLINE) -> Any:
    """``enc.transform(values)`` a chunk of rows at a time, checking ``deadline`` in between.

    Frozen encoders treat rows independently, so chunking changes nothing but when a long
    encoding (a pretrained backbone over thousands of images) can stop for the budget.
    """
    if deadline.at is None or len(values) <= CHUNK_ROWS:
        return enc.transform(values)
    parts = []
    for start in range(0, len(values), CHUNK_ROWS):
        deadline.check(f"encoding with {enc.name}")
        rows = np.arange(start, min(start + CHUNK_ROWS, len(values)))
        parts.append(enc.transform(take(values, rows)))
    if hasattr(parts[0], "tocsr"):
        from scipy import sparse

        return sparse.vstack(parts, format="csr")
    return np.concatenate(parts, axis=0)


def encode_seconds(
    table: MultiModalTable,
    spec: PipelineSpec,
    cache: FeatureCache | None,
    measured: dict[str, float] | None = None,
) -> float:
    """Wall seconds the frozen encoders of ``spec`` would spend on the rows not yet cached.

    Measured, not guessed: each uncached frozen encoder transforms a small probe of rows (after
    one warm-up row that pays for loading its model) and the rate is extrapolated to the table.
    ``measured`` memoizes rates by encoder spec across calls (one probe per encoder and study).
    Encoders fitted per fold (TF-IDF, scalers) are cheap and not probed.
    """
    cache = cache or FeatureCache(None)
    measured = {} if measured is None else measured
    total = 0.0
    for m in [m for m in table.modalities if m in spec.encoders]:
        enc = create_encoder(spec.encoders[m].name, **spec.encoders[m].options)
        if enc.fits_on_data or enc.trainable:
            continue
        if cache.contains(feature_key(table.fingerprint, m, enc.spec(), None)):
            continue
        ident = repr(enc.spec())
        if ident not in measured:
            measured[ident] = _seconds_per_row(enc, table[m])
        total += measured[ident] * len(table)
    return total


def _seconds_per_row(enc: Encoder, values: Any) -> float:
    rows = [i for i in range(len(values)) if values[i] is not None][: PROBE_ROWS + 1]
    if len(rows) < 2:
        return 0.0
    enc.transform(take(values, np.array(rows[:1])))  # loads the model
    start = time.perf_counter()
    enc.transform(take(values, np.array(rows[1:])))
    return (time.perf_counter() - start) / (len(rows) - 1)


def input_dims(features: FeatureSet, towers: dict[str, Any]) -> dict[str, int]:
    return {
        m: int(towers[m].out_dim) if m in towers else int(x.shape[1])
        for m, x in features.features.items()
    }


def fit_head(
    spec: PipelineSpec,
    train: FeatureSet,
    towers: dict[str, Any],
    n_classes: int,
    seed: int,
    on_epoch: EpochCallback | None = None,
    deadline: Deadline = NO_DEADLINE,
) -> tuple[Head, float | None]:
    """Train a head on ``train`` (inner hold-out for early stopping); returns it and a threshold.

    The head checks ``deadline`` between epochs or boosting rounds.
    """
    from mmbench.fusion import create_head

    assert train.labels is not None
    head = create_head(
        spec.fusion, spec.training, input_dims(train, towers), n_classes, seed=seed, towers=towers
    )
    head.deadline = deadline
    split = inner_split(train.labels, seed, train.groups)
    if split is None:
        head.fit(train, None, on_epoch=on_epoch)
        return head, None
    fit_part, stop_part = train.take(split[0]), train.take(split[1])
    head.fit(fit_part, stop_part, on_epoch=on_epoch)
    threshold = None
    if spec.training.threshold_tuning and n_classes == 2:
        assert stop_part.labels is not None
        threshold = tune_binary_threshold(stop_part.labels, head.predict_proba(stop_part)[:, 1])
    return head, threshold


def evaluate_pipeline(
    table: MultiModalTable,
    spec: PipelineSpec,
    folds: list[Fold],
    *,
    modalities: list[str] | None = None,
    cache: FeatureCache | None = None,
    on_epoch: Callable[[Fold, int, float], None] | None = None,
    on_fold: Callable[[FoldResult, int], None] | None = None,
    reraise: tuple[type[BaseException], ...] = (),
    test_time_missing: bool = False,
    deadline: Deadline = NO_DEADLINE,
) -> CVResult:
    """Cross-validate ``spec`` on ``table`` (restricted to ``modalities`` when given).

    ``deadline`` is checked before every fold and by the heads between epochs or boosting
    rounds; :class:`~mmbench.budget.DeadlineReached` propagates (the CV is incomplete).

    With ``test_time_missing``, each fold's trained head is also scored with every modality in
    turn marked missing on the validation rows (``FoldResult.missing_metrics``), which shows how
    gracefully the model degrades when a modality is absent at inference.

    A fold that raises becomes a :class:`FoldResult` with its error and the other folds still run,
    except for exception types in ``reraise`` (e.g. Optuna's pruning signal), which propagate.
    """
    modalities = modalities or [m for m in table.modalities if m in spec.encoders]
    cache = cache or FeatureCache(None)
    hits0, misses0 = cache.hits, cache.misses
    repeats = max(f.repeat for f in folds) + 1
    oof = np.full((repeats, len(table), table.n_classes), np.nan, dtype=np.float64)
    results: list[FoldResult] = []
    timing = {"encode": 0.0, "fit": 0.0}
    reraise = (*reraise, DeadlineReached)
    for i, fold in enumerate(folds):
        deadline.check(f"fold {fold.key}")
        result = _run_fold(
            table,
            spec,
            modalities,
            fold,
            cache,
            oof,
            timing,
            on_epoch,
            reraise,
            test_time_missing,
            deadline,
        )
        results.append(result)
        if on_fold is not None:
            on_fold(result, i)
    cache_stats = {"hits": cache.hits - hits0, "misses": cache.misses - misses0}
    timing["total"] = timing["encode"] + timing["fit"]
    return CVResult(spec, modalities, results, oof, timing, cache_stats)


def _run_fold(
    table: MultiModalTable,
    spec: PipelineSpec,
    modalities: list[str],
    fold: Fold,
    cache: FeatureCache,
    oof: np.ndarray,
    timing: dict[str, float],
    on_epoch: Callable[[Fold, int, float], None] | None,
    reraise: tuple[type[BaseException], ...],
    test_time_missing: bool = False,
    deadline: Deadline = NO_DEADLINE,
) -> FoldResult:
    start = time.perf_counter()
    result = FoldResult(key=fold.key)
    try:
        encoders = build_encoders(spec, modalities)
        features, towers = encode(table, encoders, fold.train, cache, deadline=deadline)
        encoded = time.perf_counter()
        timing["encode"] += encoded - start
        callback = None if on_epoch is None else (lambda e, s: on_epoch(fold, e, s))
        train = features.take(fold.train)
        head, threshold = fit_head(
            spec, train, towers, table.n_classes, fold.seed, callback, deadline
        )
        valid = features.take(fold.valid)
        predict_start = time.perf_counter()
        proba = head.predict_proba(valid)
        predict_ms = (time.perf_counter() - predict_start) * 1000 / max(1, len(fold.valid))
        fit_s = time.perf_counter() - encoded
        timing["fit"] += fit_s
        oof[fold.repeat, fold.valid] = proba
        result.metrics = compute_metrics(table.labels[fold.valid], proba, threshold=threshold)
        if test_time_missing and len(modalities) > 1:
            result.missing_metrics = {
                m: compute_metrics(
                    table.labels[fold.valid],
                    head.predict_proba(valid.drop({m})),
                    threshold=threshold,
                )
                for m in modalities
            }
        result.info = {
            **head.info(),
            "threshold": threshold,
            "predict_ms_per_row": predict_ms,
            "fit_s": fit_s,
        }
        assert train.labels is not None
        no_holdout = no_holdout_reason(train.labels, train.groups)
        if no_holdout is not None:  # trained without early stopping: say why
            result.info["no_holdout"] = no_holdout
    except reraise:
        raise
    except Exception as exc:  # a failed fold is a recorded result, not a crash
        result.error = f"{type(exc).__name__}: {exc}"
    result.seconds = time.perf_counter() - start
    return result


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


def transform(
    table: MultiModalTable,
    encoders: dict[str, Encoder],
    cache: FeatureCache | None = None,
    deadline: Deadline = NO_DEADLINE,
) -> dict[str, Any]:
    """Features of every row of ``table`` from fitted or frozen encoders (frozen ones through
    ``cache``, keyed like :func:`encode` keys them)."""
    cache = cache or FeatureCache(None)
    return {
        m: enc.transform(table[m])
        if enc.fits_on_data
        else frozen_features(table, m, enc, cache, deadline)
        for m, enc in encoders.items()
    }


def frozen_features(
    table: MultiModalTable,
    modality: str,
    enc: Encoder,
    cache: FeatureCache,
    deadline: Deadline = NO_DEADLINE,
) -> Any:
    """A frozen encoder's features of every row, cached once per (dataset, encoder spec)."""
    key = feature_key(table.fingerprint, modality, enc.spec(), None)
    return cache.get_or_compute(key, lambda: transform_in_chunks(enc, table[modality], deadline))


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
    """Train ``spec`` on every fold's training rows as :func:`evaluate_pipeline` does, and keep
    the models (frozen features come from ``cache``; the deadline is checked between folds and
    by the heads). Raises :class:`~mmbench.budget.DeadlineReached` when it passes."""
    modalities = modalities or [m for m in table.modalities if m in spec.encoders]
    frozen: dict[str, Encoder] = {}
    fitted: list[dict[str, Encoder]] = []
    heads: list[Head] = []
    for fold in folds:
        deadline.check(f"fold model {fold.key}")
        encoders = build_encoders(spec, modalities)
        features, towers = encode(table, encoders, fold.train, cache, keep_fitted=True)
        head, _ = fit_head(
            spec, features.take(fold.train), towers, table.n_classes, fold.seed, deadline=deadline
        )
        frozen = frozen or {m: e for m, e in encoders.items() if not e.fits_on_data}
        fitted.append({m: e for m, e in encoders.items() if e.fits_on_data})
        heads.append(head)
    return FoldModels(spec, list(table.classes), frozen, fitted, heads)

"""Named reference pipelines, runnable on any suite, so that every leaderboard has yardsticks.

A searched pipeline's score means little on its own: the references answer "better than what?".
Each one is built from the table's modalities alone (no tuning), with the default cheap encoders:

- ``early-fusion-mlp`` — :func:`mmbench.config.default_pipeline`: concatenated features, an MLP.
- ``xgboost-early-fusion`` — the same features into gradient-boosted trees.
- ``late-fusion-mlp`` — one MLP per modality, predictions averaged by the late-fusion head.
- ``single-best-modality`` — the default pipeline restricted to the one modality that scores
  best by cross-validation. **The selection uses the same folds that report its score**, so its
  CV score is optimistically biased (by the maximum over a handful of noisy estimates); it is a
  reference for "how far does the best single input get", not an unbiased estimate. A held-out
  test split, when the suite has one, is unaffected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mmbench.config import FusionSpec, PipelineSpec, default_pipeline
from mmbench.registry import Registry

if TYPE_CHECKING:
    from mmbench.data.table import MultiModalTable
    from mmbench.evaluation import Fold
    from mmbench.pipeline.cache import FeatureCache
    from mmbench.pipeline.cv import CVResult


@dataclass(frozen=True)
class ReferencePipeline:
    """A named recipe: modalities -> pipeline spec; ``selects_modality`` needs data to finish."""

    name: str
    description: str
    build: Callable[[list[str]], PipelineSpec]
    selects_modality: bool = False


REFERENCE_PIPELINES: Registry[ReferencePipeline] = Registry("reference pipeline")


def _reference(
    name: str, description: str, selects_modality: bool = False
) -> Callable[..., ReferencePipeline]:
    def decorator(build: Callable[[list[str]], PipelineSpec]) -> ReferencePipeline:
        ref = ReferencePipeline(name, description, build, selects_modality)
        REFERENCE_PIPELINES.register(name)(ref)
        return ref

    return decorator


def _with_fusion(modalities: list[str], fusion: str) -> PipelineSpec:
    spec = default_pipeline(modalities)
    spec.fusion = FusionSpec(name=fusion)
    return spec


@_reference("early-fusion-mlp", "default encoders, concatenated features, MLP head")
def early_fusion_mlp(modalities: list[str]) -> PipelineSpec:
    return default_pipeline(modalities)


@_reference("xgboost-early-fusion", "default encoders, concatenated features, XGBoost")
def xgboost_early_fusion(modalities: list[str]) -> PipelineSpec:
    return _with_fusion(modalities, "xgboost")


@_reference("late-fusion-mlp", "default encoders, one MLP per modality, averaged predictions")
def late_fusion_mlp(modalities: list[str]) -> PipelineSpec:
    return _with_fusion(modalities, "late")


@_reference(
    "single-best-modality",
    "default pipeline on the single modality with the best CV score (selected on the same folds)",
    selects_modality=True,
)
def single_best_modality(modalities: list[str]) -> PipelineSpec:
    """The candidate pipeline; :func:`select_single_best_modality` picks its one modality."""
    return default_pipeline(modalities)


def reference_pipeline(name: str, table_modalities: list[str]) -> PipelineSpec:
    """The spec of reference ``name`` for a table with these modalities.

    For ``single-best-modality`` this is the spec covering every modality; the modality itself is
    chosen with data by :func:`select_single_best_modality` (or :func:`evaluate_reference`).
    """
    return REFERENCE_PIPELINES.get(name).build(list(table_modalities))


@dataclass
class ModalityChoice:
    """The winner of a single-modality selection, with every candidate's CV result."""

    spec: PipelineSpec
    modalities: list[str]
    scores: dict[str, float]
    cv: CVResult
    candidates: dict[str, CVResult] = field(default_factory=dict)


def select_single_best_modality(
    table: MultiModalTable,
    folds: list[Fold],
    *,
    spec: PipelineSpec | None = None,
    primary: str = "f1_macro",
    cache: FeatureCache | None = None,
) -> ModalityChoice:
    """Cross-validate ``spec`` (default pipeline) on each modality alone; keep the best.

    Uses ``folds`` for both selection and the reported score (see the module docstring for the
    bias this implies). Ties go to the modality listed first in the table; a modality whose
    folds all fail scores NaN and is never chosen unless all do.
    """
    import math

    from mmbench.evaluation import METRICS
    from mmbench.pipeline.cv import evaluate_pipeline

    spec = spec or default_pipeline(table.modalities)
    sign = 1.0 if METRICS.get(primary).higher_is_better else -1.0
    candidates: dict[str, CVResult] = {}
    scores: dict[str, float] = {}
    for m in (m for m in table.modalities if m in spec.encoders):
        candidates[m] = evaluate_pipeline(table, spec, folds, modalities=[m], cache=cache)
        scores[m] = candidates[m].mean(primary)

    def key(m: str) -> float:
        return sign * scores[m] if math.isfinite(scores[m]) else -math.inf

    best = max(scores, key=key)  # max keeps the first of equal keys
    single = spec.model_copy(deep=True)
    single.encoders = {m: enc for m, enc in single.encoders.items() if m == best}
    return ModalityChoice(single, [best], scores, candidates[best], candidates)


def evaluate_reference(
    name: str,
    table: MultiModalTable,
    folds: list[Fold],
    *,
    primary: str = "f1_macro",
    cache: FeatureCache | None = None,
) -> tuple[PipelineSpec, CVResult]:
    """Build and cross-validate reference ``name`` on ``table``; returns the final spec and CV.

    The CV's scores are counted with the decision rule fitted on its own out-of-fold rows for
    ``primary`` (:func:`mmbench.evaluation.decide`), as every row of a leaderboard's are.
    """
    from mmbench.evaluation import decide
    from mmbench.pipeline.cv import evaluate_pipeline

    ref = REFERENCE_PIPELINES.get(name)
    spec = ref.build(list(table.modalities))
    if ref.selects_modality:
        choice = select_single_best_modality(table, folds, spec=spec, primary=primary, cache=cache)
        spec, cv = choice.spec, choice.cv
    else:
        cv = evaluate_pipeline(table, spec, folds, cache=cache)
    return spec, decide(cv, table.labels, folds, primary)

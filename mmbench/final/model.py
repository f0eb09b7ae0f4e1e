"""The final model of a search: an ensemble of trials with a tuned decision rule, fitted in time.

After the search, every trial that completed in this process has out-of-fold (OOF)
probabilities on the same folds. :func:`plan_ensemble` runs greedy ensemble selection over the
best of them (:mod:`mmbench.final.selection`), compares it nested with a stacker
(:mod:`mmbench.final.stacking`) and, when the primary metric depends on the decision (macro-F1,
balanced accuracy), gives each combiner the decision rule every row of a comparison gets
(:func:`mmbench.evaluation.decide`, on that combiner's own OOF predictions). :func:`fit_final`
then fits the members, heaviest first, for as long as the job's deadline allows, and returns one
model that predicts like a pipeline; one whose stacker lost an input to the deadline is the
blend, with the blend's rule and CV (:meth:`EnsemblePlan.cv_of`).

Why fold models rather than one refit on all rows: measured on held-out rows
(``benchmarks/refit_vs_average.py``, ``benchmarks/README.md`` §6), averaging a trial's five fold
models scored at least as well as refitting it in most (head, dataset) pairs and never much
worse, most of all for the MLP (emoji: macro-F1 0.817 vs 0.741), and ROC-AUC was higher in
every pair. They are also the very models whose out-of-fold predictions the ensemble weights and
decision rule were tuned on. The cost is the trial's own fit time again (measured, so checked
against the deadline) and one head per fold to store and run. A member whose fold models do not
fit in the time left is refitted once instead; one that fits neither way is dropped and the
others' weights renormalized (recorded).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from mmbench.budget import NO_DEADLINE, Deadline, DeadlineReached
from mmbench.evaluation import METRICS, Fold, compute_metrics, decide, tune_class_weights
from mmbench.final.selection import EnsembleSelection, neg_log_loss, oof_rows, select_ensemble
from mmbench.final.stacking import Stacker, compare_nested, stack_inputs
from mmbench.pipeline import (
    CVResult,
    FittedPipeline,
    FoldModels,
    FoldResult,
    dump,
    fit_fold_models,
    fit_pipeline,
)

if TYPE_CHECKING:
    from mmbench.data.table import MultiModalTable
    from mmbench.pipeline.cache import FeatureCache

MAX_CANDIDATES = 12
SelectBy = Literal["primary", "log_loss"]
Combiner = Literal["blend", "stack"]


def default_select_by(primary: str) -> SelectBy:
    """What the greedy climb maximizes for ``primary``.

    For a metric of decisions (macro-F1, balanced accuracy, accuracy) the decision rule already
    moves the thresholds, so the blend is chosen by log-loss, a proper score of the
    probabilities the rule thresholds: climbing the metric itself adds members because they shift
    decisions on the rows it is scored on, which the rule does without them, and costs ranking
    quality (``benchmarks/ensemble_selection.py``, ``benchmarks/README.md`` §16). A ranking
    metric (ROC-AUC, PR-AUC) is climbed as itself.
    """
    return "log_loss" if METRICS.get(primary).needs_labels else "primary"


@dataclass
class EnsemblePlan:
    """Which trials to blend, with which weights, and each combiner's CV and decision rule."""

    trials: list[int]
    weights: list[float]
    cvs: list[CVResult]
    selection: EnsembleSelection
    blend_cv: CVResult
    """The blend's out-of-fold CV, scored with its own decision rule (``blend_cv.decision``)."""
    candidates: int
    stacker: Stacker | None = None
    """Set when the stacked model beat the blend in the nested comparison: it then combines
    the members (in :attr:`stack_trials` order) instead of :attr:`weights`."""
    stack_trials: list[int] = field(default_factory=list)
    nested: dict[str, float] = field(default_factory=dict)
    """The blend's and the stacker's primary metric, each scored on folds its combination was
    not chosen or fitted on (:func:`mmbench.final.stacking.compare_nested`), and
    ``undefined_folds``: the folds left out of both because the metric is undefined there."""
    stack_cv: CVResult | None = None
    """The stacker's CV (each row from a stacker fitted without its fold) with the stacker's
    own decision rule; set with :attr:`stacker`."""

    @property
    def combiner(self) -> Combiner:
        return "stack" if self.stacker is not None else "blend"

    def cv_of(self, combiner: Combiner) -> CVResult:
        """The CV, with its decision rule, of the blend or of the stacker: a final model that
        falls back to the blend (:func:`fit_final`) is scored and decides as the blend."""
        if combiner == "stack":
            if self.stack_cv is None:
                raise ValueError("the plan has no stacker")
            return self.stack_cv
        return self.blend_cv

    @property
    def cv(self) -> CVResult:
        """The planned combiner's CV."""
        return self.cv_of(self.combiner)

    @property
    def decision(self) -> np.ndarray | None:
        """The planned combiner's decision weights (None: arg-max)."""
        return _weights(self.cv)


def _weights(cv: CVResult) -> np.ndarray | None:
    return cv.decision.weights if cv.decision is not None else None


def plan_ensemble(
    results: dict[int, CVResult],
    labels: np.ndarray,
    folds: list[Fold],
    primary: str,
    select_by: SelectBy | None = None,
) -> EnsemblePlan | None:
    """Select an ensemble among the best completed trials; None without a usable trial.

    ``select_by`` (default :func:`default_select_by`) is what the greedy climb maximizes: the
    primary metric itself, or log-loss, whose blend the decision rule then tunes for the metric.
    The :data:`MAX_CANDIDATES` candidates are the trials best by that same score.
    The blend's and, when adopted, the stacker's CV each get the decision rule fitted on their
    own out-of-fold probabilities (:func:`mmbench.evaluation.decide`, cross-fitted).
    """
    metric = METRICS.get(primary)
    sign = 1.0 if metric.higher_is_better else -1.0
    ok = {n: cv for n, cv in results.items() if cv.ok}
    select_by = select_by or default_select_by(primary)
    ranked = sorted(ok, key=lambda n: _rank_key(ok[n], primary, select_by))[:MAX_CANDIDATES]
    if not ranked:
        return None
    probas = [oof_rows(ok[n].oof)[0] for n in ranked]
    mask = np.logical_and.reduce([oof_rows(ok[n].oof)[1] for n in ranked])
    y = labels[mask]

    def score(t: np.ndarray, p: np.ndarray) -> float:
        return sign * metric.fn(t, p)

    objective = neg_log_loss if select_by == "log_loss" else None
    selection = select_ensemble([p[mask] for p in probas], y, score, objective=objective)
    chosen = sorted(selection.weights.items(), key=lambda kv: -kv[1])
    trials = [ranked[i] for i, _ in chosen]
    weights = [w for _, w in chosen]
    cvs = [ok[n] for n in trials]
    oof = np.asarray(sum(w * cv.oof for w, cv in zip(weights, cvs, strict=True)))
    heads = [ok[n].spec.fusion.name for n in ranked]
    stack = stack_inputs(list(selection.counts), heads)
    nested = compare_nested(
        [ok[n].oof for n in ranked],
        labels,
        folds,
        score,
        heads,
        objective=objective,
        decide=lambda y, p: tune_class_weights(y, p, primary),
    )
    blend_cv = _combined_cv(cvs[0], oof, labels, folds, primary)
    plan = EnsemblePlan(trials, weights, cvs, selection, blend_cv, len(ranked))
    plan.nested = {"blend": sign * nested.blend, "stack": sign * nested.stack}
    plan.nested["undefined_folds"] = float(nested.undefined)
    plan.stack_trials = [ranked[i] for i in stack]
    if nested.stack_wins:
        plan.stacker = Stacker(oof.shape[-1]).fit([probas[i][mask] for i in stack], y)
        # each row from a stacker whose inputs were chosen and fitted without its fold
        plan.stack_cv = _combined_cv(cvs[0], nested.stack_oof, labels, folds, primary)
        extra = [n for n in plan.stack_trials if n not in trials]  # fitted last, blend weight 0
        plan.trials, plan.weights = trials + extra, weights + [0.0] * len(extra)
        plan.cvs = cvs + [ok[n] for n in extra]
    return plan


def _rank_key(cv: CVResult, primary: str, select_by: SelectBy) -> float:
    """Sort key (lowest first) of a candidate for the climb: the best by what the climb
    maximizes (a log-loss climb's candidates are the best-calibrated trials, not the ones whose
    arg-max decisions scored best); a score the folds left undefined sorts last."""
    if select_by == "log_loss":
        value = cv.mean("log_loss")
        return value if math.isfinite(value) else math.inf
    value = cv.mean(primary) * (1.0 if METRICS.get(primary).higher_is_better else -1.0)
    return -value if math.isfinite(value) else math.inf


def _combined_cv(
    head: CVResult, oof: np.ndarray, labels: np.ndarray, folds: list[Fold], primary: str
) -> CVResult:
    """A combiner's out-of-fold probabilities scored fold by fold like a pipeline, with the
    decision rule fitted on them (:func:`mmbench.evaluation.decide`: cross-fitted)."""
    results = [
        FoldResult(
            key=fold.key, metrics=compute_metrics(labels[fold.valid], oof[fold.repeat, fold.valid])
        )
        for fold in folds
    ]
    cv = CVResult(head.spec, head.modalities, results, oof, {"encode": 0.0, "fit": 0.0}, {})
    return decide(cv, labels, folds, primary)


@dataclass
class FinalModel:
    """Weighted average of its members' probabilities (fold models or refitted pipelines), with
    a decision rule."""

    members: list[FittedPipeline | FoldModels]
    weights: list[float]
    classes: list[str]
    decision: np.ndarray | None = None
    trials: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    stacker: Stacker | None = None
    """Combines the members' probabilities instead of ``weights`` (the nested comparison chose
    it); inputs in ``stack_trials`` order."""
    stack_trials: list[int] = field(default_factory=list)

    @property
    def combiner(self) -> Combiner:
        """How the members are combined as fitted (see :meth:`EnsemblePlan.cv_of`)."""
        return "stack" if self.stacker is not None else "blend"

    def predict_proba(
        self,
        table: MultiModalTable,
        known: dict[int, np.ndarray] | None = None,
        cache: FeatureCache | None = None,
    ) -> np.ndarray:
        """The weighted blend; ``known`` maps trial -> its probabilities on ``table`` already
        computed by the caller; frozen features come from ``cache`` when given."""
        known = known or {}
        parts = [
            known[t] if t in known else m.predict_proba(table, cache)
            for t, m in zip(self.trials, self.members, strict=True)
        ]
        if self.stacker is not None:
            by_trial = dict(zip(self.trials, parts, strict=True))
            return self.stacker.predict_proba([by_trial[t] for t in self.stack_trials])
        total = sum(w * p for w, p in zip(self.weights, parts, strict=True))
        proba = np.asarray(total, dtype=np.float64)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, table: MultiModalTable) -> list[str]:
        from mmbench.evaluation import predict_labels

        labels = predict_labels(self.predict_proba(table), weights=self.decision)
        return [self.classes[i] for i in labels]

    def score(self, table: MultiModalTable) -> dict[str, float]:
        """Every metric on labelled rows (e.g. the held-out test source)."""
        return compute_metrics(table.labels, self.predict_proba(table), weights=self.decision)

    def save(self, path: str | Path) -> Path:
        return dump(self, path)

    @staticmethod
    def fit_kind(member: FittedPipeline | FoldModels) -> Literal["folds", "refit"]:
        return "folds" if isinstance(member, FoldModels) else "refit"

    def describe(self) -> str:
        """What the final model is, member by member, read off the fitted members themselves
        (a result file states it; nothing is assumed), e.g. ``trial 3: 5 fold models
        averaged; trial 7: refit on all training rows; trial 9: dropped (no time left)``."""
        parts = [
            f"trial {t}: {len(m.heads)} fold models averaged"
            if isinstance(m, FoldModels)
            else f"trial {t}: refit on all training rows"
            for t, m in zip(self.trials, self.members, strict=True)
        ]
        parts += [f"trial {t}: dropped (no time left)" for t in self.dropped]
        how = (
            f"stacked: a logistic regression over {len(self.stack_trials)} members' probabilities"
            if self.stacker is not None
            else "blended with weights " + ", ".join(f"{w:.2f}" for w in self.weights)
        )
        if self.stacker is None and len(self.weights) == 1:
            return "; ".join(parts)  # one member: nothing is combined
        return "; ".join(parts) + f" ({how})"


def fit_final(
    table: MultiModalTable,
    plan: EnsemblePlan,
    folds: list[Fold],
    *,
    seed: int,
    cache: FeatureCache | None = None,
    deadline: Deadline = NO_DEADLINE,
    fitted: dict[int, FittedPipeline] | None = None,
    bag_folds: list[Fold] | None = None,
) -> FinalModel:
    """Fit the plan's members, heaviest first, while the deadline allows.

    A member keeps its fold models (:func:`~mmbench.pipeline.fit_fold_models`, averaged) when
    their measured cost — the trial's own fit seconds over all folds — fits in the time left;
    otherwise it is refitted once on all rows (``fitted`` holds members already refitted, e.g.
    the best single trial, reused as they are). On a hold-out protocol (one fold per repeat:
    :class:`~mmbench.evaluation.Protocol`'s large tables) there is nothing to average, so a
    member is bagged over ``bag_folds`` (the whole k-fold split) when its measured fold cost
    times their number fits in the time left, else refitted on all rows, and its hold-out fold
    model is kept only when neither fits. The heaviest member is always kept; a later one
    that fits neither way is dropped and the others' weights renormalized.
    """
    fitted = dict(fitted or {})
    members: list[FittedPipeline | FoldModels] = []
    weights: list[float] = []
    trials: list[int] = []
    dropped: list[int] = []
    lone = len({f.fold for f in folds}) == 1  # a large table's hold-out: one model per repeat
    for trial, weight, cv in zip(plan.trials, plan.weights, plan.cvs, strict=True):
        member: FittedPipeline | FoldModels | None = None
        if bag_folds and len(bag_folds) > len(folds):  # scored on part of the split
            scale = len(bag_folds) / len(folds)
            member = _fold_models(table, cv, bag_folds, cache, deadline, scale)
        if (
            member is None
            and lone
            and (trial in fitted or not members or _refit_seconds(cv) <= deadline.remaining())
        ):
            member = fitted.get(trial) or fit_pipeline(
                table, cv.spec, seed=seed, modalities=cv.modalities, cache=cache
            )
        if member is None:
            member = _fold_models(table, cv, folds, cache, deadline)
        if member is None and (trial in fitted or not members):
            member = fitted.get(trial) or fit_pipeline(
                table, cv.spec, seed=seed, modalities=cv.modalities, cache=cache
            )
        elif member is None and _refit_seconds(cv) <= deadline.remaining():
            member = fit_pipeline(table, cv.spec, seed=seed, modalities=cv.modalities, cache=cache)
        if member is None:
            dropped.append(trial)
            continue
        members.append(member)
        weights.append(weight)
        trials.append(trial)
    stacked = plan.stacker is not None and not set(plan.stack_trials) - set(trials)
    if not stacked:  # members only the stacker needed are of no use to the blend
        keep = [i for i, w in enumerate(weights) if w > 0]
        members, weights, trials = (
            [members[i] for i in keep],
            [weights[i] for i in keep],
            [trials[i] for i in keep],
        )
    total = sum(weights)
    return FinalModel(
        members,
        [w / total for w in weights],
        list(table.classes),
        # without all its inputs the stacker gives way to the blend, with the blend's rule
        decision=_weights(plan.cv_of("stack" if stacked else "blend")),
        trials=trials,
        dropped=dropped,
        stacker=plan.stacker if stacked else None,
        stack_trials=plan.stack_trials if stacked else [],
    )


def _fold_models(
    table: MultiModalTable,
    cv: CVResult,
    folds: list[Fold],
    cache: FeatureCache | None,
    deadline: Deadline,
    scale: float = 1.0,
) -> FoldModels | None:
    """The trial's fold models when their measured cost (times ``scale``: ``folds`` holds that
    many times the trial's own) fits before the deadline, else None."""
    if scale * cv.seconds.get("fit", 0.0) > deadline.remaining():
        return None
    try:
        return fit_fold_models(table, cv.spec, folds, cv.modalities, cache=cache, deadline=deadline)
    except DeadlineReached:
        return None


def _refit_seconds(cv: CVResult) -> float:
    """One fold's fit time, scaled from its training rows to all rows (a cautious estimate)."""
    n_folds = max(1, sum(1 for f in cv.folds if f.ok))
    return 1.5 * cv.seconds.get("fit", 0.0) / n_folds

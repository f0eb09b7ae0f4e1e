"""A job's cross-validation result built into its :class:`~mmbench.results.RunResult`: scores,
folds, chance levels, diagnostics (confusion matrix, ROC/PR curves), a search's history, and
where it ran.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from mmbench.errors import MMBenchError
from mmbench.results.schema import (
    AblationSummary,
    ClassMetrics,
    Curve,
    Diagnostics,
    RunResult,
    SearchSummary,
    TrialPoint,
)

if TYPE_CHECKING:
    from mmbench.data.table import MultiModalTable
    from mmbench.pipeline import CVResult
    from mmbench.suite import DatasetSpec, Suite


def build_result(
    suite: Suite,
    spec: DatasetSpec,
    table: MultiModalTable,
    cv: CVResult,
    pipeline_name: str,
    wall: float,
    search: SearchSummary | None = None,
    test_metrics: dict[str, float] | None = None,
    ablation: AblationSummary | None = None,
) -> RunResult:
    """The complete result record of one job, ready to be written (tracking ids come later).

    ``cv.decision`` (:func:`mmbench.evaluation.decide`) is the rule its label metrics were
    counted with, recorded as the result's ``decision``; a CV that was never decided is an
    error, so that no row of a leaderboard is scored by another rule than the others.
    """
    from mmbench.device import resolve_device
    from mmbench.evaluation import chance_level
    from mmbench.results.provenance import provenance
    from mmbench.results.schema import DatasetInfo, DecisionRecord, FoldRecord

    if getattr(cv, "decision", None) is None:
        raise MMBenchError(
            f"{spec.name} ({pipeline_name}): its CV has no decision rule; "
            "pass it through mmbench.evaluation.decide first"
        )
    summary = cv.summary
    return RunResult(
        suite=suite.name,
        dataset=DatasetInfo(
            name=spec.name,
            source=spec.source.describe(),
            revision=spec.source.revision,
            fingerprint=table.fingerprint,
            n_rows=len(table),
            n_classes=table.n_classes,
            classes=table.classes,
            modalities=cv.modalities,
            recipe=table.meta.get("recipe"),
            groups=None if table.groups is None else len(set(table.groups)),
            card=spec.card.model_dump() if spec.card else None,
            inferred_modalities=table.meta.get("inferred_modalities"),
            subsample=table.meta.get("subsample"),
        ),
        pipeline_name=pipeline_name,
        pipeline=cv.spec,
        seed=suite.seed,
        protocol=spec.protocol,
        metrics=summary,
        chance={m: chance_level(m, table.labels, table.n_classes) for m in summary},
        folds=[
            FoldRecord(key=f.key, metrics=f.metrics, seconds=f.seconds, error=f.error)
            for f in cv.folds
        ],
        test_metrics=test_metrics,
        durations={**cv.seconds, **predict_cost(cv), "wall": wall},
        search=search,
        ablation=ablation,
        diagnostics=diagnostics(cv, table),
        decision=DecisionRecord.of(cv.decision),
        out_of_fold=out_of_fold(suite, spec, table, cv),
        provenance=provenance(str(resolve_device(_device(cv.spec)))),
    )


def out_of_fold(suite: Suite, spec: DatasetSpec, table: MultiModalTable, cv: Any) -> Any:
    """The CV's row-level predictions (:class:`~mmbench.results.rows.OutOfFold`) on the
    protocol's folds of ``table``; None when those are not the folds the CV ran on (their keys
    or rows differ: a CV on other rows records no row-level predictions rather than wrong ones)."""
    from mmbench.results.rows import OutOfFold, decided_rows

    oof = getattr(cv, "oof", None)
    if oof is None or oof.shape[1] != len(table):
        return None
    protocol = spec.protocol
    folds = protocol.folds_for(table.labels, suite.seed, table.groups)
    if [f.key for f in folds] != [f.key for f in cv.folds]:
        return None
    for fold, scored in zip(folds, cv.folds, strict=True):
        if scored.ok and not np.isfinite(oof[fold.repeat, fold.valid]).all():
            return None  # these rows were not this fold's validation rows
    fold_of, pred, proba, n_classes = decided_rows(cv, folds, table.labels, protocol.primary_metric)
    return OutOfFold.of(table.labels, fold_of, pred, proba, n_classes)


def predict_cost(cv: Any) -> dict[str, float]:
    """Mean milliseconds per predicted row over the folds that measured it."""
    values = [f.info["predict_ms_per_row"] for f in cv.folds if "predict_ms_per_row" in f.info]
    return {"predict_ms_per_row": sum(values) / len(values)} if values else {}


CURVE_POINTS = 40


def oof_average(oof: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average out-of-fold probabilities over repeats; returns (proba, mask of scored rows).
    Rows no fold scored (a large table's hold-out protocol, a failed fold) stay NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mean of an empty slice: NaN
        proba = np.nanmean(oof, axis=0)
    mask = ~np.isnan(proba).any(axis=1)
    return proba, mask


def diagnostics(cv: Any, table: MultiModalTable) -> Diagnostics | None:
    """Confusion matrix and one-vs-rest ROC/PR curves of the out-of-fold probabilities (averaged
    over repeats); None when no row was scored."""
    import numpy as np
    from sklearn.metrics import (
        average_precision_score,
        confusion_matrix,
        precision_recall_curve,
        roc_auc_score,
        roc_curve,
    )

    oof = getattr(cv, "oof", None)
    if oof is None or not np.isfinite(oof).any():
        return None
    proba, mask = oof_average(oof)
    y, p = table.labels[mask], proba[mask]
    n = table.n_classes
    roc, pr = {}, {}
    for c, name in enumerate(table.classes):
        truth = y == c
        if truth.all() or not truth.any():
            continue
        fpr, tpr, _ = roc_curve(truth, p[:, c])
        roc[name] = _curve(fpr, tpr, roc_auc_score(truth, p[:, c]))
        precision, recall, _ = precision_recall_curve(truth, p[:, c])
        pr[name] = _curve(recall[::-1], precision[::-1], average_precision_score(truth, p[:, c]))
    predicted = p.argmax(axis=1)
    matrix = confusion_matrix(y, predicted, labels=list(range(n)))
    return Diagnostics(
        classes=list(table.classes),
        confusion=matrix.tolist(),
        roc=roc,
        pr=pr,
        per_class=per_class(y, predicted, table.classes),
    )


def per_class(y: Any, predicted: Any, classes: list[str]) -> dict[str, ClassMetrics]:
    """Precision, recall, F1 and support of each class for the arg-max decision (0 where a
    class is never predicted, as scikit-learn's ``zero_division=0``)."""
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, s = precision_recall_fscore_support(
        y, predicted, labels=list(range(len(classes))), zero_division=0
    )
    return {
        name: ClassMetrics(
            precision=float(p[i]), recall=float(r[i]), f1=float(f[i]), support=int(s[i])
        )
        for i, name in enumerate(classes)
    }


def _curve(x: Any, y: Any, area: float) -> Curve:
    """At most :data:`CURVE_POINTS` points of a curve, its ends kept."""
    import numpy as np

    keep = np.unique(np.linspace(0, len(x) - 1, min(len(x), CURVE_POINTS)).round().astype(int))
    return Curve(
        x=[round(float(v), 4) for v in x[keep]],
        y=[round(float(v), 4) for v in y[keep]],
        area=float(area),
    )


def search_history(study: Any, n_folds: int) -> list[TrialPoint]:
    """Every trial of an Optuna study, in order, for the result file's search history."""
    from mmbench.search.fidelity import RUNG_ATTR, fidelity_of

    points = []
    for t in study.get_trials(deepcopy=False):
        value = t.values[0] if t.values else None
        fusion = t.params.get("fusion") or (t.user_attrs.get("pipeline") or {}).get("fusion", {})
        state = "declined" if t.user_attrs.get("declined") else t.state.name.lower()
        rung = t.user_attrs.get(RUNG_ATTR) or {}
        points.append(
            TrialPoint(
                number=t.number,
                state=state,
                value=value,
                fusion=fusion if isinstance(fusion, str) else fusion.get("name"),
                seconds=t.duration.total_seconds() if t.duration is not None else None,
                fidelity=fidelity_of(t, n_folds),
                outcome=trial_outcome(t, state),
                rung_score=rung.get("score"),
            )
        )
    return points


def trial_outcome(trial: Any, state: str) -> str:
    """Why a trial ended, in words (the rule that pruned it, the deadline, the budget check)."""
    attrs = trial.user_attrs
    if state == "declined":
        return f"declined: {attrs.get('reason', 'it would not fit in the time left')}"
    if state == "pruned":
        if "pruned_by" in attrs:
            return str(attrs["pruned_by"])
        if "reason" in attrs:
            return f"cut by the deadline: {attrs['reason']}"
        return "pruned by the pruner after fold scores below the best trial's"
    if "duplicate_of" in attrs:
        return f"skipped: repeats trial {attrs['duplicate_of']}"
    if "surplus" in attrs:
        return "skipped: the study's trial budget was taken by other workers"
    if state == "fail":
        return f"failed: {attrs.get('error', 'no reason recorded')}"
    if state == "waiting":
        return "not run: the search ended first"
    return state


def _device(spec: Any) -> str:
    """The device a pipeline trains on; peers (no torch training spec) run where they run."""
    training = getattr(spec, "training", None)
    return "auto" if training is None else training.device

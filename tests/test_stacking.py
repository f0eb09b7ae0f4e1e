"""The stacked combiner of the final model, and the nested comparison that adopts it or not."""

from __future__ import annotations

import dataclasses

import numpy as np
from test_final import fake_cv

from mmbench.config import PipelineSpec
from mmbench.evaluation import METRICS, cv_folds
from mmbench.final import plan_ensemble
from mmbench.final.stacking import Stacker, compare_nested

F1 = METRICS.get("f1_macro").fn


def swapped(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A model that knows the class but names it wrong (class k reported as k+1): a weighted
    average can only dilute it; a stacker learns the mapping."""
    proba = 0.1 * rng.dirichlet(np.ones(3), size=len(labels))
    proba[np.arange(len(labels)), (labels + 1) % 3] += 0.9
    return proba[None]


def with_head(cv, fusion: str):  # type: ignore[no-untyped-def]
    return dataclasses.replace(cv, spec=PipelineSpec.model_validate({"fusion": {"name": fusion}}))


def test_the_stacker_is_adopted_when_it_beats_the_blend_on_folds_it_did_not_see() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 600)
    folds = cv_folds(labels, 4, 1, seed=0)
    weak = 0.5 * np.eye(3)[labels] + rng.dirichlet(np.ones(3), size=600)  # right ~70 %
    results = {
        1: fake_cv((weak / weak.sum(1, keepdims=True))[None], labels, folds),
        2: with_head(fake_cv(swapped(labels, rng), labels, folds), "xgboost"),
    }
    plan = plan_ensemble(results, labels, folds, "f1_macro")
    assert plan is not None and plan.combiner == "stack"
    assert plan.nested["stack"] > plan.nested["blend"] + 0.1
    # the plan's CV is the stacker's nested out-of-fold score, not one fitted on those rows
    assert plan.cv.mean("f1_macro") > 0.95
    # the blend alone would use trial 1 only; the stacker also needs trial 2, another head
    assert plan.stack_trials == [1, 2] and plan.trials == [1, 2] and plan.weights == [1.0, 0.0]


def test_the_blend_is_kept_when_the_stacker_does_not_earn_its_parameters() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 300)
    folds = cv_folds(labels, 3, 1, seed=0)
    good = np.eye(3)[labels] * 0.6 + 0.4 * rng.dirichlet(np.ones(3), size=300)  # arg-max right
    plan = plan_ensemble({0: fake_cv(good[None], labels, folds)}, labels, folds, "f1_macro")
    assert plan is not None and plan.combiner == "blend" and plan.stacker is None
    assert plan.nested["blend"] == 1.0


def test_nested_stacker_never_sees_the_fold_it_predicts() -> None:
    """Labels that are pure noise: a stacker scored on rows it was fitted on would look better
    than chance; nested, it cannot."""
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 400)
    folds = cv_folds(labels, 4, 1, seed=0)
    candidates = [rng.dirichlet(np.ones(3), size=400)[None] for _ in range(4)]
    nested = compare_nested(candidates, labels, folds, F1, ["linear", "xgboost", "early", "late"])
    assert not np.isnan(nested.stack_oof[0]).any()
    assert nested.stack < 0.42  # chance macro-F1 is ~0.33
    member_inputs = [c[0] for c in candidates]
    refit = Stacker(3).fit(member_inputs, labels).predict_proba(member_inputs)
    assert F1(labels, refit) > nested.stack  # what scoring on its own rows would report


def test_nested_blend_is_selected_without_the_fold_it_is_scored_on() -> None:
    """Every score the comparison computes (the blend's climb, the decision rule, the fold's
    own score) sees either the other folds' rows or the fold's, never all rows at once: a
    blend chosen on rows that include the fold would score that fold in-sample."""
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 3, 300)
    folds = cv_folds(labels, 3, 1, seed=0)
    candidates = [rng.dirichlet(np.ones(3), size=300)[None] for _ in range(3)]
    seen: list[int] = []

    def spy(y: np.ndarray, p: np.ndarray) -> float:
        seen.append(len(y))
        return F1(y, p)

    compare_nested(candidates, labels, folds, spy, ["linear", "xgboost", "early"], objective=spy)
    assert seen and max(seen) <= max(len(labels) - len(f.valid) for f in folds)


def test_a_stacker_missing_an_input_falls_back_to_the_blend(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from conftest import FAST_TRAINING, tiny_suite

    from mmbench.budget import Deadline
    from mmbench.data import load_table
    from mmbench.final import fit_final
    from mmbench.pipeline import evaluate_pipeline

    suite = tiny_suite(tmp_path, n_rows=120, folds=3)
    table = load_table(suite.datasets[0], suite.root, seed=0)
    folds = cv_folds(table.labels, 3, 1, seed=0)
    encoders = {"text": "tfidf", "tabular": "tabular"}
    specs = [
        PipelineSpec.model_validate({"encoders": encoders, "fusion": f, "training": FAST_TRAINING})
        for f in ("linear", "early")
    ]
    results = {i: evaluate_pipeline(table, s, folds) for i, s in enumerate(specs)}
    plan = plan_ensemble(results, table.labels, folds, "f1_macro")
    assert plan is not None
    plan.stacker = Stacker(table.n_classes).fit(
        [np.nanmean(results[i].oof, axis=0) for i in (0, 1)], table.labels
    )
    plan.trials, plan.weights, plan.cvs = [0, 1], [1.0, 0.0], [results[0], results[1]]
    plan.stack_trials = [0, 1]
    final = fit_final(table, plan, folds, seed=0)
    assert final.stacker is not None and "stacked" in final.describe()
    stacked = final.predict_proba(table)
    assert np.allclose(stacked.sum(1), 1)
    # no time for trial 1: the stacker lacks an input, so the blend predicts, without trial 1
    expired = fit_final(table, plan, folds, seed=0, deadline=Deadline.after(-1))
    assert expired.stacker is None and expired.trials == [0] and expired.dropped == [1]
    assert expired.describe().endswith("trial 1: dropped (no time left)")


def test_a_fold_where_the_metric_is_undefined_is_left_out_of_both_means() -> None:
    """AUC in a fold that lacks a class is undefined: both combiners are compared on the other
    folds, and the count of the fold left out reaches the plan (and the result file)."""
    auc = METRICS.get("roc_auc").fn
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 300)
    folds = cv_folds(labels, 3, 1, seed=0)
    labels[folds[0].valid[labels[folds[0].valid] == 2]] = 1  # fold 0 lacks class 2
    candidates = [
        (0.4 * np.eye(3)[labels] + rng.dirichlet(np.ones(3), size=300))[None] for _ in range(2)
    ]
    candidates = [c / c.sum(-1, keepdims=True) for c in candidates]
    nested = compare_nested(candidates, labels, folds, auc, ["early", "xgboost"])
    assert nested.undefined == 1
    assert np.isfinite(nested.blend) and np.isfinite(nested.stack)

    nothing = compare_nested(
        candidates, labels, folds, lambda y, p: float("nan"), ["early", "xgboost"]
    )
    assert nothing.undefined == 3 and not nothing.stack_wins

    plan = plan_ensemble(
        {i: fake_cv(c, labels, folds) for i, c in enumerate(candidates)}, labels, folds, "roc_auc"
    )
    assert plan is not None and plan.nested["undefined_folds"] == 1
    assert np.isfinite(plan.nested["blend"])


def test_a_final_model_that_falls_back_to_the_blend_keeps_the_blends_rule_and_cv() -> None:
    """The stacker wins, but the deadline drops one of its inputs: the final model is the
    blend, so it decides with the rule tuned on the blend's out-of-fold rows and is scored
    with the blend's CV, not the stacker's."""
    from types import SimpleNamespace

    from mmbench.budget import Deadline
    from mmbench.evaluation import tune_class_weights
    from mmbench.final import fit_final

    rng = np.random.default_rng(3)
    labels = (rng.random(600) < 0.2).astype(np.int64)  # a rare class 1
    folds = cv_folds(labels, 3, 1, seed=0)
    p1 = np.clip(0.3 * labels + rng.normal(0.2, 0.1, 600), 0.01, 0.99)  # under-predicts it
    shy = np.stack([1 - p1, p1], axis=1)[None]
    flipped = np.eye(2)[1 - labels] * 0.8 + 0.1  # knows the class, names the other one
    results = {
        1: fake_cv(shy, labels, folds),
        2: with_head(fake_cv(flipped[None], labels, folds), "xgboost"),
    }
    plan = plan_ensemble(results, labels, folds, "f1_macro")
    assert plan is not None and plan.combiner == "stack" and plan.trials == [1, 2]
    blend_rule = tune_class_weights(labels, shy[0], "f1_macro")  # the blend is trial 1 alone
    assert blend_rule is not None and blend_rule[1] > blend_rule[0]

    table = SimpleNamespace(classes=["no", "yes"])
    model = object()  # trial 1 is already fitted; trial 2 has no time left and is dropped
    final = fit_final(table, plan, folds, seed=0, deadline=Deadline.after(-1), fitted={1: model})
    assert final.stacker is None and final.trials == [1] and final.dropped == [2]
    assert final.decision is not None
    np.testing.assert_allclose(final.decision, blend_rule)
    cv = plan.cv_of(final.combiner)
    assert cv is plan.blend_cv and cv is not plan.cv  # scored as the blend it is
    assert cv.decision is not None and cv.mean("f1_macro") < plan.cv.mean("f1_macro")

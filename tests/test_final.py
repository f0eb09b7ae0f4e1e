"""The final model: ensemble plan from trials' out-of-fold predictions, a decision rule that must
earn its place on rows it was not tuned on, and refitted members within the deadline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import FAST_TRAINING, tiny_suite

from mmbench.budget import Deadline
from mmbench.config import PipelineSpec
from mmbench.data import load_table
from mmbench.evaluation import compute_metrics, cv_folds, fit_decision_rule
from mmbench.final import fit_final, plan_ensemble
from mmbench.pipeline import CVResult, FoldModels, FoldResult, evaluate_pipeline, fit_fold_models


def fake_cv(oof: np.ndarray, labels: np.ndarray, folds: list) -> CVResult:
    from mmbench.evaluation import compute_metrics

    results = [FoldResult(f.key, compute_metrics(labels[f.valid], oof[0, f.valid])) for f in folds]
    return CVResult(PipelineSpec(), ["text"], results, oof, {"fit": 1.0}, {})


def expert(labels: np.ndarray, good: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    proba = rng.dirichlet(np.ones(3), size=len(labels))
    proba[good] = 0.05
    proba[good, labels[good]] = 0.9
    return proba[None]


def test_plan_blends_complementary_trials_and_scores_the_blend_per_fold() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    folds = cv_folds(labels, 3, 1, seed=0)
    half = np.arange(300) < 150
    results = {
        4: fake_cv(expert(labels, half, rng), labels, folds),
        7: fake_cv(expert(labels, ~half, rng), labels, folds),
        9: fake_cv(rng.dirichlet(np.ones(3), size=300)[None], labels, folds),
    }
    plan = plan_ensemble(results, labels, folds, "f1_macro")
    assert plan is not None and set(plan.trials) == {4, 7}
    assert abs(sum(plan.weights) - 1) < 1e-9
    assert plan.cv.mean("f1_macro") > max(results[4].mean("f1_macro"), results[7].mean("f1_macro"))
    assert len(plan.cv.folds) == 3 and plan.candidates == 3


def test_decision_rule_is_dropped_when_it_does_not_help_held_out_folds() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 300)
    folds = cv_folds(labels, 3, 1, seed=0)
    calibrated = np.eye(3)[labels] * 0.6 + 0.4 * rng.dirichlet(np.ones(3), size=300)
    plan = plan_ensemble({0: fake_cv(calibrated[None], labels, folds)}, labels, folds, "f1_macro")
    assert plan is not None and plan.decision is None  # arg-max is already right


def test_decision_rule_adopted_for_a_systematically_under_predicted_class() -> None:
    rng = np.random.default_rng(2)
    labels = (rng.random(900) < 0.15).astype(np.int64)  # rare class 1
    folds = cv_folds(labels, 3, 1, seed=0)
    p1 = np.clip(0.3 * labels + rng.normal(0.2, 0.1, 900), 0.01, 0.99)  # under-confident
    oof = np.stack([1 - p1, p1], axis=1)[None]
    decision = fit_decision_rule(oof, labels, folds, "f1_macro").weights  # the blend's OOF
    assert decision is not None and decision[1] > decision[0]
    # the plan recalibrates it (a stacker, nested-scored) or applies the rule: better either way
    plan = plan_ensemble({0: fake_cv(oof, labels, folds)}, labels, folds, "f1_macro")
    assert plan is not None
    assert plan.cv.mean("f1_macro") > fake_cv(oof, labels, folds).mean("f1_macro") + 0.05


def test_fit_final_refits_members_and_drops_those_that_do_not_fit_in_time(tmp_path: Path) -> None:
    suite = tiny_suite(tmp_path, n_rows=120, folds=3)
    table = load_table(suite.datasets[0], suite.root, seed=0)
    folds = cv_folds(table.labels, 3, 1, seed=0)
    specs = [
        PipelineSpec.model_validate(
            {
                "encoders": {"text": "tfidf", "tabular": "tabular"},
                "fusion": f,
                "training": FAST_TRAINING,
            }
        )
        for f in ("linear", "early")
    ]
    results = {i: evaluate_pipeline(table, s, folds) for i, s in enumerate(specs)}
    plan = plan_ensemble(results, table.labels, folds, "f1_macro")
    assert plan is not None
    plan.trials, plan.weights, plan.cvs = [0, 1], [0.5, 0.5], [results[0], results[1]]
    plan.stacker = None  # the blend (stacking: test_stacking.py)
    final = fit_final(table, plan, folds, seed=0)
    proba = final.predict_proba(table)
    assert proba.shape == (len(table), table.n_classes) and np.allclose(proba.sum(1), 1)
    assert final.trials == [0, 1] and final.dropped == []
    assert [final.fit_kind(m) for m in final.members] == ["folds", "folds"]
    expired = fit_final(table, plan, folds, seed=0, deadline=Deadline.after(-1))
    assert expired.trials == [0] and expired.dropped == [1] and expired.weights == [1.0]
    assert final.fit_kind(expired.members[0]) == "refit"  # the heaviest is always kept
    # the final model's scores are those of its decisions (decision weights included)
    final.decision = np.array([1.0, 1.0, 50.0])  # a rule that predicts class 2 far more often
    labels = np.array([final.classes.index(c) for c in final.predict(table)])
    assert final.score(table)["accuracy"] == np.mean(labels == table.labels)
    assert final.score(table)["accuracy"] != compute_metrics(table.labels, proba)["accuracy"]
    # what a result file says the final model is comes from the members that were fitted
    assert final.describe() == (
        "trial 0: 3 fold models averaged; trial 1: 3 fold models averaged "
        "(blended with weights 0.50, 0.50)"
    )
    assert expired.describe() == (
        "trial 0: refit on all training rows; trial 1: dropped (no time left)"
    )
    loaded = final.save(tmp_path / "ensemble.joblib")
    assert loaded.exists()


def test_fold_models_are_the_models_the_cv_scored(tmp_path: Path) -> None:
    """Each kept fold model reproduces its fold's out-of-fold predictions, so weights tuned on
    those predictions describe the final model; new rows get the average of the folds."""
    suite = tiny_suite(tmp_path, n_rows=120, folds=3)
    table = load_table(suite.datasets[0], suite.root, seed=0)
    folds = cv_folds(table.labels, 3, 1, seed=0)
    for fusion in ("linear", "early"):
        spec = PipelineSpec.model_validate(
            {
                "encoders": {"text": "tfidf", "tabular": "tabular"},
                "fusion": fusion,
                "training": FAST_TRAINING,
            }
        )
        cv = evaluate_pipeline(table, spec, folds)
        models = fit_fold_models(table, spec, folds)
        assert len(models.heads) == 3 and set(models.frozen) | set(models.fitted[0]) == {
            "text",
            "tabular",
        }
        for i, fold in enumerate(folds):
            one = FoldModels(
                spec, table.classes, models.frozen, [models.fitted[i]], [models.heads[i]]
            )
            rows = table.subset(fold.valid)
            assert np.allclose(one.predict_proba(rows), cv.oof[0, fold.valid], atol=1e-6), fusion
        each = [
            FoldModels(spec, table.classes, models.frozen, [f], [h]).predict_proba(table)
            for f, h in zip(models.fitted, models.heads, strict=True)
        ]
        assert np.allclose(models.predict_proba(table), np.mean(each, axis=0))


def test_a_decision_rule_on_uninformative_predictions_is_mostly_refused() -> None:
    """The rule must earn its place on rows it was not tuned on. On predictions that carry no
    information (60 rows of noise, 12 draws) it was adopted 4 times of 12; weights tuned on the
    scored fold's own rows always look better there, and would be adopted all 12 times."""
    adopted = 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        labels = rng.integers(0, 3, 60)
        folds = cv_folds(labels, 3, 1, seed=0)
        noise = rng.dirichlet(np.ones(3), size=60)[None]
        plan = plan_ensemble({0: fake_cv(noise, labels, folds)}, labels, folds, "f1_macro")
        assert plan is not None
        adopted += plan.decision is not None
    assert adopted <= 6


def test_the_best_trials_are_the_ensembles_candidates() -> None:
    """Only the MAX_CANDIDATES best trials are blended: those by the climb's score, so the
    best one is in."""
    from mmbench.final import MAX_CANDIDATES

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 300)
    folds = cv_folds(labels, 3, 1, seed=0)
    results = {
        t: fake_cv(rng.dirichlet(np.ones(3), size=300)[None], labels, folds) for t in range(14)
    }
    results[14] = fake_cv(expert(labels, np.ones(300, dtype=bool), rng), labels, folds)
    plan = plan_ensemble(results, labels, folds, "f1_macro")
    assert plan is not None and plan.candidates == MAX_CANDIDATES
    assert plan.trials == [14]  # right on every row: nothing to add to it


def test_a_log_loss_climb_draws_its_candidates_by_log_loss() -> None:
    """Twelve over-confident trials decide better by arg-max than a calibrated one, whose
    probabilities are the best: ranked by macro-F1 it would not even be a candidate."""
    from mmbench.final import MAX_CANDIDATES

    rng = np.random.default_rng(5)
    labels = (rng.random(900) < 0.3).astype(np.int64)
    folds = cv_folds(labels, 3, 1, seed=0)
    truth = np.clip(0.3 + 0.3 * (labels - 0.3) + rng.normal(0, 0.2, 900), 0.02, 0.98)
    results = {}
    for t in range(MAX_CANDIDATES):  # right side of 0.5 more often, but sure of every guess
        hard = np.where(rng.random(900) < 0.85, labels, 1 - labels)
        sure = np.where(hard == 1, 0.97, 0.03)
        results[t] = fake_cv(np.stack([1 - sure, sure], axis=1)[None], labels, folds)
    calibrated = MAX_CANDIDATES
    results[calibrated] = fake_cv(np.stack([1 - truth, truth], axis=1)[None], labels, folds)
    by_f1 = sorted(results, key=lambda n: -results[n].mean("f1_macro"))[:MAX_CANDIDATES]
    assert calibrated not in by_f1  # the old ranking left it out
    plan = plan_ensemble(results, labels, folds, "f1_macro")
    assert plan is not None and calibrated in plan.trials


def test_decision_metrics_climb_log_loss_and_ranking_metrics_climb_themselves() -> None:
    """For macro-F1 the blend is chosen by log-loss and the decision rule does the thresholding
    (a member that only moves decisions is not blended in); for ROC-AUC the metric itself."""
    from mmbench.final.model import default_select_by

    assert default_select_by("f1_macro") == "log_loss"
    assert default_select_by("balanced_accuracy") == "log_loss"
    assert default_select_by("roc_auc") == "primary"
    rng = np.random.default_rng(4)
    labels = (rng.random(1200) < 0.2).astype(np.int64)
    folds = cv_folds(labels, 3, 1, seed=0)
    score = np.clip(0.35 * labels + rng.normal(0.3, 0.15, 1200), 0.01, 0.99)
    shifted = np.clip(score + 0.3, 0.01, 0.99)
    results = {
        0: fake_cv(np.stack([1 - score, score], axis=1)[None], labels, folds),
        1: fake_cv(np.stack([1 - shifted, shifted], axis=1)[None], labels, folds),
    }
    by_loss = plan_ensemble(results, labels, folds, "f1_macro")
    by_metric = plan_ensemble(results, labels, folds, "f1_macro", select_by="primary")
    assert by_loss is not None and by_metric is not None
    assert by_loss.trials[: len(by_loss.selection.counts)] == [0]
    assert by_loss.decision is not None  # the threshold comes from the rule, not a member
    assert by_loss.cv.mean("f1_macro") >= by_metric.cv.mean("f1_macro") - 0.01

"""The CI gate: row-level paired bootstrap, minimum effect, Holm across datasets, fit-time ratio."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import make_result

from mmbench.cli import main
from mmbench.data.table import MultiModalTable
from mmbench.errors import MMBenchError
from mmbench.evaluation import macro_f1
from mmbench.gate import (
    BASELINE_SCHEMA_VERSION,
    Rerun,
    baseline_from_reruns,
    compare,
    read_baseline,
    regress,
    write_baseline,
)
from mmbench.gate.baseline import rows_of, rows_record
from mmbench.gate.paired import RowPredictions, holm, paired_bootstrap
from mmbench.suite import RegressRule, load_suite

N, K = 2000, 5
RULE = RegressRule(resamples=500)
_rng = np.random.default_rng(0)
LABELS = _rng.integers(0, 3, N)
FOLDS = (np.arange(N) % K)[None, :]
BASE = np.where(_rng.random(N) < 0.75, LABELS, _rng.integers(0, 3, N))


def flip(pred: np.ndarray, worse: int, better: int = 0, seed: int = 1) -> np.ndarray:
    """``worse`` correct rows made wrong and ``better`` wrong rows made right, chosen at random."""
    rng = np.random.default_rng(seed)
    out, labels = pred.copy(), LABELS[: len(pred)]
    right, wrong = np.flatnonzero(pred == labels), np.flatnonzero(pred != labels)
    hit = rng.choice(right, worse, replace=False)
    out[hit] = (labels[hit] + 1) % 3
    fixed = rng.choice(wrong, better, replace=False)
    out[fixed] = labels[fixed]
    return out


def rerun(
    pred: np.ndarray, *, fit: float = 1.0, reference: float = 1.0, n: int = N, **kw: Any
) -> Rerun:
    """A dataset's rerun whose fold scores are the macro-F1 of ``pred`` on each fold."""
    folds = FOLDS[:, :n]
    scores = [macro_f1(LABELS[:n][folds[0] == f], pred[:n][folds[0] == f], 3) for f in range(K)]
    result = make_result(kw.pop("dataset", "d"), "regress", scores=scores, **kw)
    rows = RowPredictions(LABELS[:n], folds, pred[None, :n], None, 3)
    return Rerun(result, rows, fit, reference, fit / reference)


def verdict_of(current: Rerun, base: Rerun | None = None, rule: RegressRule = RULE) -> Any:
    baseline = baseline_from_reruns([base or rerun(BASE)], "toy", rule)
    return compare(baseline, [current], rule).verdicts[0]


def test_identical_rerun_passes() -> None:
    baseline = baseline_from_reruns([rerun(BASE)], "toy", RULE)
    report = compare(baseline, [rerun(BASE)], RULE)
    (v,) = report.verdicts
    assert (v.status, v.delta, v.p_holm, report.exit_code) == ("pass", 0.0, 1.0, 0)
    assert v.time_status == "ok"


def test_two_point_drop_fails_even_with_churn() -> None:
    """2,000 rows; 40 rows worse plus 60 moved each way (noise): caught."""
    v = verdict_of(rerun(flip(BASE, 100, 60)))
    assert v.status == "regression"
    assert v.delta == pytest.approx(-0.02, abs=0.005)
    assert v.p_holm < 0.01 and v.test.high < 0


def test_delta_is_the_result_files_score_difference() -> None:
    current = rerun(flip(BASE, 100, 60))
    v = verdict_of(current)
    assert v.delta == pytest.approx(current.result.primary()[1] - rerun(BASE).result.primary()[1])


def test_significant_but_small_drop_passes() -> None:
    """Ten rows worse, none better: real (p tiny) but half a point, below ``min_effect``."""
    v = verdict_of(rerun(flip(BASE, 10)))
    assert v.test.p_drop < 0.01
    assert v.status == "pass"
    assert (
        verdict_of(rerun(flip(BASE, 10)), rule=RULE.model_copy(update={"min_effect": 0.002})).status
        == "regression"
    )


def test_large_but_noisy_drop_on_few_rows_passes() -> None:
    """200 rows: a 2-point drop is 4 rows net among 40 that moved; not evidence of a change."""
    base = rerun(BASE, n=200)
    v = verdict_of(rerun(flip(BASE[:200].copy(), 22, 18, seed=3), n=200), base)
    assert v.delta < -0.01
    assert v.status == "pass"


def test_improvement_is_reported_symmetrically() -> None:
    v = verdict_of(rerun(flip(BASE, 60, 100)))
    assert v.status == "improved"
    assert "--update" in v.message


def test_holm_adjusts_across_datasets() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]
    # a drop whose p-value alone is below alpha, but not below alpha / 3
    base = rerun(BASE, n=600)
    for worse in range(10, 40):
        candidate = rerun(flip(BASE[:600].copy(), worse, 6, seed=5), n=600)
        p = paired_bootstrap("f1_macro", base.rows, candidate.rows, resamples=500).p_drop
        if 0.02 < p < 0.05 and candidate.result.primary()[1] < base.result.primary()[1] - 0.01:
            break
    else:
        pytest.fail("no drop with 0.02 < p < 0.05")
    assert verdict_of(candidate, base).status == "regression"
    names = ["a", "b", "c"]
    baseline = baseline_from_reruns([rerun(BASE, n=600, dataset=d) for d in names], "toy", RULE)
    reruns = [candidate if d == "a" else rerun(BASE, n=600, dataset=d) for d in names]
    reruns[0] = dataclasses.replace(
        candidate,
        result=candidate.result.model_copy(
            update={"dataset": candidate.result.dataset.model_copy(update={"name": "a"})}
        ),
    )
    (a, *_) = compare(baseline, reruns, RULE).verdicts
    assert a.status == "pass"
    assert a.p_holm == pytest.approx(min(1.0, 3 * a.test.p_drop))


def test_lower_is_better_metric_direction() -> None:
    proba = np.full((1, N, 3), 0.2)
    proba[0, np.arange(N), LABELS] = 0.6
    worse = proba.copy()
    worse[0, : N // 2] = 1 / 3
    base = dataclasses.replace(
        rerun(BASE), rows=RowPredictions(LABELS, FOLDS, BASE[None], proba, 3)
    )
    cur = dataclasses.replace(rerun(BASE), rows=RowPredictions(LABELS, FOLDS, BASE[None], worse, 3))
    rule = RULE
    baseline = baseline_from_reruns([base], "toy", rule)
    baseline.datasets["d"].metric = "log_loss"
    baseline.datasets["d"].higher_is_better = False
    cur.result.protocol.primary_metric = "log_loss"
    assert compare(baseline, [cur], rule).verdicts[0].status == "regression"
    baseline = baseline_from_reruns([cur], "toy", rule)
    baseline.datasets["d"].metric = "log_loss"
    base.result.protocol.primary_metric = "log_loss"
    assert compare(baseline, [base], rule).verdicts[0].status == "improved"


def test_fit_time_is_gated_as_a_ratio_to_the_reference() -> None:
    slower_code = verdict_of(rerun(BASE, fit=2.0, reference=1.0))
    assert (slower_code.status, slower_code.time_status) == ("pass", "slower")
    assert slower_code.failed and "fit time" in slower_code.message
    slower_machine = verdict_of(rerun(BASE, fit=2.0, reference=2.0))
    assert slower_machine.time_status == "ok" and not slower_machine.failed
    assert verdict_of(rerun(BASE, fit=1.3, reference=1.0)).time_status == "ok"  # within x1.5


def test_changed_data_or_protocol_is_an_error_not_a_comparison() -> None:
    baseline = baseline_from_reruns([rerun(BASE)], "toy", RULE)
    report = compare(baseline, [rerun(BASE, fingerprint="0" * 16)], RULE)
    assert report.verdicts[0].status == "error"
    assert "fingerprint changed" in report.verdicts[0].message
    assert report.exit_code == 2
    keys = [f"r0f{i}" for i in range(4)] + ["r1f0"]
    assert "folds changed" in compare(baseline, [rerun(BASE, keys=keys)], RULE).verdicts[0].message
    assert "seed changed" in compare(baseline, [rerun(BASE, seed=1)], RULE).verdicts[0].message


def test_a_changed_pipeline_is_compared_and_named() -> None:
    baseline = baseline_from_reruns([rerun(BASE)], "toy", RULE)
    report = compare(baseline, [rerun(BASE, lr=0.01)], RULE)
    assert report.verdicts[0].status == "pass"
    assert report.notes == ["note: d: pipeline differs from the baseline's: training.lr"]


def test_missing_failed_and_new_datasets() -> None:
    baseline = baseline_from_reruns(
        [rerun(BASE, dataset="a"), rerun(BASE, dataset="b")], "toy", RULE
    )
    report = compare(
        baseline,
        [rerun(BASE, dataset="a"), rerun(BASE, dataset="c")],
        RULE,
        errors={"b": "DataError: gone"},
    )
    status = {v.dataset: (v.status, v.message) for v in report.verdicts}
    assert status["a"][0] == "pass"
    assert status["b"] == ("error", "DataError: gone")
    assert status["c"][0] == "new"
    assert report.exit_code == 2


def test_baseline_file_is_versioned_and_compact(tmp_path: Path) -> None:
    path = write_baseline(baseline_from_reruns([rerun(BASE)], "toy", RULE), tmp_path / "b.json")
    assert path.stat().st_size < 11_000  # 2,000 rows (~9.7 kB) and package versions
    loaded = read_baseline(path)
    assert loaded.schema_version == BASELINE_SCHEMA_VERSION
    assert compare(loaded, [rerun(BASE)], RULE).verdicts[0].status == "pass"
    assert compare(loaded, [rerun(flip(BASE, 100))], RULE).verdicts[0].status == "regression"
    data = json.loads(path.read_text())
    data["schema_version"] = 1
    path.write_text(json.dumps(data))
    with pytest.raises(MMBenchError, match=r"schema version 1 \(fold scores only.*--update"):
        read_baseline(path)
    path.write_text("{not json")
    with pytest.raises(MMBenchError, match="cannot read baseline"):
        read_baseline(path)
    with pytest.raises(MMBenchError, match=r"not found.*--update"):
        read_baseline(tmp_path / "missing.json")


SUITE = """
name: tiny
seed: 0
datasets:
  - name: syn
    source:
      kind: synthetic
      options: {n_rows: 200, n_classes: 3, seed: 0, imbalance: 0.0, signal: {tabular: 0.9}}
    target: label
    modalities:
      text: text
      tabular: [num_0, num_1, num_2, num_3, cat_0, cat_1]
    protocol: {folds: 3, repeats: 1, primary_metric: f1_macro}
    pipeline:
      encoders: {text: tfidf, tabular: tabular}
      fusion: xgboost
"""


def shuffle_tabular(table: MultiModalTable) -> MultiModalTable:
    """Simulated bug: the informative modality's rows no longer match their labels."""
    order = np.random.default_rng(0).permutation(len(table))
    shuffled = table.tabular.iloc[order].reset_index(drop=True)  # type: ignore[union-attr]
    return dataclasses.replace(table, tabular=shuffled, fingerprint="")


def test_degraded_pipeline_is_caught_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite_path = tmp_path / "tiny.yaml"
    suite_path.write_text(SUITE)
    baseline = tmp_path / "baselines" / "tiny.json"
    assert (
        main(["regress", str(suite_path), "--baseline", str(baseline), "--update", "--quiet"]) == 0
    )
    stored = read_baseline(baseline)
    assert stored.datasets["syn"].fold_keys == ["r0f0", "r0f1", "r0f2"]
    assert stored.datasets["syn"].mean > 0.45  # the pipeline learns something

    report = regress(load_suite(suite_path), baseline, table_transform=shuffle_tabular)
    (v,) = report.verdicts
    assert v.status == "regression", report.to_markdown()
    assert v.delta < -0.05

    results = tmp_path / "rerun"
    assert (
        main(
            [
                "regress",
                str(suite_path),
                "--baseline",
                str(baseline),
                "--results",
                str(results),
                "--quiet",
            ]
        )
        == 0
    )
    assert (results / "tiny" / "syn" / "regress.json").exists()
    assert "pass" in capsys.readouterr().out

    baseline.write_text(json.dumps({"schema_version": 0}))
    assert main(["regress", str(suite_path), "--baseline", str(baseline), "--quiet"]) == 2
    assert "schema version 0" in capsys.readouterr().err


def test_other_package_versions_are_named_not_reported_as_a_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A baseline made under another xgboost is an error that names it, before any rerun."""
    suite_path = tmp_path / "tiny.yaml"
    suite_path.write_text(SUITE)
    baseline = tmp_path / "tiny.json"
    assert (
        main(["regress", str(suite_path), "--baseline", str(baseline), "--update", "--quiet"]) == 0
    )
    stored = read_baseline(baseline)
    assert {"numpy", "scikit-learn", "xgboost", "torch"} <= stored.packages.keys()

    data = json.loads(baseline.read_text())
    data["packages"]["xgboost"] = "0.0.1"
    baseline.write_text(json.dumps(data))
    report = regress(load_suite(suite_path), baseline, table_transform=shuffle_tabular)
    assert report.exit_code == 2 and not report.regressions  # not judged: nothing was rerun
    assert report.verdicts[0].message == "not rerun: package versions differ"
    assert any("xgboost" in n and "(baseline 0.0.1)" in n for n in report.notes)

    assert main(["regress", str(suite_path), "--baseline", str(baseline), "--quiet"]) == 2
    out = capsys.readouterr().out
    assert "xgboost" in out and "constraints" in out
    allowed = ["regress", str(suite_path), "--baseline", str(baseline), "--quiet"]
    assert main([*allowed, "--allow-package-mismatch"]) == 0
    assert "package versions differ" in capsys.readouterr().out


def auc_rerun(rows: RowPredictions) -> Rerun:
    """A rerun scored by ROC-AUC, its fold scores and summary as a result file has them."""
    from mmbench.evaluation import METRICS, summarize

    auc = METRICS.get("roc_auc").fn
    probas = rows.proba[0]  # type: ignore[index]
    folds = rows.folds[0]
    scores = [auc(rows.labels[folds == f], probas[folds == f]) for f in np.unique(folds)]
    result = make_result("d", "regress", metric="roc_auc", scores=scores)
    result.metrics = summarize([f.metrics for f in result.folds])
    return Rerun(result, rows, 1.0, 1.0, 1.0)


def test_resamples_where_the_metric_is_undefined_pass_an_unchanged_rerun() -> None:
    """A rare class that most resamples of some fold miss: those folds are left out of both
    sides, so an unchanged rerun has p = 1 (not a NaN counted against it), and the Δ cell says
    how many resamples averaged fewer folds."""
    from test_paired import rare_class_rows

    r = rows_of(rows_record(rare_class_rows(4)))  # probabilities as the baseline keeps them
    assert np.allclose(r.proba.sum(axis=-1), 1.0, rtol=0, atol=1e-12)  # type: ignore[union-attr]
    rule = RegressRule(resamples=100)
    report = compare(baseline_from_reruns([auc_rerun(r)], "toy", rule), [auc_rerun(r)], rule)
    (v,) = report.verdicts
    assert (v.status, v.p_holm, v.delta) == ("pass", 1.0, 0.0)
    assert "resamples on fewer folds" in report.rows()[0][4]


def test_a_metric_undefined_in_every_fold_is_an_error_not_a_pass() -> None:
    from test_paired import rare_class_rows

    r = rows_of(rows_record(rare_class_rows(2)))
    labels = np.where(r.labels == 2, 1, r.labels)  # class 2 in no fold: AUC undefined in all
    r = dataclasses.replace(r, labels=labels)
    rule = RegressRule(resamples=100)
    (v,) = compare(baseline_from_reruns([auc_rerun(r)], "toy", rule), [auc_rerun(r)], rule).verdicts
    assert v.status == "error" and "roc_auc is undefined in every fold" in v.message

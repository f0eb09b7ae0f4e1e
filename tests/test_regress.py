from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import make_result

from mmbench.cli import main
from mmbench.data.table import MultiModalTable
from mmbench.errors import MMBenchError
from mmbench.regress import (
    BASELINE_SCHEMA_VERSION,
    baseline_from_results,
    compare,
    read_baseline,
    regress,
    tolerance,
    write_baseline,
)
from mmbench.results import RunResult
from mmbench.suite import load_suite

BASE = [0.70, 0.75, 0.80, 0.72, 0.78]


def result(scores: list[float], **kw: Any) -> RunResult:
    """A rerun's (or baseline's) result: the given fold scores of one dataset."""
    return make_result(kw.pop("dataset", "d"), "regress", scores=scores, **kw)


def verdict_of(current: list[float], base: list[float] = BASE, metric: str = "f1_macro") -> str:
    baseline = baseline_from_results([result(base, metric=metric)], "toy")
    report = compare(baseline, [result(current, metric=metric)])
    return report.verdicts[0].status


def test_identical_rerun_passes() -> None:
    baseline = baseline_from_results([result(BASE)], "toy")
    report = compare(baseline, [result(BASE)])
    (v,) = report.verdicts
    assert (v.status, v.delta, report.exit_code) == ("pass", 0.0, 0)
    assert v.tolerance == pytest.approx(max(0.01, np.std(BASE, ddof=1) / math.sqrt(5)))


def test_large_drop_fails() -> None:
    baseline = baseline_from_results([result(BASE)], "toy")
    report = compare(baseline, [result([s - 0.1 for s in BASE])])
    assert report.verdicts[0].status == "regression"
    assert report.verdicts[0].delta == pytest.approx(-0.1)
    assert report.exit_code == 1
    assert "REGRESSION" in report.to_markdown()


def test_small_or_noisy_drops_pass_consistent_drops_fail() -> None:
    assert verdict_of([s - 0.008 for s in BASE]) == "pass"  # below min_drop
    noisy = [-0.03, 0.02, -0.01, 0.015, -0.02]  # mean −0.005, fold noise ±0.02
    assert verdict_of([s + d for s, d in zip(BASE, noisy, strict=True)]) == "pass"
    jittery = [-0.06, 0.02, -0.05, 0.01, -0.02]  # mean −0.02, paired sd 0.035: within noise
    assert verdict_of([s + d for s, d in zip(BASE, jittery, strict=True)]) == "pass"
    assert verdict_of([s - 0.03 for s in BASE]) == "regression"  # consistent: sd(Δ)=0
    assert verdict_of([s + 0.05 for s in BASE]) == "improved"


def test_tolerance_is_the_largest_noise_scale() -> None:
    diffs = np.array([-0.06, 0.02, -0.05, 0.01, -0.02])
    paired = 2.131847 * np.std(diffs, ddof=1) / math.sqrt(5)  # t_{0.95, 4}
    assert tolerance(diffs, 0.0) == pytest.approx(paired, rel=1e-5)
    assert tolerance(np.zeros(5), 0.1) == pytest.approx(0.1 / math.sqrt(5))
    assert tolerance(np.zeros(5), 0.0) == 0.01
    assert tolerance(np.zeros(5), 0.0, min_drop=0.05) == 0.05


def test_heterogeneous_large_drop_is_not_hidden_by_few_folds() -> None:
    """Fold differences spread wider than unpaired noise are an effect; they must not widen the band."""
    base = [0.594, 0.508, 0.663]
    current = [0.310, 0.433, 0.299]  # a real 0.24 drop that hit the second fold less
    diffs = np.subtract(current, base)
    uncapped = 2.919986 * np.std(diffs, ddof=1) / math.sqrt(3)
    assert uncapped > 0.24  # the plain paired t band would let this pass
    assert verdict_of(current, base) == "regression"


def test_lower_is_better_metric_direction() -> None:
    base = [0.50, 0.55, 0.60, 0.52, 0.58]
    assert verdict_of([s + 0.1 for s in base], base, metric="log_loss") == "regression"
    assert verdict_of([s - 0.1 for s in base], base, metric="log_loss") == "improved"


def test_changed_data_or_protocol_is_an_error_not_a_comparison() -> None:
    baseline = baseline_from_results([result(BASE)], "toy")
    report = compare(baseline, [result(BASE, fingerprint="0" * 16)])
    assert report.verdicts[0].status == "error"
    assert "fingerprint changed" in report.verdicts[0].message
    assert report.exit_code == 2
    keys = [f"r0f{i}" for i in range(4)] + ["r1f0"]
    assert "folds changed" in compare(baseline, [result(BASE, keys=keys)]).verdicts[0].message
    assert "seed changed" in compare(baseline, [result(BASE, seed=1)]).verdicts[0].message


def test_a_changed_pipeline_is_compared_and_named() -> None:
    baseline = baseline_from_results([result(BASE)], "toy")
    report = compare(baseline, [result(BASE, lr=0.01)])
    assert report.verdicts[0].status == "pass"
    assert report.notes == ["note: d: pipeline differs from the baseline's: training.lr"]


def test_missing_failed_and_new_datasets() -> None:
    baseline = baseline_from_results([result(BASE, dataset="a"), result(BASE, dataset="b")], "toy")
    report = compare(
        baseline,
        [result(BASE, dataset="a"), result(BASE, dataset="c")],
        errors={"b": "DataError: gone"},
    )
    status = {v.dataset: (v.status, v.message) for v in report.verdicts}
    assert status["a"][0] == "pass"
    assert status["b"] == ("error", "DataError: gone")
    assert status["c"][0] == "new"
    assert report.exit_code == 2


def test_baseline_file_is_versioned(tmp_path: Path) -> None:
    path = write_baseline(baseline_from_results([result(BASE)], "toy"), tmp_path / "b.json")
    loaded = read_baseline(path)
    assert loaded.schema_version == BASELINE_SCHEMA_VERSION
    assert loaded.datasets["d"].fold_scores == BASE
    assert loaded.datasets["d"].higher_is_better
    data = json.loads(path.read_text())
    data["schema_version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(MMBenchError, match="schema version 99"):
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

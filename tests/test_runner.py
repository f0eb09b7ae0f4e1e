"""End to end: suite -> data -> CV or search -> result file -> MLflow, with failures contained."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import FAST_TRAINING, tiny_suite
from mlflow import MlflowClient

from mmbench.pipeline import FittedPipeline
from mmbench.results import SCHEMA_VERSION, read_result
from mmbench.run import Reporter, RunOptions, run_suite
from mmbench.suite import parse_suite

ALL_MODALITIES = {
    "image": "image",
    "text": "text",
    "tabular": ["num_0", "num_1", "num_2", "num_3", "cat_0", "cat_1"],
    "audio": "audio",
}


def runs_of(uri: str, suite: str) -> list[Any]:
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(f"mmbench/{suite}")
    assert exp is not None
    return client.search_runs([exp.experiment_id], max_results=500)


@pytest.mark.slow
def test_default_pipeline_end_to_end(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'e2e.db'}"
    suite = tiny_suite(
        tmp_path,
        modalities=ALL_MODALITIES,
        n_rows=150,
        pipeline={
            "encoders": {
                "image": "timm/test_resnet",
                "text": "tfidf",
                "tabular": "tabular",
                "audio": "logmel",
            },
            "training": FAST_TRAINING,
        },
    )
    [outcome] = run_suite(suite, RunOptions(results_dir=tmp_path / "res", tracking_uri=uri))
    assert outcome.error is None, outcome.error
    assert outcome.path == tmp_path / "res" / "tiny-suite" / "tiny" / "default.json"

    result = read_result(outcome.path)
    raw = json.loads(outcome.path.read_text())
    assert raw["schema_version"] == SCHEMA_VERSION
    assert result.dataset.modalities == ["image", "text", "tabular", "audio"]
    assert result.dataset.n_rows == 150 and len(result.dataset.fingerprint) == 16
    assert result.dataset.recipe and result.dataset.recipe["n_rows"] == 150
    assert len(result.folds) == 3 and all(f.error is None for f in result.folds)
    assert {"f1_macro", "roc_auc", "pr_auc", "balanced_accuracy", "log_loss"} <= set(result.metrics)
    assert result.metrics["f1_macro"]["mean"] > result.chance["f1_macro"] + 0.15
    assert result.provenance.packages["torch"] and result.provenance.mmbench_version
    assert result.seed == 0 and result.protocol.folds == 3
    labels, folds, pred, _ = result.out_of_fold.arrays()  # type: ignore[union-attr]
    assert folds.shape == (1, 150) and set(folds[0].tolist()) == {0, 1, 2}
    for f, record in enumerate(result.folds):  # the stored rows recompute each fold's score
        rows = folds[0] == f
        accuracy = float((pred[0, rows] == labels[rows]).mean())
        assert accuracy == pytest.approx(record.metrics["accuracy"])

    [run] = runs_of(uri, "tiny-suite")
    assert result.tracking and result.tracking.run_id == run.info.run_id
    assert run.data.params["encoder.image"] == "timm/test_resnet"
    assert run.data.params["fusion"] == "early"
    assert run.data.tags["mmbench.kind"] == "best"
    assert run.data.tags["mmbench.fingerprint"] == result.dataset.fingerprint
    assert run.data.metrics["cv.f1_macro"] == pytest.approx(result.metrics["f1_macro"]["mean"])
    history = MlflowClient(uri).get_metric_history(run.info.run_id, "fold.f1_macro")
    assert sorted(m.step for m in history) == [0, 1, 2]
    assert [f.metrics["f1_macro"] for f in result.folds] == pytest.approx(
        [m.value for m in sorted(history, key=lambda m: m.step)]
    )


def test_search_trials_mirror_optuna_one_to_one(tmp_path: Path) -> None:
    import optuna

    uri = f"sqlite:///{tmp_path / 'search.db'}"
    suite = tiny_suite(
        tmp_path,
        trials=3,
        search={
            "fusion": ["early", "xgboost"],
            "pruner": "none",
            "training": {**FAST_TRAINING, "lr": [3e-3, 1e-2]},
            "fusion_options": {"xgboost": {"n_estimators": [20, 40]}},
        },
    )
    res = tmp_path / "res"
    outcome, ensemble = run_suite(suite, RunOptions(results_dir=res, tracking_uri=uri))
    assert outcome.error is None, outcome.error
    result = outcome.result
    assert ensemble.result.pipeline_name == "ensemble" and ensemble.result.ensemble is not None
    assert ensemble.result.ensemble.oof_score >= ensemble.result.ensemble.best_single_oof_score
    assert (
        result.pipeline_name == "search"
        and result.search is not None
        and result.search.n_trials == 3
    )

    study = optuna.load_study(
        study_name="tiny-suite.tiny", storage=f"sqlite:///{res / 'tiny-suite' / 'optuna.db'}"
    )
    runs = runs_of(uri, "tiny-suite")
    by_kind: dict[str, list[Any]] = {}
    for r in runs:
        by_kind.setdefault(r.data.tags["mmbench.kind"], []).append(r)
    [parent] = by_kind["study"]
    trial_runs = {int(r.data.tags["mmbench.trial"]): r for r in by_kind["trial"]}
    assert sorted(trial_runs) == [t.number for t in study.trials]
    for t in study.trials:
        run = trial_runs[t.number]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert t.user_attrs["mlflow_run_id"] == run.info.run_id
        assert run.data.params["fusion"] == t.params["fusion"]
        assert run.data.tags["mmbench.state"] == t.state.name.lower()
        if t.state.name == "COMPLETE":
            assert run.data.metrics["cv.f1_macro"] == pytest.approx(t.value)
            assert run.info.status == "FINISHED"
    [best] = by_kind["best"]
    assert best.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert best.data.metrics["cv.f1_macro"] == pytest.approx(study.best_value)
    artifacts = {a.path for a in MlflowClient(uri).list_artifacts(best.info.run_id, "plots")}
    assert {
        "plots/confusion_matrix.png",
        "plots/roc_pr_curves.png",
        "plots/optuna_history.png",
    } <= artifacts
    # the refitted model as an MLflow pyfunc: raw columns in, predictions out
    import mlflow

    from mmbench.data import load_table

    mlflow.set_tracking_uri(uri)
    served = mlflow.pyfunc.load_model(f"runs:/{best.info.run_id}/tiny-search")
    assert served.metadata.signature is not None
    example = served.input_example
    assert {"text", "num_0", "cat_0"} <= set(example.columns)
    predicted = served.predict(example)
    assert list(predicted.columns[:1]) == ["prediction"]
    assert set(predicted["prediction"]) <= set(load_table(suite.datasets[0], suite.root).classes)
    np.testing.assert_allclose(predicted.filter(like="proba.").sum(axis=1), 1.0, atol=1e-6)
    model = FittedPipeline.load(res / "tiny-suite" / "tiny" / "models" / "search.joblib")
    assert model.spec.fusion.name == study.best_params["fusion"]


def test_test_source_is_scored_and_model_predicts(tmp_path: Path) -> None:
    from mmbench.data import load_table
    from mmbench.data.synthetic import generate

    generate(n_rows=90, n_classes=3, seed=5).to_parquet(str(tmp_path / "test.parquet"))
    suite = tiny_suite(tmp_path, trials=2, search={"fusion": "early", "training": FAST_TRAINING})
    raw = suite.model_dump(mode="json", exclude={"path"})
    raw["datasets"][0]["test_source"] = {"kind": "parquet", "path": "test.parquet"}
    suite = parse_suite(raw, path=tmp_path / "suite.yaml")
    outcome, ensemble = run_suite(suite, RunOptions(results_dir=tmp_path / "res", track=False))
    assert outcome.error is None, outcome.error
    test_metrics = outcome.result.test_metrics
    assert test_metrics is not None and test_metrics["f1_macro"] > 0.45
    assert ensemble.result.test_metrics["f1_macro"] > 0.45  # the final model, scored once
    assert ensemble.result.budget.trials_run == 2
    summary = ensemble.result.ensemble
    assert {m.fit for m in summary.members} == {"folds"}  # no deadline: kept
    members = "; ".join(f"trial {m.trial}: 3 fold models averaged" for m in summary.members)
    if summary.combiner == "stack":  # chosen nested over the blend: said so
        n = len(summary.members)
        members += f" (stacked: a logistic regression over {n} members' probabilities)"
    assert summary.final_model == members
    model = FittedPipeline.load(
        tmp_path / "res" / "tiny-suite" / "tiny" / "models" / "search.joblib"
    )
    table = load_table(suite.datasets[0], suite.root, split="test", classes=model.classes)
    predicted = model.predict(table)
    assert len(predicted) == 90 and set(predicted) <= set(model.classes)


def test_tracking_failure_keeps_result_file(tmp_path: Path) -> None:
    suite = tiny_suite(
        tmp_path,
        pipeline={"encoders": {"text": "tfidf", "tabular": "tabular"}, "training": FAST_TRAINING},
    )
    options = RunOptions(results_dir=tmp_path / "res", tracking_uri="bogus-scheme://nowhere")
    [outcome] = run_suite(suite, options)
    assert outcome.error is None
    assert outcome.path is not None and outcome.path.exists()
    assert any("MLflow" in w for w in outcome.warnings)


def test_failing_dataset_does_not_stop_the_others(tmp_path: Path) -> None:
    suite = tiny_suite(
        tmp_path,
        pipeline={"encoders": {"text": "tfidf", "tabular": "tabular"}, "training": FAST_TRAINING},
    )
    raw = suite.model_dump(mode="json", exclude={"path"})
    broken = json.loads(json.dumps(raw["datasets"][0]))
    broken["name"] = "broken"
    broken["modalities"]["text"] = ["txet"]
    raw["datasets"].insert(0, broken)
    suite = parse_suite(raw, path=tmp_path / "suite.yaml")
    first, second = run_suite(suite, RunOptions(results_dir=tmp_path / "res", track=False))
    assert first.result is None and "txet" in (first.error or "")
    assert "did you mean 'text'" in (first.error or "")
    assert second.error is None and second.path is not None and second.path.exists()


def test_reference_pipelines_and_ablations(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'ref.db'}"
    suite = tiny_suite(
        tmp_path,
        pipeline={
            "encoders": {"text": "tfidf", "tabular": "tabular"},
            "fusion": "xgboost",
            "training": FAST_TRAINING,
        },
    )
    res = tmp_path / "res"
    outcomes = run_suite(suite, RunOptions(results_dir=res, tracking_uri=uri, ablate=True))
    [own] = outcomes
    assert own.error is None, own.error
    ablation = read_result(own.path).ablation
    assert ablation is not None and set(ablation.shapley or {}) == {"text", "tabular"}
    ablation_md = res / "tiny-suite" / "tiny" / "ablation" / "default" / "ablation.md"
    assert "# Modality ablation: tiny — pipeline default" in ablation_md.read_text()
    refs = run_suite(
        suite,
        RunOptions(
            results_dir=res, tracking_uri=uri, pipelines=["xgboost-early-fusion", "late-fusion-mlp"]
        ),
    )
    assert [o.pipeline for o in refs] == ["xgboost-early-fusion", "late-fusion-mlp"]
    assert all(o.error is None and o.path.exists() for o in refs)
    runs = runs_of(uri, "tiny-suite")
    kinds = sorted(r.data.tags["mmbench.kind"] for r in runs)
    # 3 subsets (text, tabular, both) under one ablation run, a child of the default run
    assert kinds == ["ablation"] * 3 + ["ablations", "best", "reference", "reference"]
    names = {r.info.run_name for r in runs}
    assert "tiny/default: xgboost on tfidf, tabular" in names
    assert "tiny/ablation of default" in names and "tiny/ablation: text+tabular" in names
    assert "tiny/xgboost-early-fusion: xgboost on tfidf, tabular" in names
    from mmbench.leaderboard import load_leaderboard, render

    board = render(load_leaderboard(res, "tiny-suite"), "markdown")
    assert "xgboost-early-fusion" in board and "late-fusion-mlp" in board and "default" in board


def test_unknown_reference_pipeline_suggests_closest(tmp_path: Path) -> None:
    from mmbench.errors import UnknownNameError

    suite = tiny_suite(tmp_path)
    with pytest.raises(UnknownNameError, match="did you mean 'late-fusion-mlp'"):
        run_suite(suite, RunOptions(results_dir=tmp_path, pipelines=["late-fusion"]))


def test_peer_runs_on_the_same_folds_and_a_missing_extra_fails_its_row(tmp_path: Path) -> None:
    import importlib.util

    from mmbench.config import PeerSpec
    from mmbench.results import ResultLayout

    suite = tiny_suite(tmp_path, n_rows=120)
    res = tmp_path / "res"
    reporter = Reporter(enabled=False)
    names = ["tfidf-xgboost", "autogluon"]
    outcomes = run_suite(suite, RunOptions(results_dir=res, track=False, pipelines=names), reporter)
    by_name = {o.pipeline: o for o in outcomes}
    peer = by_name["tfidf-xgboost"]
    assert peer.error is None, peer.error
    assert (
        isinstance(peer.result.pipeline, PeerSpec) and peer.result.pipeline.peer == "tfidf-xgboost"
    )
    assert peer.result.metrics["f1_macro"]["mean"] > peer.result.chance["f1_macro"] + 0.2
    [written] = ResultLayout(res, "tiny-suite").load()  # read back through the typed model
    assert written.pipeline == peer.result.pipeline
    if importlib.util.find_spec("autogluon") is None:  # not run: a failed row with the hint
        missing = by_name["autogluon"]
        assert missing.result is None and "pip install 'mmbench[peers]'" in missing.error


def test_a_result_that_cannot_be_written_is_reported_with_its_scores_and_the_next_dataset_runs(
    tmp_path: Path,
) -> None:
    """A full or read-only results disk: the computed scores reach the user, the other datasets
    still run and nothing half-written is left behind."""
    linear = {"encoders": {"text": "tfidf", "tabular": "tabular"}, "fusion": "linear"}
    one = tiny_suite(tmp_path, pipeline=linear)
    second = one.datasets[0].model_copy(update={"name": "second"})
    suite = one.model_copy(update={"datasets": [one.datasets[0], second]})
    res = tmp_path / "res"
    (res / "tiny-suite").mkdir(parents=True)
    (res / "tiny-suite" / "tiny").write_text("a file where the dataset's folder should be")
    options = RunOptions(results_dir=res, track=False, ablate=False)
    blocked, written = run_suite(suite, options)
    assert blocked.error is not None and blocked.result is None
    assert "could not write its result file" in blocked.error
    assert re.search(r"f1_macro 0\.\d{4} ± 0\.\d{4} over 3 folds", blocked.error)
    assert written.error is None and written.path is not None and written.path.exists()
    assert not [p for p in res.rglob(".tmp-*")]


def test_a_pipeline_naming_only_its_head_gets_the_default_encoders(tmp_path: Path) -> None:
    suite = tiny_suite(tmp_path, pipeline={"fusion": "linear"})
    [outcome] = run_suite(suite, RunOptions(results_dir=tmp_path, track=False, ablate=False))
    assert outcome.error is None, outcome.error
    pipeline = outcome.result.pipeline
    assert pipeline.fusion.name == "linear"
    assert {m: e.name for m, e in pipeline.encoders.items()} == {
        "text": "tfidf",
        "tabular": "tabular",
    }


def _leaky_csv(path: Path) -> None:
    """40 sources of 10 rows each: a source's rows share a label (drawn at random, so there is
    no real signal) and a near-identical signature. Plain folds let a model recognise sources
    it has trained on; grouped folds cannot."""
    rng = np.random.default_rng(0)
    n_groups, per = 40, 10
    group_label = rng.permutation(np.arange(n_groups) % 2)
    signature = rng.normal(0, 1, (n_groups, 4))
    rows = []
    for g in range(n_groups):
        for _ in range(per):
            x = signature[g] + rng.normal(0, 0.05, 4)
            rows.append([f"s{g:02d}", *x.round(6), f"c{group_label[g]}"])
    frame = pd.DataFrame(rows, columns=["source", "x0", "x1", "x2", "x3", "label"])
    frame.to_csv(path, index=False)


def test_grouped_folds_score_a_leaky_dataset_lower_and_truer(tmp_path: Path) -> None:
    _leaky_csv(tmp_path / "leaky.csv")

    def dataset(name: str, group: str | None) -> dict:
        return {
            "name": name,
            "source": {"kind": "csv", "path": "leaky.csv"},
            "target": "label",
            "modalities": {"tabular": ["x0", "x1", "x2", "x3"]},
            "protocol": {"folds": 5, "group_column": group},
            "pipeline": {"encoders": {"tabular": "tabular"}, "fusion": "xgboost"},
        }

    raw = {"name": "leak", "datasets": [dataset("plain", None), dataset("grouped", "source")]}
    suite = parse_suite(raw, path=tmp_path / "leak.yaml")
    options = RunOptions(results_dir=tmp_path / "res", track=False, ablate=False, progress=False)
    plain, grouped = run_suite(suite, options)
    plain_f1, grouped_f1 = plain.result.primary()[1], grouped.result.primary()[1]
    assert plain_f1 > 0.9  # memorised sources: a score the data does not support
    assert grouped_f1 < 0.7  # the truth is chance (0.5): no source is seen in training
    assert grouped.result.protocol.group_column == "source"
    assert grouped.result.dataset.groups == 40 and plain.result.dataset.groups is None


def test_the_registered_model_is_the_final_ensemble_and_reproduces_its_held_out_scores(
    tmp_path: Path,
) -> None:
    """What a user loads from the MLflow registry is what the result file scored: the same
    held-out probabilities (to 1e-6) and metrics; ``mmbench predict`` writes the same."""
    import mlflow

    from mmbench.cli import main
    from mmbench.data import load_table
    from mmbench.data.loading import frame_from_table
    from mmbench.data.synthetic import generate
    from mmbench.evaluation import compute_metrics
    from mmbench.tracking.serving import load_fitted

    generate(n_rows=90, n_classes=3, seed=5).to_parquet(str(tmp_path / "test.parquet"))
    suite = tiny_suite(
        tmp_path, trials=3, search={"fusion": ["early", "late"], "training": FAST_TRAINING}
    )
    raw = suite.model_dump(mode="json", exclude={"path"})
    raw["datasets"][0]["test_source"] = {"kind": "parquet", "path": "test.parquet"}
    (tmp_path / "suite.yaml").write_text(json.dumps(raw))
    suite = parse_suite(raw, path=tmp_path / "suite.yaml")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    res = tmp_path / "res"
    _, ensemble = run_suite(suite, RunOptions(results_dir=res, tracking_uri=uri, ablate=False))
    assert ensemble.result.pipeline_name == "ensemble" and ensemble.result.test_metrics

    client = MlflowClient(uri)
    [version] = client.search_model_versions("name='mmbench.tiny-suite.tiny'")
    assert version.run_id == ensemble.result.tracking.run_id  # the ensemble run's model
    assert float(version.tags["test.f1_macro"]) == pytest.approx(
        ensemble.result.test_metrics["f1_macro"]
    )
    mlflow.set_tracking_uri(uri)
    served = mlflow.pyfunc.load_model("models:/mmbench.tiny-suite.tiny/latest")
    final = load_fitted(res / "tiny-suite/tiny/models/ensemble.joblib")
    test = load_table(suite.datasets[0], suite.root, split="test", classes=final.classes)
    rows = frame_from_table(test, suite.datasets[0].modalities, len(test))
    predicted = served.predict(rows)
    proba = predicted.filter(like="proba.").to_numpy()
    np.testing.assert_allclose(proba, final.predict_proba(test), atol=1e-6)
    metrics = compute_metrics(test.labels, proba, weights=final.decision)
    for name, value in ensemble.result.test_metrics.items():
        assert metrics[name] == pytest.approx(value, abs=1e-6), name

    rows.to_parquet(tmp_path / "rows.parquet")
    out = tmp_path / "scored.csv"
    args = ["predict", str(tmp_path / "suite.yaml"), str(tmp_path / "rows.parquet")]
    assert main([*args, "--results", str(res), "--output", str(out)]) == 0
    written = pd.read_csv(out)
    assert list(written["prediction"]) == list(predicted["prediction"])
    np.testing.assert_allclose(written.filter(like="proba.").to_numpy(), proba, atol=1e-6)


def test_one_budget_covers_the_search_and_its_ablation(tmp_path: Path) -> None:
    """The job's timeout_s covers the ablation: the search leaves ``ablation.budget_share``
    of it, and every wall time written is the whole job's. The ablation is keyed by the
    pipeline it ablates; the result file holds per-class metrics (schema 3)."""
    suite = tiny_suite(tmp_path, trials=2, search={"fusion": "linear"})
    res = tmp_path / "res"
    options = RunOptions(results_dir=res, track=False, ablate=True, timeout=60, progress=False)
    search, ensemble = run_suite(suite, options)
    assert search.error is None, search.error
    r = read_result(search.path)
    b = r.budget
    assert r.schema_version == SCHEMA_VERSION >= 3
    assert b is not None and b.timeout_s == 60 and b.ablation_reserved_s == pytest.approx(15)
    assert b.ablation_s is not None and b.ablation_s > 0 and b.ablation_skipped == 0
    assert b.wall_s == pytest.approx(r.durations["wall"])
    assert b.wall_s >= b.search_s + b.final_s + b.ablation_s - 0.5  # nothing left out
    assert b.wall_s <= 1.1 * 60
    assert read_result(ensemble.path).budget == b  # one job, one budget
    folder = res / "tiny-suite" / "tiny" / "ablation" / "search"
    assert r.ablation is not None and r.ablation.files["json"] == str(folder / "ablation.json")
    assert read_result(ensemble.path).ablation is None
    per_class = r.diagnostics.per_class
    assert per_class is not None and set(per_class) == set(r.dataset.classes)
    assert sum(m.support for m in per_class.values()) == r.dataset.n_rows
    assert all(0 <= m.f1 <= 1 for m in per_class.values())


def test_every_row_records_the_decision_rule_fitted_on_its_own_folds(tmp_path: Path) -> None:
    """Default, search best, final ensemble, a reference pipeline and a peer: each result file
    says which rule its label metrics were counted with, its saved model decides with it, and
    the leaderboard shows it on every row."""
    from mmbench.leaderboard import load_leaderboard, render
    from mmbench.results import ResultLayout

    rules = {"arg-max", "class weights tuned on out-of-fold rows"}
    res = tmp_path / "res"
    search = tiny_suite(tmp_path, trials=2, search={"fusion": "linear"})
    run_suite(search, RunOptions(results_dir=res, track=False))
    pipelines = ["xgboost-early-fusion", "tfidf-xgboost"]
    run_suite(search, RunOptions(results_dir=res, track=False, pipelines=pipelines))
    written = {r.pipeline_name: r for r in ResultLayout(res, "tiny-suite").load()}
    assert set(written) == {"search", "ensemble", *pipelines}
    for name, result in written.items():
        assert result.decision is not None and result.decision.rule in rules, name
        assert (result.decision.weights is not None) == (result.decision.rule != "arg-max")
    model = FittedPipeline.load(res / "tiny-suite" / "tiny" / "models" / "search.joblib")
    weights = written["search"].decision.weights
    assert (model.decision is None) if weights is None else np.allclose(model.decision, weights)
    ensemble = written["ensemble"]
    assert ensemble.ensemble.decision_weights == ensemble.decision.weights
    board = load_leaderboard(res, "tiny-suite")
    assert all(e.decision for e in board.datasets["tiny"])
    assert "| decision |" in render(board, "markdown")

    default = tiny_suite(tmp_path, pipeline={"fusion": "linear"})
    [outcome] = run_suite(default, RunOptions(results_dir=tmp_path / "one", track=False))
    assert outcome.result.decision is not None and outcome.result.decision.rule in rules


def test_a_second_run_on_one_results_folder_is_refused_naming_the_first(tmp_path: Path) -> None:
    """While a process holds the suite's results folder, `mmbench run` there opens no study and
    says who holds it and what to do; once the holder dies (killed, no clean exit) the lock is
    free again, with no stale file to remove."""
    import os
    import signal
    import socket
    import subprocess
    import sys

    from mmbench.results import ResultLayout

    suite = tiny_suite(tmp_path, trials=3, search={"fusion": "linear"})
    suite.path.write_text(json.dumps(suite.model_dump(mode="json", exclude={"path"})))
    res = tmp_path / "res"
    layout = ResultLayout(res, suite.name)
    hold = (
        "import sys, time\nfrom pathlib import Path\nfrom mmbench.results import ResultLayout\n"
        f"with ResultLayout(Path({str(res)!r}), {suite.name!r}).exclusive():\n"
        "    print('held', flush=True)\n    time.sleep(120)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        command = ["run", str(suite.path), "--results", str(res), "--no-track", "--quiet"]
        second = subprocess.run(
            [sys.executable, "-m", "mmbench.cli", *command],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 2, second.stderr
        message = " ".join(second.stderr.split())
        assert f"{layout.root.resolve()} is in use by another mmbench run" in message
        assert f"(pid {holder.pid} on {socket.gethostname()}, since " in message
        assert "wait for it to finish" in message and "mmbench run --workers N" in message
        assert not layout.study_db.exists()  # no study of its own was opened
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert layout.run_lock.with_name("run.lock.owner").exists()  # the dead holder's note
    with layout.exclusive():
        note = json.loads(layout.run_lock.with_name("run.lock.owner").read_text())
        assert note["pid"] == os.getpid()


def test_a_large_table_is_searched_and_compared_on_its_hold_out_fold(tmp_path: Path) -> None:
    """At ``large_table_rows`` and above every row of a dataset, searched or reference, is
    trained once and scored on the first fold's rows: its file holds that fold only, its
    out-of-fold rows are that fold's, and the leaderboard still tests ties row by row."""
    from mmbench.leaderboard import load_leaderboard
    from mmbench.leaderboard.stats import NOT_COMPARED
    from mmbench.results import ResultLayout
    from mmbench.tracking.serving import load_fitted

    suite = tiny_suite(
        tmp_path, n_rows=300, trials=3, search={"fusion": "linear"},
        protocol={"large_table_rows": 300},
    )  # fmt: skip
    res = tmp_path / "res"
    run_suite(suite, RunOptions(results_dir=res, track=False))
    run_suite(suite, RunOptions(results_dir=res, track=False, pipelines=["xgboost-early-fusion"]))
    written = {r.pipeline_name: r for r in ResultLayout(res, "tiny-suite").load()}
    assert set(written) == {"search", "ensemble", "xgboost-early-fusion"}
    fold_rows = None
    for name, result in written.items():
        assert [f.key for f in result.folds] == ["r0f0"], name
        labels, folds, _, _ = result.out_of_fold.arrays()
        assert len(labels) == 300 and 90 <= (folds == 0).sum() <= 110, name  # a third held out
        assert set(np.unique(folds)) == {-1, 0}, name
        if fold_rows is None:
            fold_rows = folds
        assert np.array_equal(folds, fold_rows), name  # the same rows for every pipeline
        assert result.decision is not None, name
    members = written["ensemble"].ensemble.members
    assert members and all(m.fit == "folds" for m in members)  # bagged over the whole split
    model = load_fitted(res / "tiny-suite" / "tiny" / "models" / "ensemble.joblib")
    assert all(len(m.heads) == 3 for m in model.members)  # one per fold of the 3-fold split
    history = written["search"].search.history
    assert sum(p.state == "complete" for p in history) >= 2
    assert all(p.fidelity == "1 of 1 folds" for p in history if p.state == "complete")
    board = load_leaderboard(res, "tiny-suite")
    entries = board.datasets["tiny"]
    assert not [c for e in entries for c in e.caveats if NOT_COMPARED in c]
    assert sum(e.tied_best for e in entries) >= 1

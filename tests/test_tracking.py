from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FAST_TRAINING, crafted_report, free_port, make_result, tiny_suite
from mlflow import MlflowClient

from mmbench.ablation import write_report
from mmbench.errors import MMBenchError
from mmbench.results import ResultLayout, TrackingIds, attach_tracking, read_result
from mmbench.run import RunOptions, run_suite
from mmbench.tracking import (
    JobInfo,
    Tracker,
    cv_metrics,
    fold_steps,
    start_job,
    track_ablation,
    tracking_uri,
)


def test_tracking_uri_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///env.db")
    assert tracking_uri("sqlite:///explicit.db") == "sqlite:///explicit.db"
    assert tracking_uri(None) == "sqlite:///env.db"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking_uri(None) == "sqlite:///mlflow.db"


def test_batched_logging_beyond_mlflow_batch_limits(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 't.db'}"
    tracker = Tracker(uri, "mmbench/unit")
    run_id = tracker.start_run("r", {"mmbench.kind": "trial"})
    params = {f"p{i:03d}": i for i in range(250)}  # > 100 params per batch
    steps = [("fold.f1_macro", 0.1 * i, i) for i in range(5)]
    tracker.log(run_id, params=params, metrics={"cv.x": 1.0, "nan": float("nan")}, steps=steps)
    tracker.end_run(run_id)
    run = MlflowClient(uri).get_run(run_id)
    assert len(run.data.params) == 250 and run.data.params["p249"] == "249"
    assert "nan" not in run.data.metrics  # non-finite values are not logged
    history = MlflowClient(uri).get_metric_history(run_id, "fold.f1_macro")
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == list(range(5))
    assert tracker.seconds > 0
    # the same experiment name is reused, not duplicated
    assert Tracker(uri, "mmbench/unit").experiment_id == tracker.experiment_id


def test_metric_naming_helpers() -> None:
    summary = {"f1_macro": {"mean": 0.7, "std": 0.1}}
    assert cv_metrics(summary) == {"cv.f1_macro": 0.7, "cv.f1_macro.std": 0.1}
    assert fold_steps([{"f1_macro": 0.6}, {"f1_macro": 0.8}]) == [
        ("fold.f1_macro", 0.6, 0),
        ("fold.f1_macro", 0.8, 1),
    ]


def test_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(MMBenchError, match="MLflow at"):
        Tracker("bogus-scheme://nowhere", "x")


def test_track_ablation_logs_child_runs_and_artifacts(tmp_path: Path) -> None:
    """Subset runs sit under one nested parent named with the dataset and the ablated
    pipeline, which holds the attribution metrics and the report files."""
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", experiment="mmbench/test")
    parent = tracker.start_run("toy/default", {"mmbench.kind": "best"})
    report = crafted_report()
    report.pipeline_name = "default"
    files = write_report(report, tmp_path / "files")
    ids = track_ablation(tracker, parent, report, {"mmbench.dataset": "toy"}, files)
    assert set(ids) == {"parent", "image+text", "image", "text"}
    group = tracker.client.get_run(ids["parent"])
    assert group.info.run_name == "toy/ablation of default"
    assert group.data.tags["mlflow.parentRunId"] == parent
    assert group.data.tags["mmbench.kind"] == "ablations"
    child = tracker.client.get_run(ids["image"])
    assert child.info.run_name == "toy/ablation: image"
    assert child.data.tags["mmbench.kind"] == "ablation"
    assert child.data.tags["mmbench.ablation.modalities"] == "image"
    assert child.data.tags["mlflow.parentRunId"] == ids["parent"]
    assert child.data.metrics["cv.f1_macro"] == pytest.approx(0.7)
    run = tracker.client.get_run(ids["parent"])
    assert run.data.metrics["ablation.shapley.image"] == pytest.approx(0.45)
    artifacts = {a.path for a in tracker.client.list_artifacts(ids["parent"], "ablation")}
    assert "ablation/ablation.png" in artifacts and "ablation/ablation.json" in artifacts


def job_info(kind: str = "study", label: str = "d") -> JobInfo:
    return JobInfo(
        suite="toy",
        dataset="d",
        label=label,
        kind=kind,
        seed=0,
        fingerprint="f" * 16,
        source="synthetic",
        device="cpu",
    )


def test_job_tracker_unavailable_is_a_warning_and_none() -> None:
    warnings: list[str] = []
    job = start_job(job_info(), uri="bogus-scheme://nowhere", warn=warnings.append)
    assert job is None
    assert len(warnings) == 1 and "running untracked" in warnings[0]


def test_job_parent_run_is_tagged_and_closed(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'job.db'}"
    job = start_job(job_info(kind="reference", label="d/late"), uri=uri, warn=pytest.fail)
    assert job is not None
    job.close("FAILED")
    run = MlflowClient(uri).get_run(job.parent_id)
    assert run.info.run_name == "d/late" and run.info.status == "FAILED"
    assert run.data.tags["mmbench.kind"] == "reference"
    assert run.data.tags["mmbench.fingerprint"] == "f" * 16
    assert run.data.tags["mmbench.device"] == "cpu"
    assert job.seconds > 0


def test_a_budget_subsample_result_carries_its_caveat_in_mlflow(tmp_path: Path) -> None:
    """The run of a result searched on a budget subsample says so in its caveat tag and in
    its description, as the leaderboard and the report do."""
    uri = f"sqlite:///{tmp_path / 'job.db'}"
    job = start_job(job_info(), uri=uri, warn=pytest.fail)
    assert job is not None
    result = make_result("d", "default", 0.7)
    result.dataset.subsample = {"rows": 40, "of": 100, "seed": 0, "reason": "budget"}
    result.durations = {"wall": 1.0}
    ids = job.record_result(result)
    assert ids is not None
    tags = MlflowClient(uri).get_run(ids.run_id).data.tags
    note = "searched on a budget subsample: 40 of 100 training rows (budget)"
    assert tags["mmbench.caveats"].startswith(note)
    assert f"⚠ {note}" in tags["mlflow.note.content"]


def test_attach_tracking_adds_ids_and_keeps_the_rest(tmp_path: Path) -> None:
    result = make_result("d", "default", 0.7)
    path = ResultLayout(tmp_path, "toy").write(result)
    assert path == tmp_path / "toy" / "d" / "default.json"
    before = json.loads(path.read_text())
    assert before["tracking"] is None
    ids = {"run_id": "r", "parent_run_id": "p", "experiment_id": "1", "tracking_uri": "sqlite://"}
    attached = attach_tracking(path, TrackingIds(**ids))
    after = json.loads(path.read_text())
    assert after["tracking"] == ids
    assert {**after, "tracking": None} == before
    assert read_result(path) == attached


@contextlib.contextmanager
def running_mlflow_server(
    tmp_path: Path, backend: str | None = None, port: int | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """A real `mlflow server` on 127.0.0.1 with a SQLite backend in tmp_path (or ``backend``):
    (url, process); on ``port`` when given (a restart where clients expect it)."""
    port = port or free_port()
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        backend or f"sqlite:///{tmp_path / 'server.db'}",
        "--artifacts-destination",
        str(tmp_path / "artifacts"),
        "--workers",
        "1",
    ]
    with running_server(cmd, f"http://127.0.0.1:{port}", "/health", tmp_path / "server.log") as s:
        yield s


@contextlib.contextmanager
def running_server(
    cmd: list[str], url: str, ready: str, log_path: Path
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run ``cmd`` (a local server) until ``url + ready`` answers 200; stop it afterwards."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    log = log_path.open("w")
    # its own process group: servers run their app in child processes
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"{cmd[:4]} exited: {log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}{ready}", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"{cmd[:4]} did not answer {url}{ready} in 90 s")
        yield url, proc
    finally:
        kill_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            kill_group(proc, signal.SIGKILL)
        log.close()


def kill_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    with running_mlflow_server(tmp_path) as (url, _):
        yield url


@pytest.mark.server
@pytest.mark.slow
def test_search_logs_to_a_local_mlflow_server(tmp_path: Path, mlflow_server: str) -> None:
    suite = tiny_suite(tmp_path, trials=2, search={"fusion": "early", "training": FAST_TRAINING})
    outcomes = run_suite(
        suite, RunOptions(results_dir=tmp_path / "res", tracking_uri=mlflow_server)
    )
    assert [o.pipeline for o in outcomes] == ["search", "ensemble"]
    for outcome in outcomes:
        assert outcome.error is None and not outcome.warnings, outcome.warnings
    client = MlflowClient(tracking_uri=mlflow_server)
    exp = client.get_experiment_by_name("mmbench/tiny-suite")
    runs = client.search_runs([exp.experiment_id])
    kinds = sorted(r.data.tags["mmbench.kind"] for r in runs)
    assert kinds == ["best", "ensemble", "study", "trial", "trial"]
    best = next(r for r in runs if r.data.tags["mmbench.kind"] == "best")
    artifacts = {a.path for a in client.list_artifacts(best.info.run_id)}
    assert "plots" in artifacts  # uploaded through the server's artifact proxy
    import mlflow

    mlflow.set_tracking_uri(mlflow_server)
    served = mlflow.pyfunc.load_model(f"runs:/{best.info.run_id}/tiny-search")
    assert len(served.predict(served.input_example)) == len(served.input_example)


def test_an_unreachable_tracking_server_costs_seconds_not_minutes(tmp_path: Path) -> None:
    """A dead tracking URI is found by one short /health check: one warning, untracked run,
    result file written (MLflow's own retries would stall every call for minutes)."""
    suite = tiny_suite(tmp_path, pipeline={"fusion": "linear"})
    dead = f"http://127.0.0.1:{free_port()}"
    start = time.monotonic()
    [outcome] = run_suite(suite, RunOptions(results_dir=tmp_path / "res", tracking_uri=dead))
    assert time.monotonic() - start < 60  # a behaviour bound, far below MLflow's retry storm
    assert outcome.error is None and outcome.path is not None and outcome.path.exists()
    [warning] = outcome.warnings
    assert "running untracked" in warning and "did not answer /health" in warning


@pytest.mark.server
@pytest.mark.slow
def test_a_server_that_dies_mid_search_is_warned_once_and_never_fails_a_trial(
    tmp_path: Path,
) -> None:
    import optuna

    from mmbench.tracking.client import Tracker
    from mmbench.tracking.study import StudyRecorder

    warnings: list[str] = []
    with running_mlflow_server(tmp_path) as (url, proc):
        tracker = Tracker(url, "mmbench/dies")
        parent = tracker.start_run("parent", {})
        recorder = StudyRecorder(tracker, parent, {}, warnings.append)
        study = optuna.create_study()
        first = study.ask()
        recorder.start(first, None)
        assert first.user_attrs["mlflow_run_id"]
        kill_group(proc, signal.SIGKILL)
        proc.wait(timeout=15)
        for _ in range(3):  # the next trials: no exception, one warning in all
            recorder.start(study.ask(), None)
    assert len(warnings) == 1 and "the search goes on untracked" in warnings[0]
    assert tracker.failed is not None
    with pytest.raises(MMBenchError, match="failed earlier, not retried"):
        tracker.end_run(parent)


def test_resume_closes_the_mlflow_run_a_killed_worker_left_running(tmp_path: Path) -> None:
    import optuna

    from mmbench.search.coordination import worker_id
    from mmbench.tracking.client import Tracker

    suite = tiny_suite(tmp_path, trials=2, search={"fusion": "early", "training": FAST_TRAINING})
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    res = tmp_path / "res"
    run_suite(suite, RunOptions(results_dir=res, tracking_uri=uri))
    # what `kill -9` leaves: a RUNNING trial of a dead local process with an open MLflow run
    storage = ResultLayout(res, "tiny-suite").study_storage()
    study = optuna.load_study(study_name="tiny-suite.tiny", storage=storage)
    orphan = study.ask(fixed_distributions=study.trials[0].distributions)
    run_id = Tracker(uri, "mmbench/tiny-suite").start_run("trial-killed", {"mmbench.kind": "trial"})
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    orphan.set_user_attr("mlflow_run_id", run_id)
    orphan.set_user_attr("worker", {"host": worker_id()["host"], "pid": int(dead.stdout)})

    options = RunOptions(results_dir=res, tracking_uri=uri, resume=True, trials=3)
    search, _ = run_suite(suite, options)
    assert search.error is None, search.error
    assert MlflowClient(tracking_uri=uri).get_run(run_id).info.status == "KILLED"
    states = [
        t.state.name
        for t in optuna.load_study(study_name="tiny-suite.tiny", storage=storage).trials
        if "duplicate_of" not in t.user_attrs  # proposals of a configuration already run
    ]
    assert "RUNNING" not in states and states.count("FAIL") == 1
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("mmbench/tiny-suite").experiment_id
    [parent] = client.search_runs([exp], "tags.`mmbench.kind` = 'study'")  # reopened, no 2nd
    assert parent.info.status == "FINISHED"
    trials = client.search_runs([exp], "tags.`mmbench.kind` = 'trial'")
    mine = [t for t in trials if t.info.run_id != run_id]  # not the hand-made orphan run
    assert {t.data.tags["mlflow.parentRunId"] for t in mine} == {parent.info.run_id}
    assert len(mine) == 3  # two trials of the first run, the killed trial's retry
    for kind in ("best", "ensemble"):  # the resume replaced them, it did not add a second
        assert len(client.search_runs([exp], f"tags.`mmbench.kind` = '{kind}'")) == 1


def test_workers_opening_a_fresh_mlflow_store_at_once_all_track(tmp_path: Path) -> None:
    code = (
        "import sys; from mmbench.tracking.client import Tracker; "
        "t = Tracker(sys.argv[1], 'mmbench/race'); print(t.start_run('r', {}))"
    )
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, uri], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-500:] for _, err in outs]
    client = MlflowClient(tracking_uri=uri)
    assert (
        len(client.search_runs([client.get_experiment_by_name("mmbench/race").experiment_id])) == 3
    )


def test_trial_params_are_the_ones_the_pipeline_used_under_concept_names() -> None:
    from mmbench.config import PipelineSpec
    from mmbench.tracking.naming import mlflow_param, optuna_name_tags, run_params

    xgb = PipelineSpec.model_validate(
        {
            "encoders": {"text": {"name": "tfidf", "options": {"sparse": True}}},
            "fusion": {"name": "xgboost", "options": {"learning_rate": 0.1, "max_depth": 3}},
        }
    )
    params = run_params(xgb)
    assert params["lr"] == 0.1 and params["fusion.depth"] == 3  # the head's own lr is *the* lr
    assert params["encoder.text"] == "tfidf" and params["encoder.text.sparse"] is True
    assert not {"dropout", "epochs", "batch_size", "focal_gamma"} & set(params)  # torch-only
    widths = [
        run_params(PipelineSpec.model_validate({"fusion": {"name": f, "options": {o: 64}}}))
        for f, o in [("early", "hidden"), ("attention", "d_model"), ("gated", "d")]
    ]
    assert all(p["fusion.width"] == 64 for p in widths)
    assert "focal_gamma" not in widths[0] and "dropout" in widths[0]
    focal = PipelineSpec.model_validate({"training": {"loss": "focal", "focal_gamma": 3.0}})
    assert run_params(focal)["focal_gamma"] == 3.0
    assert mlflow_param("encoder.image.timm/vit.augreg.frozen") == "encoder.image.frozen"
    # the image side has one name, whichever encoder calls it what
    assert mlflow_param("encoder.image.efficientnet_lite0.image_size") == "encoder.image.size"
    timm = PipelineSpec(
        encoders={"image": {"name": "timm/test_resnet", "options": {"image_size": 96}}}
    )
    pixels = PipelineSpec(encoders={"image": {"name": "pixels", "options": {"size": 8}}})
    assert (
        run_params(timm)["encoder.image.size"] == 96
        and run_params(pixels)["encoder.image.size"] == 8
    )
    assert "encoder.image.image_size" not in run_params(timm)
    assert optuna_name_tags({"fusion": "attention", "fusion.attention.d_model": 64, "lr": 0.1}) == {
        "optuna.name.fusion.width": "fusion.attention.d_model"
    }


@pytest.mark.slow
def test_mlflow_shows_each_trial_as_optuna_does(tracked_search: Any) -> None:
    """One score per trial (a pruned one too), used params only, findable names, and a parent
    run that summarizes the study and links its best trial."""
    import optuna

    study = optuna.load_study(study_name=tracked_search.study_name, storage=tracked_search.storage)
    assert study.metric_names == ["cv.f1_macro"]  # optuna-dashboard's axis, not "Objective 0"
    client = MlflowClient(tracked_search.tracking_uri)
    exp = client.get_experiment_by_name("mmbench/tiny-suite")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    states = {t.state.name for t in study.trials}
    assert states == {"COMPLETE", "PRUNED"}, "the fixture must hold a pruned trial"
    for t in study.trials:
        run = runs[f"tiny/trial-{t.number:03d}"]
        assert run.data.metrics["cv.f1_macro"] == pytest.approx(t.value)
        assert run.data.tags["mmbench.state"] == t.state.name.lower()
        assert run.info.status == "FINISHED"  # pruned is not a crash (FAILED) or a kill
        assert run.data.params["fusion.width"] == str(t.params["fusion.early.hidden"])
        assert run.data.tags["optuna.name.fusion.width"] == "fusion.early.hidden"
        assert "epoch.val_score" in run.data.metrics  # one curve, not one per fold
    [parent] = [r for n, r in runs.items() if n.startswith("tiny/search: best ")]
    best = study.best_trial
    assert parent.data.metrics["study.trials.pruned"] == 1
    assert parent.data.metrics["study.best_value"] == pytest.approx(best.value)
    assert parent.data.params["study.name"] == tracked_search.study_name
    assert parent.data.tags["mmbench.best_trial_run_id"] == best.user_attrs["mlflow_run_id"]
    assert best.user_attrs["mlflow_run_id"] in parent.data.tags["mlflow.note.content"]
    [best_run] = [r for n, r in runs.items() if n.startswith("tiny/best: ")]
    assert best_run.data.tags["mmbench.trial"] == str(best.number)
    fusion = best_run.data.params["fusion"]  # the winner's head and encoders are in its name
    assert best_run.info.run_name.startswith(f"tiny/best: {fusion} on ")
    assert parent.info.run_name == best_run.info.run_name.replace("tiny/best:", "tiny/search: best")
    assert best_run.data.tags["mmbench.pipeline.head"].startswith(fusion)
    assert any(k.startswith("class.") and k.endswith(".f1") for k in best_run.data.metrics)
    [model] = client.search_logged_models([exp.experiment_id], filter_string="name = 'tiny-search'")
    mlmodel = (Path(model.artifact_location.removeprefix("file://")) / "MLmodel").read_text()
    assert "uri:" not in mlmodel  # no source path of the machine that logged it
    assert str(tracked_search.root) not in mlmodel.replace(model.artifact_location, "")


def test_importance_plot_names_parameters_as_mlflow_does(tmp_path: Path) -> None:
    import optuna

    from mmbench.tracking.naming import mlflow_param
    from mmbench.tracking.pictures import importances_bars, optuna_pngs

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    study.optimize(
        lambda t: (
            t.suggest_int("fusion.attention.d_model", 16, 64) / 64 + t.suggest_float("lr", 0, 1e-3)
        ),
        n_trials=8,
    )
    ax = importances_bars(study, mlflow_param)
    assert {t.get_text() for t in ax.get_yticklabels()} == {"fusion.width", "lr"}
    pngs = optuna_pngs(study, tmp_path, rename=mlflow_param)
    assert {p.name for p in pngs} == {"optuna_history.png", "optuna_importances.png"}


def test_a_declined_trial_has_its_own_state_name_and_honest_description(tmp_path: Path) -> None:
    """A trial declined before any fold is not a green "Finished" pruned trial: its run ends
    KILLED, is named ``(declined)``, has no score and says no fold ran; a pruned trial beside
    it keeps its last fold's score."""
    import optuna

    from mmbench.config import PipelineSpec
    from mmbench.tracking.client import Tracker
    from mmbench.tracking.study import StudyRecorder

    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "mmbench/declined")
    parent = tracker.start_run("d/search", {})
    recorder = StudyRecorder(tracker, parent, {"mmbench.dataset": "d"}, pytest.fail, "f1_macro")
    study = optuna.create_study(study_name="s.d")
    declined, pruned = study.ask(), study.ask()
    spec = PipelineSpec(fusion="linear")
    reason = "a linear trial takes ~30 s with cached features (+ ~0 s encoding); 9 s left"
    for trial in (declined, pruned):
        recorder.start(trial, spec)
    recorder.end(declined, "declined", spec, [], reason)
    recorder.end(pruned, "pruned", spec, [_fold({"f1_macro": 0.4})], "pruned after fold r0f0")
    run = tracker.client.get_run(declined.user_attrs["mlflow_run_id"])
    assert run.info.status == "KILLED" and run.info.run_name == "d/trial-000 (declined)"
    assert run.data.tags["mmbench.state"] == "declined"
    note = run.data.tags["mlflow.note.content"]
    assert note.startswith("**Declined** before any fold ran: a linear trial takes ~30 s")
    assert "last fold" not in note and not any(k.startswith("cv.") for k in run.data.metrics)
    other = tracker.client.get_run(pruned.user_attrs["mlflow_run_id"])
    assert other.info.status == "FINISHED" and other.info.run_name == "d/trial-001"
    assert other.data.metrics["cv.f1_macro"] == pytest.approx(0.4)


def _fold(metrics: dict[str, float]) -> Any:
    from mmbench.pipeline import FoldResult

    return FoldResult(key="r0f0", metrics=metrics)


def test_predict_refuses_words_in_a_numeric_column_and_warns_of_unseen_categories(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Rows are checked against the columns the saved model was trained on: text where the
    training rows held numbers is refused with the column, the rows and their values (it would
    otherwise score as missing, silently); a category never seen in training scores, with a
    warning naming the column."""
    import pandas as pd

    from mmbench.cli import main
    from mmbench.config import PipelineSpec
    from mmbench.data import load_table
    from mmbench.data.loading import frame_from_table
    from mmbench.pipeline import fit_pipeline

    columns = ["num_0", "num_1", "num_2", "num_3", "cat_0", "cat_1"]
    suite = tiny_suite(tmp_path, modalities={"tabular": columns})
    suite.path.write_text(json.dumps(suite.model_dump(mode="json", exclude={"path"})))
    dataset = suite.datasets[0]
    table = load_table(dataset, suite.root)
    spec = PipelineSpec.model_validate(
        {"encoders": {"tabular": "tabular"}, "fusion": {"name": "linear"}}
    )
    fit_pipeline(table, spec, seed=0).save(tmp_path / "res/tiny-suite/tiny/models/default.joblib")
    rows = frame_from_table(table, dataset.modalities, 6)
    command = ["predict", str(suite.path), str(tmp_path / "rows.csv")]
    command += ["--results", str(tmp_path / "res"), "--output", str(tmp_path / "out.csv")]

    words = rows.assign(num_1=["1.5", "high", "low", "2", None, "?"])
    words.to_csv(tmp_path / "rows.csv", index=False)
    assert main(command) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'rows.csv'}: input rows do not match the model's training columns" in err
    assert "column 'num_1' is numeric in training, but 3 of 6 rows hold no number" in err
    assert "row 1: 'high', row 2: 'low', row 5: '?'" in err
    assert not (tmp_path / "out.csv").exists()

    rows.assign(cat_0=["zebra", *rows["cat_0"][1:]]).to_csv(tmp_path / "rows.csv", index=False)
    assert main(command) == 0
    err = capsys.readouterr().err
    assert "column 'cat_0': 1 of 6 rows hold categories never seen in training" in err
    assert "row 0: 'zebra'" in err and "num_" not in err
    assert len(pd.read_csv(tmp_path / "out.csv")) == 6

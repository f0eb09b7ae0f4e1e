"""Many workers on one study: `run --workers`, `mmbench worker` on PostgreSQL, a killed worker.

The tests marked ``faults`` start several real processes (and a PostgreSQL server); the default
run deselects them and ``.ci/run`` runs them (``pytest -m faults``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from mmbench.final import MAX_CANDIDATES
from mmbench.search.coordination import config_key, counts

SUITE = {
    "name": "wk",
    "seed": 0,
    "datasets": [
        {
            "name": "tiny",
            "source": {"kind": "synthetic", "options": {"n_rows": 150, "n_classes": 3, "seed": 1}},
            "target": "label",
            "modalities": {
                "text": "text",
                "tabular": ["num_0", "num_1", "num_2", "num_3", "cat_0", "cat_1"],
            },
            "protocol": {"folds": 3},
            "budget": {"trials": 8},
            "search": {
                "encoders": {"text": "tfidf", "tabular": "tabular"},
                "encoder_options": {},
                "fusion": "early",
                "training": {
                    "epochs": 6,
                    "batch_size": 32,
                    "patience": 3,
                    "lr": {"low": 1e-3, "high": 1e-2, "log": True},
                },
            },
        }
    ],
}


def write_suite(tmp_path: Path, epochs: int = 6) -> Path:
    suite = json.loads(json.dumps(SUITE))
    suite["datasets"][0]["search"]["training"]["epochs"] = epochs
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def mmbench(*args: str, **kwargs: Any) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mmbench.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def ran(study: Any) -> list[Any]:
    """Trials that hold budget (not duplicates, surplus or interrupted ones)."""
    return [t for t in study.get_trials(deepcopy=False) if counts(t)]


def test_run_with_two_workers_shares_one_study_and_finalizes_once(tmp_path: Path) -> None:
    suite = write_suite(tmp_path)
    res = tmp_path / "res"
    proc = mmbench("run", str(suite), "--workers", "2", "--results", str(res), "--no-track")
    out, _ = proc.communicate(timeout=400)
    assert proc.returncode == 0, out
    study = optuna.load_study(study_name="wk.tiny", storage=f"sqlite:///{res / 'wk/optuna.db'}")
    trials = ran(study)
    assert len(trials) == 8 and all(t.state == TrialState.COMPLETE for t in trials)
    assert len({config_key(t.params) for t in trials}) == 8
    assert len({t.user_attrs["worker"]["pid"] for t in trials}) == 2  # both workers searched
    assert sorted(p.name for p in (res / "wk/tiny").glob("*.json")) == [
        "ensemble.json",
        "search.json",
    ]
    ensemble = json.loads((res / "wk/tiny/ensemble.json").read_text())["ensemble"]
    assert ensemble["candidates"] == min(8, MAX_CANDIDATES)  # among every worker's trials
    # the parent ran no trial, but its result file counts what the workers did
    written = json.loads((res / "wk/tiny/search.json").read_text())
    first = min(t.datetime_start for t in trials).timestamp()
    last = max(t.datetime_complete for t in trials).timestamp()
    assert written["budget"]["trials_run"] == 8 and written["search"]["new_trials"] == 8
    assert 0.9 * (last - first) <= written["budget"]["search_s"] <= last - first + 0.01
    summed = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in trials)
    assert written["budget"]["trial_s"] >= summed - 0.01
    logs = [p.read_text() for p in sorted((res / "wk/runs/workers").glob("*.log"))]
    assert len(logs) == 2 and not any("wrote" in log for log in logs)  # the parent finalized
    assert out.count("wrote") == 2, out
    for log in logs:  # each worker's log shows the trials it ran, with the best so far
        assert re.search(r"tiny: search \d+/8 trial \d+ complete, best 0\.\d+", log), log
    mentioned = {int(n) for log in logs for n in re.findall(r"trial (\d+) complete", log)}
    assert {t.number for t in trials} <= mentioned
    # the parent counts the workers' trials while they run, and the finalize step reads them
    assert "tiny: search (8 trials) 8/8 finished by the workers" in out, out
    assert "tiny: search 8/8 trial" in out, out


@pytest.mark.faults
def test_four_workers_on_a_fresh_postgresql_share_one_40_trial_study(
    tmp_path: Path, postgres_url: str
) -> None:
    suite = write_suite(tmp_path)
    res = tmp_path / "res"
    args = ["worker", str(suite), "--storage", postgres_url, "--results", str(res)]
    args += ["--trials", "40", "--no-track", "--no-ablate"]
    procs = [mmbench(*args) for _ in range(4)]  # all at once: the creation race
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outs
    study = optuna.load_study(study_name="wk.tiny", storage=postgres_url)
    trials = ran(study)
    assert len(trials) == 40
    assert len({config_key(t.params) for t in trials}) == 40
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    assert sum("wrote" in out for out in outs) == 1, outs  # exactly one worker finalized
    assert sorted(p.name for p in (res / "wk/tiny").glob("*.json")) == [
        "ensemble.json",
        "search.json",
    ]
    result = json.loads((res / "wk/tiny/search.json").read_text())
    assert result["search"]["states"]["complete"] >= 40


@pytest.mark.faults
def test_a_worker_killed_mid_trial_is_retried_and_nothing_is_left_running(
    tmp_path: Path,
) -> None:
    from mlflow import MlflowClient

    suite = write_suite(tmp_path, epochs=60)
    res, uri = tmp_path / "res", f"sqlite:///{tmp_path / 'mlflow.db'}"
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    args = ["worker", str(suite), "--storage", storage, "--results", str(res)]
    args += ["--trials", "6", "--tracking-uri", uri, "--no-ablate"]
    victim = mmbench(*args)
    study = _wait_for_running_trial(storage, victim.pid)
    survivor = mmbench(*args)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=60)
    out, _ = survivor.communicate(timeout=600)
    assert survivor.returncode == 0, out
    trials = study.get_trials()
    killed = [t for t in trials if t.user_attrs.get("worker", {}).get("pid") == victim.pid]
    assert killed and killed[0].state == TrialState.FAIL
    assert any(t.user_attrs.get("retry_of") == killed[0].number for t in trials)
    assert len(ran(study)) == 6 and all(t.state != TrialState.RUNNING for t in trials)
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("mmbench/wk").experiment_id])
    assert runs and not [r.info.run_name for r in runs if r.info.status == "RUNNING"]
    assert "wrote" in out


def _wait_for_running_trial(storage: str, pid: int) -> Any:
    """The study, once worker ``pid`` has a RUNNING trial."""

    def mine(t: Any) -> bool:
        return t.state == TrialState.RUNNING and t.user_attrs.get("worker", {}).get("pid") == pid

    return _wait_for(storage, lambda trials: any(mine(t) for t in trials), "no trial started")


@pytest.mark.faults
@pytest.mark.server
def test_a_tracking_server_killed_mid_search_is_survived_and_backfilled(
    tmp_path: Path,
) -> None:
    """What it costs in wall time (tracked vs untracked) is measured by
    ``benchmarks/tracking_outage.py``, not asserted here: a timing ratio on a shared machine is
    a benchmark, not a unit test."""
    from mlflow import MlflowClient
    from test_tracking import kill_group, running_mlflow_server

    suite = write_suite(tmp_path, epochs=40)  # trials long enough that the kill lands mid-search
    args = ["run", str(suite), "--trials", "16", "--no-ablate", "--quiet"]
    res = tmp_path / "res"
    storage = f"sqlite:///{res / 'wk/optuna.db'}"
    with running_mlflow_server(tmp_path) as (url, server):
        run = mmbench(*args, "--results", str(res), "--tracking-uri", url)
        _wait_for_complete_trials(storage, 4)
        kill_group(server, signal.SIGKILL)  # mid-search
        out, _ = run.communicate(timeout=600)
        assert run.returncode == 0, out
    study = optuna.load_study(study_name="wk.tiny", storage=storage)
    assert len(ran(study)) == 16  # the search went on
    result = json.loads((res / "wk/tiny/search.json").read_text())
    assert result["tracking"] is None and result["search"]["tracking_seconds"] > 0
    # the server is back (same store): `mmbench track` fills in what the outage lost, once
    port = int(url.rsplit(":", 1)[1])  # restarted where it was, on the same store
    with running_mlflow_server(tmp_path, port=port) as (url, _):
        track = ["track", str(suite), "--results", str(res), "--tracking-uri", url]
        first = mmbench(*track).communicate(timeout=300)[0]
        again = mmbench(*track).communicate(timeout=300)[0]
        client = MlflowClient(tracking_uri=url)
        runs = client.search_runs([client.get_experiment_by_name("mmbench/wk").experiment_id])
    assert "2 result files" in first and "0 result files and 0 trial runs" in again, first + again
    trials = [r for r in runs if r.data.tags.get("mmbench.kind") == "trial"]
    assert len(trials) == 16 and {r.info.status for r in trials} == {"FINISHED"}
    assert len({r.data.tags["mmbench.trial"] for r in trials}) == 16
    assert not [r for r in runs if r.info.status == "RUNNING"]
    assert json.loads((res / "wk/tiny/search.json").read_text())["tracking"]["run_id"]


def _wait_for_complete_trials(storage: str, n: int) -> None:
    def done(trials: list[Any]) -> bool:
        return sum(t.state == TrialState.COMPLETE for t in trials) >= n

    _wait_for(storage, done, f"fewer than {n} trials completed")


def _wait_for(storage: str, ready: Any, failure: str, timeout: float = 300) -> Any:
    """Poll the study (once a second) until ``ready(trials)``; the study."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(1.0)
        try:
            study = optuna.load_study(study_name="wk.tiny", storage=storage)
        except Exception:  # not created yet
            continue
        if ready(study.get_trials(deepcopy=False)):
            return study
    pytest.fail(failure)


DISK_FULL = """
import resource, signal, sys
from mmbench.cli import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))  # no file may grow past 2 kB
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.faults
@pytest.mark.parametrize("trials", ["1", "3"], ids=["single", "search"])
def test_a_full_disk_is_a_clear_error_and_leaves_nothing_half_written(
    tmp_path: Path, trials: str
) -> None:
    suite = write_suite(tmp_path)
    res = tmp_path / "res"
    args = [str(suite), "--trials", trials, "--results", str(res), "--no-track", "--no-ablate"]
    proc = subprocess.run(
        [sys.executable, "-c", DISK_FULL, "run", *args, "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "Traceback" not in out
    if trials == "1":  # the cross-validation ran: its scores are printed, not lost
        assert "could not write its result file" in out and "f1_macro 0." in out
    else:
        assert "cannot open Optuna storage" in out and "disk I/O error" in out
    # no result, no temp file, no empty optuna.db, no lock owner's note: only the run lock's
    # empty file, which stays by design (a waiter and the next holder lock the same inode)
    left = [p for p in res.rglob("*") if p.is_file()]
    assert left == [res / "wk" / "run.lock"], left
    assert (res / "wk" / "run.lock").stat().st_size == 0


@pytest.mark.parametrize("kind", ["sqlite", "journal", "memory"])
def test_a_claim_is_won_once_per_key(tmp_path: Path, kind: str) -> None:
    from mmbench.search.coordination import claim, claimed
    from mmbench.search.storage import make_storage

    url = {"sqlite": f"sqlite:///{tmp_path / 's.db'}", "journal": str(tmp_path / "s.journal")}
    storage = make_storage(url[kind], 30) if kind != "memory" else None
    study = optuna.create_study(storage=storage, study_name="s")
    other = optuna.load_study(study_name="s", storage=storage) if storage else study
    assert claim(study, "finalize.3", {"pid": 1}) is True
    assert claim(other, "finalize.3", {"pid": 2}) is False  # another worker, same point
    assert claimed(other, "finalize.3") == {"pid": 1}
    assert claim(other, "finalize.4", {"pid": 2}) is True  # more trials since: finalize again


def test_a_worker_leaves_finalizing_to_finalize(tmp_path: Path) -> None:
    from conftest import tiny_suite

    from mmbench.run import RunOptions, run_suite

    search = {"fusion": "early", "training": SUITE["datasets"][0]["search"]["training"]}
    suite = tiny_suite(tmp_path, trials=4, search=search)
    options = RunOptions(results_dir=tmp_path / "res", track=False, ablate=False, progress=False)
    worker = RunOptions(**{**options.__dict__, "worker": 0, "finalize": "never"})
    assert run_suite(suite, worker) == []  # trials run, no result file
    assert not list((tmp_path / "res").rglob("*.json"))
    final = RunOptions(**{**options.__dict__, "finalize": "only", "started_at": time.time()})
    outcomes = run_suite(suite, final)
    assert [o.pipeline for o in outcomes] == ["search", "ensemble"]
    search_result = outcomes[0].result.search
    assert search_result.new_trials == 0 and search_result.states == {"complete": 4}
    assert outcomes[0].result.budget.trials_run == 4  # the study's trials, not this process's
    assert outcomes[0].result.budget.search_s > 0
    assert outcomes[1].result.ensemble.candidates == 4  # from the worker's kept trial results


def _tiny_search_suite(tmp_path: Path) -> Any:
    from conftest import tiny_suite

    search = {"fusion": "early", "training": SUITE["datasets"][0]["search"]["training"]}
    return tiny_suite(tmp_path, trials=4, search=search)


def _options(tmp_path: Path, **changes: Any) -> Any:
    from mmbench.run import RunOptions

    base = RunOptions(results_dir=tmp_path / "res", track=False, ablate=False, progress=False)
    return RunOptions(**{**base.__dict__, **changes})


def _finalize(tmp_path: Path) -> list[Any]:
    from mmbench.run import run_suite

    options = _options(tmp_path, finalize="only", started_at=time.time())
    return run_suite(_tiny_search_suite(tmp_path), options)


def _kept_trials(tmp_path: Path) -> tuple[dict[int, Path], int]:
    """A worker that does not finalize runs four trials; their files in the trial store by
    trial number, and the best trial's number."""
    from mmbench.run import run_suite

    worker = _options(tmp_path, worker=0, finalize="never")
    assert run_suite(_tiny_search_suite(tmp_path), worker) == []
    storage = f"sqlite:///{tmp_path / 'res/tiny-suite/optuna.db'}"
    study = optuna.load_study(study_name="tiny-suite.tiny", storage=storage)
    files = (tmp_path / "res/tiny-suite/tiny/runs/trials").rglob("trial-*.joblib")
    by_number = {int(f.stem.split("-")[1]): f for f in files}
    assert len(by_number) == 4
    return by_number, study.best_trial.number


def test_an_unreadable_kept_trial_fails_finalize_naming_the_store(tmp_path: Path) -> None:
    """A corrupt trial file in the store is not silently left out of the ensemble: the final
    phase fails naming the store, the trial and the way out, and writes or deletes nothing;
    removing the damaged file finalizes from the others, and the result file lists it."""
    files, best = _kept_trials(tmp_path)
    number = min(n for n in files if n != best)
    files[number].write_bytes(b"not a pickle")

    (outcome,) = _finalize(tmp_path)
    error = outcome.error or ""
    assert "1 of the study's 4 completed trials could not be read back" in error
    assert str(files[number].parent.parent) in error and f"#{number}" in error
    assert str(files[number]) in error  # the first error, with its file
    assert "mmbench finalize" in error and "remove the damaged files" in error
    assert all(f.exists() for f in files.values())  # nothing deleted
    assert not list((tmp_path / "res").rglob("*.json"))  # nothing written

    files[number].unlink()
    outcomes = _finalize(tmp_path)
    assert [o.pipeline for o in outcomes] == ["search", "ensemble"]
    kept = outcomes[0].result.search.trial_store
    assert kept.read == 3 and kept.missing == [number] and kept.unreadable == []
    assert outcomes[1].result.ensemble.candidates == 3
    assert any("no kept outputs" in w for w in outcomes[0].warnings)


def test_an_unreadable_best_trial_is_evaluated_again_and_counted(tmp_path: Path) -> None:
    """The best trial is evaluated again when its file is unreadable, so nothing is lost: the
    final phase goes on, warns with the trial and its path, and counts it in the result file."""
    files, best = _kept_trials(tmp_path)
    files[best].write_bytes(b"\x80\x04garbage")

    outcomes = _finalize(tmp_path)
    assert [o.pipeline for o in outcomes] == ["search", "ensemble"] and not outcomes[0].error
    kept = outcomes[0].result.search.trial_store
    assert kept.unreadable == [best] and kept.read == 3 and kept.missing == []
    assert outcomes[1].result.ensemble.candidates == 4
    warning = f"trial {best}: its kept outputs are unreadable: {files[best]}: "
    assert any(w.startswith(warning) for w in outcomes[0].warnings)


def test_the_trial_store_tells_missing_from_unreadable(tmp_path: Path) -> None:
    """Not there, there but empty, there but not a trial's CV result."""
    import joblib

    from mmbench.search.coordination import load_trial_cvs, trial_cv_url

    (tmp_path / "s_1").mkdir()
    Path(trial_cv_url(tmp_path, "s/1", 2)).write_bytes(b"")
    joblib.dump({"not": "a cv"}, trial_cv_url(tmp_path, "s/1", 3))
    reads = load_trial_cvs(tmp_path, "s/1", [1, 2, 3])
    assert reads.cvs == {} and reads.missing == [1] and sorted(reads.unreadable) == [2, 3]
    assert reads.unreadable[2].startswith(trial_cv_url(tmp_path, "s/1", 2) + ": ")
    assert "not a trial's CV result" in reads.unreadable[3]


def test_an_unreadable_trial_is_named_without_the_stores_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a read failure says goes into warnings and errors: the store's password is ``***``."""
    from mmbench.search import coordination

    def refuse(url: str) -> Any:
        raise PermissionError("access denied")

    monkeypatch.setattr(coordination, "_read_trial_cv", refuse)
    reads = coordination.load_trial_cvs("ftp://me:hunter2@host/trials", "s", [4])
    assert "hunter2" not in reads.unreadable[4]
    assert reads.unreadable[4].startswith("ftp://me:***@host/trials/s/trial-00004.joblib: ")


def test_study_work_counts_every_worker_and_session_once() -> None:
    """Two overlapping workers, a resume after a gap, a duplicate and an interrupted trial."""
    from datetime import datetime, timedelta

    from optuna.distributions import FloatDistribution

    from mmbench.search.coordination import study_work

    t0 = datetime(2026, 1, 1, 12, 0, 0)
    study = optuna.create_study()

    def add(begin: float, end: float, state: TrialState, **attrs: Any) -> None:
        trial = optuna.trial.FrozenTrial(
            number=len(study.trials), state=state, value=0.5 if state == TrialState.COMPLETE else None,
            datetime_start=t0 + timedelta(seconds=begin),
            datetime_complete=t0 + timedelta(seconds=end),
            params={"x": begin}, distributions={"x": FloatDistribution(0, 1000)},
            user_attrs=attrs, system_attrs={}, intermediate_values={}, trial_id=0,
        )  # fmt: skip
        study.add_trial(trial)

    add(0, 10, TrialState.COMPLETE)  # worker 1
    add(5, 15, TrialState.COMPLETE)  # worker 2, overlapping
    add(100, 110, TrialState.COMPLETE)  # after a --resume
    add(110, 110.5, TrialState.FAIL, duplicate_of=0)  # no work, no budget
    add(120, 121, TrialState.FAIL)  # interrupted: ran, but holds no budget
    work = study_work(study, since=(t0 + timedelta(seconds=100)).timestamp())
    assert work["trials"] == 3 and work["new_trials"] == 1
    assert work["search_s"] == pytest.approx(15 + 10 + 0.5 + 1)  # the union: no gap, no overlap
    assert work["trial_s"] == pytest.approx(10 + 10 + 10 + 0.5 + 1)
    assert study_work(study)["new_trials"] == 3


def test_finalize_uses_the_studys_budget_and_needs_a_study(tmp_path: Path) -> None:
    """A suite file that now says ``trials: 1`` does not turn ``finalize`` into a default run."""
    from conftest import tiny_suite

    from mmbench.run import RunOptions, run_suite
    from mmbench.search.coordination import read_budget

    search = {"fusion": "early", "training": SUITE["datasets"][0]["search"]["training"]}
    options = RunOptions(results_dir=tmp_path / "res", track=False, ablate=False, progress=False)
    final = RunOptions(**{**options.__dict__, "finalize": "only"})
    single = tiny_suite(tmp_path, trials=1, search=search)
    (missing,) = run_suite(single, final)  # no study yet: an error, not a silent default run
    assert missing.error and "no study 'tiny-suite.tiny'" in missing.error
    assert "mmbench run" in missing.error
    assert not list((tmp_path / "res").rglob("*.json"))
    resume = RunOptions(**{**options.__dict__, "resume": True})
    (nothing,) = run_suite(tiny_suite(tmp_path, trials=3, search=search), resume)
    assert nothing.error and "no study" in nothing.error  # --resume never starts a new study

    worker = RunOptions(**{**options.__dict__, "worker": 0, "finalize": "never"})
    assert run_suite(tiny_suite(tmp_path, trials=3, search=search), worker) == []
    outcomes = run_suite(single, final)
    assert [o.pipeline for o in outcomes] == ["search", "ensemble"]
    assert not (tmp_path / "res/tiny-suite/tiny/default.json").exists()
    assert outcomes[0].result.budget.trials_run == 3
    study = optuna.load_study(
        study_name="tiny-suite.tiny", storage=f"sqlite:///{tmp_path / 'res/tiny-suite/optuna.db'}"
    )
    assert read_budget(study)["n_trials"] == 3  # finalize did not overwrite it with the suite's 1


def test_a_failure_in_the_final_phase_names_it_and_its_command_finishes(tmp_path: Path) -> None:
    """The models folder cannot be made (a file is in its way, as a full or read-only disk
    would refuse it): the error names the step and the path, gives the best trial's score and
    the command that finishes, with the options the run had (its trial store included); that
    command, run as printed, writes the results from the kept study and every trial's outputs."""
    import re
    import shlex

    from mmbench.cli import main
    from mmbench.run import RunOptions, run_suite
    from mmbench.suite import load_suite

    suite = load_suite(write_suite(tmp_path))
    res, store = tmp_path / "res", tmp_path / "store"
    options = RunOptions(
        results_dir=res, track=False, ablate=False, progress=False, artifacts=str(store), trials=3
    )
    blocker = res / "wk/tiny/models"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way")
    (outcome,) = run_suite(suite, options)
    error = outcome.error or ""
    assert "the search finished, but refitting and saving the best trial's model failed" in error
    assert str(blocker) in error and "best trial #" in error and "f1_macro 0." in error
    command = re.search(r"`(mmbench finalize [^`]*)`", error)
    assert command is not None, error
    assert command[1] == (
        f"mmbench finalize {suite.path} --dataset tiny --results {res} --artifacts {store} "
        "--trials 3 --no-track --no-ablate"
    )
    assert not list(res.rglob("*.json"))

    blocker.unlink()
    assert main([*shlex.split(command[1])[1:], "--quiet"]) == 0
    written = json.loads((res / "wk/tiny/search.json").read_text())
    assert written["budget"]["trials_run"] == 3
    ensemble = json.loads((res / "wk/tiny/ensemble.json").read_text())
    assert ensemble["ensemble"]["candidates"] == 3  # every trial's outputs found in the store


def test_a_failed_read_of_the_workers_progress_leaves_them_searching(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parent's bar reads the studies while workers write them; a read that fails (a busy
    SQLite file, a dropped connection) is said once and the bar goes on: it never ends the run
    (the workers would be terminated with it)."""
    import io

    from rich.console import Console

    import mmbench.search.storage as storage_module
    from mmbench.progress import Reporter
    from mmbench.run import workers

    reads = iter([RuntimeError("database is locked"), RuntimeError("again"), 3])

    def ended(storage: Any, studies: Any) -> int:
        value = next(reads)
        if isinstance(value, Exception):
            raise value
        return value

    monkeypatch.setattr(storage_module, "make_storage", lambda url, heartbeat_s=None: object())
    monkeypatch.setattr(workers, "_ended_trials", ended)
    monkeypatch.setattr(workers, "POLL_S", 0.0)
    out = io.StringIO()
    reporter = Reporter(console=Console(file=out, width=200))
    plan = workers.WorkerPlan("sqlite://", {"tiny": "wk.tiny"}, tmp_path, trials=3)
    polls = iter([False, False, True])
    workers._follow(plan, reporter, lambda: next(polls))
    text = out.getvalue()
    assert text.count("database is locked") == 1 and "again" not in text
    assert "3/3" in text


def test_a_printed_command_carries_every_option_of_the_run(tmp_path: Path) -> None:
    """The hint's flags parse back, through the real parser, into the options the job had."""
    import shlex

    from conftest import tiny_suite

    from mmbench.cli import build_parser
    from mmbench.run.context import RunOptions, command_line

    suite = tiny_suite(tmp_path)
    options = RunOptions(
        results_dir=tmp_path / "r",
        storage="postgresql://me:secret@db/optuna",
        artifacts="s3://bucket/mmbench",
        trials=7,
        timeout=90.0,
        tracking_uri="http://mlflow:5000",
        cache_dir=tmp_path / "c",
        track=False,
        use_cache=False,
        ablate=True,
    )
    line = command_line("finalize", suite, options, ["tiny"])
    assert "secret" not in line and "me:***@db" in line
    args = build_parser().parse_args(shlex.split(line)[1:])
    assert (args.command, args.suite, args.dataset) == ("finalize", suite.path, ["tiny"])
    assert (args.results, args.artifacts, args.trials, args.timeout) == (
        tmp_path / "r",
        "s3://bucket/mmbench",
        7,
        90.0,
    )
    assert (args.tracking_uri, args.cache_dir) == ("http://mlflow:5000", tmp_path / "c")
    assert (args.no_track, args.no_cache, args.ablate) == (True, True, True)


def test_a_printed_command_shows_no_password_of_any_url(tmp_path: Path) -> None:
    """Every URL option of a hint (study storage, MLflow, trial store) prints its password as
    ``***``: a tracking database or server URL holds credentials as often as the storage."""
    from conftest import tiny_suite

    from mmbench.run.context import RunOptions, command_line

    options = RunOptions(
        results_dir=tmp_path / "r",
        storage="postgresql://me:s1@db/optuna",
        tracking_uri="postgresql://ml:s2@db/mlflow",
        artifacts="s3://key:s3@bucket/mmbench",
    )
    line = command_line("finalize", tiny_suite(tmp_path), options, ["tiny"])
    assert not {"s1", "s2", "s3"} & set(line.replace("@", " ").replace(":", " ").split())
    assert "ml:***@db/mlflow" in line and "me:***@db/optuna" in line


@pytest.mark.faults
def test_four_workers_as_dask_tasks_on_a_local_cluster_share_one_study(tmp_path: Path) -> None:
    """`run --workers 4 --cluster local`: the workers are Dask tasks (each a `mmbench worker`
    process with one thread); the parent finalizes once from all of their trials."""
    pytest.importorskip("dask.distributed")
    suite = write_suite(tmp_path)
    res = tmp_path / "res"
    args = ["run", str(suite), "--workers", "4", "--cluster", "local", "--worker-threads", "1"]
    proc = mmbench(*args, "--results", str(res), "--no-track")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert "4 workers on a local Dask cluster" in out
    study = optuna.load_study(study_name="wk.tiny", storage=f"sqlite:///{res / 'wk/optuna.db'}")
    trials = ran(study)
    assert len(trials) == 8 and len({config_key(t.params) for t in trials}) == 8
    assert len({t.user_attrs["worker"]["pid"] for t in trials}) >= 2  # several workers searched
    logs = sorted((res / "wk/runs/workers").glob("worker-*.log"))
    assert len(logs) == 4  # each task's output, brought back
    written = json.loads((res / "wk/tiny/search.json").read_text())
    assert written["budget"]["trials_run"] == 8
    assert (res / "wk/tiny/ensemble.json").exists()


@pytest.fixture
def s3_store(tmp_path: Path) -> Any:
    """An S3-compatible object store on localhost (moto's server) with an empty bucket; the
    child processes reach it through fsspec's ``FSSPEC_S3_*`` settings."""
    moto_server = pytest.importorskip("moto.server")
    s3fs = pytest.importorskip("s3fs")
    from conftest import free_port

    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "FSSPEC_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}",  # botocore's own, belt and braces
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        s3fs.S3FileSystem(endpoint_url=env["FSSPEC_S3_ENDPOINT_URL"]).mkdir("trials")
        yield "s3://trials/mmbench", env["FSSPEC_S3_ENDPOINT_URL"]
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


@pytest.mark.faults
@pytest.mark.server
def test_two_hosts_without_a_shared_disk_and_a_killed_worker_finalize_from_a_third(
    tmp_path: Path, s3_store: tuple[str, str]
) -> None:
    """Two "hosts" (own working folder, results and feature cache) search one study and keep
    trial outputs in an S3 store; one is SIGKILLed mid-trial. `finalize` in a third folder that
    ran no trial builds the ensemble from the store alone: every complete trial is a
    candidate, none is evaluated again, and members and held-out scores equal those of a
    finalize on one machine that holds every trial's outputs on its own disk.

    The study is a SQLite file in a folder of its own, standing in for the database server the
    hosts would share: what is under test is that no trial output goes through a shared disk
    (the study database on PostgreSQL is tested by the 40-trial test above)."""
    import fsspec

    store, endpoint = s3_store
    database = tmp_path / "database"
    database.mkdir()
    storage = f"sqlite:///{database / 'optuna.db'}"
    suite = write_suite(tmp_path, epochs=40)
    raw = yaml.safe_load(suite.read_text())
    raw["datasets"][0]["test_source"] = {
        "kind": "synthetic", "options": {"n_rows": 90, "n_classes": 3, "seed": 7}
    }  # fmt: skip
    suite.write_text(yaml.safe_dump(raw))

    def host(name: str) -> list[str]:
        folder = tmp_path / name
        return ["--results", str(folder / "res"), "--cache-dir", str(folder / "cache")]

    common = [str(suite), "--storage", storage, "--artifacts", store, "--no-track"]
    common += ["--no-ablate", "--trials", "8"]
    victim = mmbench("worker", *common, *host("a"), "--finalize", "never")
    study = _wait_for_running_trial(storage, victim.pid)
    survivor = mmbench("worker", *common, *host("b"), "--finalize", "never")
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=60)
    out, _ = survivor.communicate(timeout=600)
    assert survivor.returncode == 0, out
    assert not (tmp_path / "a/res/wk/tiny/runs").exists()  # nothing kept on the hosts' disks
    complete = [t.number for t in study.get_trials() if t.state == TrialState.COMPLETE]
    assert len(ran(study)) == 8 and not study.get_trials(states=(TrialState.RUNNING,))

    final = mmbench("finalize", *common, *host("c"))  # ran no trial, reads the store
    out_c, _ = final.communicate(timeout=600)
    assert final.returncode == 0, out_c
    fs = fsspec.filesystem("s3", endpoint_url=endpoint)  # localhost only, never AWS
    local_store = tmp_path / "d" / "store"
    fs.get(store.removeprefix("s3://") + "/", str(local_store), recursive=True)
    one = [str(suite), "--storage", storage, "--artifacts", str(local_store)]
    single = mmbench("finalize", *one, "--no-track", "--no-ablate", *host("d"))
    out_d, _ = single.communicate(timeout=600)
    assert single.returncode == 0, out_d

    c = json.loads((tmp_path / "c/res/wk/tiny/ensemble.json").read_text())
    d = json.loads((tmp_path / "d/res/wk/tiny/ensemble.json").read_text())
    assert c["ensemble"]["candidates"] == min(len(complete), MAX_CANDIDATES)
    assert [(m["trial"], m["weight"]) for m in c["ensemble"]["members"]] == [
        (m["trial"], m["weight"]) for m in d["ensemble"]["members"]
    ]
    for name, value in d["test_metrics"].items():
        assert c["test_metrics"][name] == pytest.approx(value, abs=1e-9), name
    best_c = json.loads((tmp_path / "c/res/wk/tiny/search.json").read_text())
    assert best_c["search"]["best_trial"] in complete

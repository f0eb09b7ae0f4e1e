from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from conftest import FAST_TRAINING, cheap_search, tiny_suite
from optuna.trial import TrialState

from mmbench.data import load_table
from mmbench.errors import MMBenchError, SuiteError
from mmbench.evaluation import cv_folds
from mmbench.fusion import FUSIONS
from mmbench.search import SearchSettings, SearchSpace, TrialHooks, run_search, sample_pipeline
from mmbench.search.coordination import config_key, counts, worker_id
from mmbench.search.study import open_study
from mmbench.search.trials import finished_trials
from mmbench.suite import parse_suite


def sample_many(space: SearchSpace, n: int, modalities: list[str]) -> list[tuple[Any, Any]]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append((sample_pipeline(space, trial, modalities), trial.params))
        study.tell(trial, 0.0)
    return out


def test_conditional_params_exist_only_under_their_parent() -> None:
    space = SearchSpace.model_validate(
        {
            "fusion": ["early", "attention", "xgboost"],
            "training": {
                "lr": {"low": 1e-4, "high": 1e-2, "log": True},
                "loss": ["ce", "focal"],
                "focal_gamma": {"low": 1.0, "high": 3.0},
            },
        }
    )
    seen = set()
    for spec, params in sample_many(space, 40, ["text", "tabular"]):
        fusion = spec.fusion.name
        seen.add(fusion)
        assert ("fusion.attention.heads" in params) == (fusion == "attention")
        assert ("fusion.early.hidden" in params) == (fusion == "early")
        assert ("lr" in params) == (fusion != "xgboost")  # torch-only options
        assert ("focal_gamma" in params) == (params.get("loss") == "focal")
        if fusion == "attention":
            assert spec.fusion.options["heads"] in (2, 4)
        if "lr" in params:
            assert 1e-4 <= spec.training.lr <= 1e-2
    assert seen == {"early", "attention", "xgboost"}


def test_space_grammar_ranges_choices_and_fixed_values() -> None:
    space = SearchSpace.model_validate(
        {
            "encoders": {"text": ["tfidf", "minilm"]},
            "encoder_options": {"tfidf": {"svd_dim": [16, 32]}},
            "fusion": "early",
            "training": {"epochs": {"low": 2, "high": 4}, "batch_size": 16, "dropout": [0.1]},
        }
    )
    for spec, params in sample_many(space, 20, ["text"]):
        assert params["encoder.text"] in ("tfidf", "minilm")
        if spec.encoders["text"].name == "tfidf":
            assert spec.encoders["text"].options["svd_dim"] in (16, 32)
        else:
            assert spec.encoders["text"].options == {}
        assert isinstance(params["epochs"], int) and 2 <= params["epochs"] <= 4
        assert spec.training.batch_size == 16 and "batch_size" not in params
        assert spec.training.dropout == 0.1


def test_space_errors_name_the_key() -> None:
    with pytest.raises(SuiteError, match="did you mean 'dropout'"):
        parse_suite(
            {
                "name": "s",
                "datasets": [
                    {
                        "name": "d",
                        "source": {"kind": "synthetic"},
                        "target": "label",
                        "modalities": {"text": "text"},
                        "search": {"training": {"dropuot": [0.1]}},
                    }
                ],
            }
        )
    with pytest.raises(MMBenchError, match="did you mean 'attention'"):
        SearchSpace(fusion=["atention"]).check_names()


def make_problem(tmp_path: Path, n_rows: int = 150, folds: int = 3) -> tuple[Any, Any]:
    suite = tiny_suite(tmp_path, n_rows=n_rows, folds=folds)
    table = load_table(suite.datasets[0], suite.root, seed=0)
    return table, cv_folds(table.labels, folds, 1, seed=0)


def settings(tmp_path: Path, n_trials: int, **kw: Any) -> SearchSettings:
    return SearchSettings(
        study_name="t.tiny", storage=f"sqlite:///{tmp_path / 'optuna.db'}", n_trials=n_trials, **kw
    )


FAST_SPACE = cheap_search(
    {"fusion": ["early", "late"], "training": {**FAST_TRAINING, "lr": [3e-3, 1e-2]}}
)


def test_failed_trial_is_recorded_and_study_goes_on(tmp_path: Path) -> None:
    table, folds = make_problem(tmp_path)
    space = SearchSpace.model_validate(
        {**FAST_SPACE, "encoders": {"text": ["tfidf", "st/no-such-model-offline"]}}
    )
    cfg = settings(tmp_path, 3)
    study = open_study(cfg)
    study.enqueue_trial({"encoder.text": "st/no-such-model-offline"})
    study.enqueue_trial({"encoder.text": "tfidf"})
    study.enqueue_trial({"encoder.text": "tfidf"})
    outcome = run_search(table, folds, space, settings(tmp_path, 3, resume=True))
    trials = outcome.study.trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert "no-such-model-offline" in trials[0].user_attrs["error"]
    assert outcome.best_spec.encoders["text"].name == "tfidf"


def test_bad_candidate_is_pruned(tmp_path: Path) -> None:
    table, folds = make_problem(tmp_path, n_rows=200, folds=5)
    space = SearchSpace.model_validate(
        cheap_search(
            {
                "fusion": "early",
                "pruner": "wilcoxon",
                "training": {**FAST_TRAINING, "epochs": 8, "lr": [1e-2, 1e-9]},
            }
        )
    )
    study = open_study(settings(tmp_path, 2))
    study.enqueue_trial({"lr": 1e-2})
    study.enqueue_trial({"lr": 1e-9})  # learns nothing: every fold near chance
    outcome = run_search(table, folds, space, settings(tmp_path, 2, resume=True))
    good, bad = outcome.study.trials
    assert good.state == TrialState.COMPLETE
    assert bad.state == TrialState.PRUNED
    assert len(bad.intermediate_values) < len(folds)


def test_no_trial_is_pruned_after_its_last_fold(tmp_path: Path) -> None:
    """A trial whose every fold ran has a complete CV score: pruning it would save nothing and
    throw the score away (benchmarks/README.md, problems found #1). With 4 folds the Wilcoxon
    pruner (p < 0.1) can first decide at the 4th fold, so a hopeless trial runs to the end."""
    table, folds = make_problem(tmp_path, n_rows=160, folds=4)
    space = SearchSpace.model_validate(
        cheap_search(
            {
                "fusion": "early",
                "pruner": "wilcoxon",
                "training": {**FAST_TRAINING, "epochs": 8, "lr": [1e-2, 1e-9]},
            }
        )
    )
    study = open_study(settings(tmp_path, 2))
    study.enqueue_trial({"lr": 1e-2})
    study.enqueue_trial({"lr": 1e-9})  # learns nothing: worse than the first on every fold
    outcome = run_search(table, folds, space, settings(tmp_path, 2, resume=True))
    for t in outcome.study.trials:
        assert t.state != TrialState.PRUNED or len(t.intermediate_values) < len(folds)
    good, bad = outcome.study.trials
    assert all(bad.intermediate_values[s] < good.intermediate_values[s] for s in range(4))
    assert bad.state == TrialState.COMPLETE and bad.value is not None
    for t in (good, bad):  # README: a complete trial's value is its CV mean over the folds
        assert t.value == pytest.approx(np.mean(list(t.intermediate_values.values())))


def test_resume_after_interrupt_finishes_budget_without_duplicates(tmp_path: Path) -> None:
    table, folds = make_problem(tmp_path)
    space = SearchSpace.model_validate(FAST_SPACE)
    calls: list[int] = []

    def interrupt_second(trial: Any, spec: Any) -> None:
        calls.append(trial.number)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_search(
            table, folds, space, settings(tmp_path, 4), hooks=TrialHooks(start=interrupt_second)
        )
    outcome = run_search(table, folds, space, settings(tmp_path, 4, resume=True))
    trials = outcome.study.trials
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) == 4  # the interrupted trial was not counted
    assert states.count(TrialState.FAIL) == 1 and trials[1].user_attrs.get("interrupted")
    assert outcome.n_new_trials == 3
    assert len({t.number for t in trials}) == len(trials)
    # a third call with the same budget runs nothing more
    again = run_search(table, folds, space, settings(tmp_path, 4, resume=True))
    assert again.n_new_trials == 0 and len(again.study.trials) == 5


def test_without_resume_a_new_study_keeps_the_old_one(tmp_path: Path) -> None:
    table, folds = make_problem(tmp_path)
    space = SearchSpace.model_validate({**FAST_SPACE, "fusion": "early"})
    first = run_search(table, folds, space, settings(tmp_path, 1))
    second = run_search(table, folds, space, settings(tmp_path, 1))
    assert first.study.study_name == "t.tiny"
    assert second.study.study_name == "t.tiny#2"
    names = {
        s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{tmp_path / 'optuna.db'}")
    }
    assert names == {"t.tiny", "t.tiny#2"}


def test_multi_objective_quality_vs_latency(tmp_path: Path) -> None:
    table, folds = make_problem(tmp_path)
    space = SearchSpace.model_validate(
        {**FAST_SPACE, "objectives": ["latency_ms"], "sampler": "nsga2"}
    )
    outcome = run_search(table, folds, space, settings(tmp_path, 3, objectives=["latency_ms"]))
    values = [t.values for t in outcome.study.trials if t.state == TrialState.COMPLETE]
    assert values and all(len(v) == 2 and v[1] > 0 for v in values)
    assert np.isfinite(outcome.best_cv.mean("f1_macro"))


def test_journal_file_storage_for_several_workers(tmp_path: Path) -> None:
    table, folds = make_problem(tmp_path)
    space = SearchSpace.model_validate({**FAST_SPACE, "fusion": "early"})
    journal = str(tmp_path / "study.journal")
    cfg = SearchSettings(study_name="t.tiny", storage=journal, n_trials=2)
    run_search(table, folds, space, cfg)
    cfg.resume = True
    cfg.n_trials = 3
    outcome = run_search(table, folds, space, cfg)
    assert outcome.n_new_trials == 1 and finished_trials(outcome.study) == 3
    ran = [t for t in outcome.study.trials if "duplicate_of" not in t.user_attrs]
    assert len(ran) == 3 and len({config_key(t.params) for t in ran}) == 3


KILLED_WORKER = """
import sys, time
sys.path.insert(0, {tests!r})
from pathlib import Path
from conftest import tiny_suite
from mmbench.data import load_table
from mmbench.evaluation import cv_folds
from mmbench.fusion import FUSIONS
from mmbench.search import SearchSettings, SearchSpace, TrialHooks, run_search, sample_pipeline

suite = tiny_suite(Path({tmp!r}))
table = load_table(suite.datasets[0], suite.root, seed=0)
folds = cv_folds(table.labels, 3, 1, seed=0)
space = SearchSpace.model_validate({space!r})
cfg = SearchSettings(study_name="t.tiny", storage={storage!r}, n_trials=3, heartbeat_s=1)
def hang(trial, spec):
    if trial.number == 1:
        print("HANGING", flush=True)
        time.sleep(600)
run_search(table, folds, space, cfg, hooks=TrialHooks(start=hang))
"""


@pytest.mark.slow
def test_killed_worker_trial_is_failed_by_heartbeat_and_retried(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    script = KILLED_WORKER.format(
        tests=str(Path(__file__).parent), tmp=str(tmp_path), space=FAST_SPACE, storage=storage
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until trial 1 is running
        if "HANGING" in line:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(5)  # let the heartbeat of trial 1 go stale (grace period 4 s)

    table, folds = make_problem(tmp_path)
    cfg = SearchSettings(
        study_name="t.tiny", storage=storage, n_trials=3, heartbeat_s=1, resume=True
    )
    outcome = run_search(table, folds, SearchSpace.model_validate(FAST_SPACE), cfg)
    trials = outcome.study.trials
    assert trials[1].state == TrialState.FAIL  # the killed worker's trial
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == 1]
    assert retried and retried[0].state == TrialState.COMPLETE
    assert retried[0].params == trials[1].params
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 3


def test_default_space_samples_and_builds_every_fusion() -> None:
    """Every fusion the default space can pick is picked, with its declared options, and builds."""
    from mmbench.fusion import create_head

    space = SearchSpace()
    space.check_names()
    expected = {e.name for e in FUSIONS.entries(default_search=True)}
    assert expected == set(FUSIONS.names()) - {"hybrid"}  # hybrid opts out of the default
    sampled: dict[str, set[str]] = {}
    for spec, _ in sample_many(space, 60, ["text", "tabular"]):
        create_head(spec.fusion, spec.training, {"text": 8, "tabular": 4}, 3, seed=0)
        sampled.setdefault(spec.fusion.name, set()).update(spec.fusion.options)
    assert set(sampled) == expected
    for name, options in sampled.items():
        assert options == set(FUSIONS.meta(name).search_space), name


def test_fusion_declarations_drive_the_default_space() -> None:
    """Default ranges and torch-only training options come from what each fusion registers."""
    space = SearchSpace()
    assert space.fusion == [e.name for e in FUSIONS.entries(default_search=True)]
    for name in space.fusion:
        assert space.fusion_options.get(name, {}) == dict(FUSIONS.meta(name).search_space)
    space.fusion_options["early"]["hidden"].append(999)  # a suite's copy, not the registry's
    assert 999 not in FUSIONS.meta("early").search_space["hidden"]
    non_torch = FUSIONS.names(torch=False)
    assert non_torch == ["catboost", "lightgbm", "linear", "xgboost"]
    for spec, params in sample_many(SearchSpace(fusion=non_torch), 5, ["text"]):
        assert not set(params) & set(space.training)  # lr, dropout... are torch-only
        assert spec.training.lr == 3e-3  # the TrainSpec default, unused by the head


def test_fusion_option_typo_in_space_fails_before_any_trial() -> None:
    space = SearchSpace.model_validate(
        {"fusion": ["gated"], "fusion_options": {"gated": {"d_model": [32]}}}
    )
    with pytest.raises(MMBenchError, match="unknown option 'd_model' for fusion 'gated'"):
        space.check_names()


@pytest.mark.server
@pytest.mark.slow
def test_study_in_postgresql_resumes(tmp_path: Path, postgres_url: str) -> None:
    table, folds = make_problem(tmp_path)
    space = SearchSpace.model_validate({**FAST_SPACE, "fusion": "early"})
    cfg = SearchSettings(study_name="t.tiny", storage=postgres_url, n_trials=2)
    run_search(table, folds, space, cfg)
    cfg.resume, cfg.n_trials = True, 3
    outcome = run_search(table, folds, space, cfg)
    assert outcome.n_new_trials == 1
    ran = [t for t in outcome.study.trials if counts(t)]  # not the duplicates the sampler proposed
    assert [t.state for t in ran] == [TrialState.COMPLETE] * 3


def test_default_space_searches_representations_sparse_only_for_sparse_heads() -> None:
    space = SearchSpace()
    seen_sparse = set()
    for spec, params in sample_many(space, 150, ["image", "text", "tabular"]):
        text, fusion = spec.encoders["text"], spec.fusion.name
        assert spec.encoders["image"].name in ("efficientnet_lite0", "pixels")
        if text.name != "tfidf":
            continue
        sparse = text.options["sparse"]
        assert ("encoder.text.tfidf.sparse" in params) == FUSIONS.meta(fusion).sparse
        assert ("encoder.text.tfidf.svd_dim" in params) == (not sparse)  # SVD only when dense
        if sparse:
            seen_sparse.add(fusion)
    assert seen_sparse == {"lightgbm", "linear", "xgboost"}


def test_deadline_cuts_a_running_trial_and_records_why(tmp_path: Path) -> None:
    """The budget is a contract: a trial still training at the deadline stops between epochs,
    is recorded with its reason, and the study stops starting trials."""
    from mmbench.budget import Deadline

    table, folds = make_problem(tmp_path, n_rows=150, folds=3)
    slow = {**FAST_TRAINING, "epochs": 5000, "patience": None}
    space = SearchSpace.model_validate({**FAST_SPACE, "fusion": "early", "training": slow})
    start = time.monotonic()
    with pytest.raises(MMBenchError, match="no completed trial"):
        run_search(table, folds, space, settings(tmp_path, 5, deadline=Deadline.after(3.0)))
    assert time.monotonic() - start < 3.0 + 3.0  # not the minutes 5000 epochs would take
    [trial] = open_study(settings(tmp_path, 5, resume=True)).trials
    assert trial.state == TrialState.PRUNED
    assert trial.user_attrs["reason"].startswith("time budget reached during epoch")


def test_new_study_runs_the_portfolio_first_cheapest_first(tmp_path: Path) -> None:
    from mmbench.search.portfolio import portfolio

    space = SearchSpace()
    entries = portfolio(space, ["text", "tabular"])
    fusions = [e["fusion"] for e in entries]
    assert fusions[:4] == ["linear", "lightgbm", "lightgbm", "linear"]
    assert fusions[-1] == "catboost"  # the slowest head last
    assert entries[0]["encoder.text.tfidf.sparse"] is True  # seconds, not minutes
    assert entries[1]["encoder.text.tfidf.sparse"] is True  # trees on the same n-grams
    assert entries[-1]["encoder.text"] == "ngrams"  # dense text for a dense-only head
    assert entries[-1]["fusion.catboost.depth"] == 6  # every option offered by the space
    assert all(e["encoder.tabular.tabular.splines"] == 0 for e in entries)  # not left to chance
    assert all(not k.startswith("encoder.image") for e in entries for k in e)  # no image here
    narrow = SearchSpace.model_validate({"fusion": ["early"], "encoders": {"text": "tfidf"}})
    assert [e["fusion"] for e in portfolio(narrow, ["text"])] == ["early"]
    table, folds = make_problem(tmp_path)
    cheap = SearchSpace.model_validate(
        {
            **FAST_SPACE,
            "fusion": ["linear", "early"],
            "encoders": {"text": "tfidf", "tabular": "tabular"},
        }
    )
    first = portfolio(cheap, table.modalities)
    outcome = run_search(table, folds, cheap, settings(tmp_path, 2, portfolio=first))
    trials = outcome.study.trials
    assert trials[0].params["fusion"] == "linear" and trials[0].user_attrs["portfolio"]
    assert trials[0].state == TrialState.COMPLETE and trials[0].user_attrs["seconds"] > 0


def test_resume_retries_first_the_trial_a_killed_local_worker_left_running(
    tmp_path: Path,
) -> None:
    """A worker killed on this machine is known dead at once (no heartbeat grace period): an
    immediate resume fails its RUNNING trial, queues the same configuration, runs it first
    and counts it once."""
    import subprocess
    import sys

    table, folds = make_problem(tmp_path)
    run_search(table, folds, SearchSpace.model_validate(FAST_SPACE), settings(tmp_path, 1))
    study = open_study(settings(tmp_path, 2, resume=True))
    done = study.trials[0]
    orphan = study.ask(fixed_distributions=done.distributions)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    orphan.set_user_attr("worker", {"host": worker_id()["host"], "pid": int(dead.stdout)})
    orphan_params = dict(orphan.params)

    outcome = run_search(
        table, folds, SearchSpace.model_validate(FAST_SPACE), settings(tmp_path, 2, resume=True)
    )
    trials = outcome.study.trials
    assert trials[1].state == TrialState.FAIL and trials[1].user_attrs["interrupted"]
    assert trials[2].params == orphan_params and trials[2].user_attrs["retry_of"] == 1
    assert trials[2].state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert [t.state for t in trials].count(TrialState.RUNNING) == 0 and len(trials) == 3


def test_a_fold_where_the_primary_metric_is_undefined_prunes_no_trial(tmp_path: Path) -> None:
    """AUC is undefined in a fold that lacks a class: that fold is not reported to the pruner
    (which prunes a NaN), so every trial completes with its mean over the other folds."""
    from mmbench.evaluation import Fold

    table, folds = make_problem(tmp_path, n_rows=150, folds=3)
    f1 = folds[1]
    lacking = f1.valid[table.labels[f1.valid] == 2]
    second = Fold(0, 1, np.sort(np.r_[f1.train, lacking]), np.setdiff1d(f1.valid, lacking), f1.seed)
    folds = [folds[0], second, folds[2]]
    space = SearchSpace.model_validate(
        cheap_search(
            {
                "fusion": "early",
                "pruner": "median",
                "training": {**FAST_TRAINING, "lr": [1e-2, 5e-3, 3e-3, 2e-3]},
            }
        )
    )
    study = open_study(settings(tmp_path, 4, primary="roc_auc"))
    for lr in (1e-2, 5e-3, 3e-3, 2e-3):
        study.enqueue_trial({"lr": lr})
    outcome = run_search(table, folds, space, settings(tmp_path, 4, primary="roc_auc", resume=True))
    ran = [t for t in outcome.study.trials if counts(t)]
    assert [t.state for t in ran] == [TrialState.COMPLETE] * 4
    for t in ran:
        assert 1 not in t.intermediate_values and np.isfinite(t.value)


def test_a_trial_that_cannot_finish_is_stopped_at_its_own_pace() -> None:
    """After each fold a trial's remaining folds are projected at its own pace (head fitting;
    encoding is cached by then): one that cannot finish in the time left stops now, leaving that
    time to other candidates, instead of running until the deadline cuts it."""
    from mmbench.pipeline import FoldResult
    from mmbench.search.objective import cannot_finish

    def fold(fit_s: float, seconds: float = 0.0) -> FoldResult:
        return FoldResult("r0f0", {"f1_macro": 0.5}, seconds=seconds, info={"fit_s": fit_s})

    slow = [fold(60.0, seconds=90.0)]  # 30 s of it encoding, cached for the next folds
    assert cannot_finish(slow, 5, left=200.0) == (
        "its 4 remaining fold(s) need ~240 s at its pace; 200 s left"
    )
    assert cannot_finish(slow, 5, left=250.0) is None
    assert cannot_finish([fold(60.0)] * 5, 5, left=1.0) is None  # done: nothing left to cut
    assert cannot_finish(slow, 5, left=float("inf")) is None  # no deadline
    failed = FoldResult("r0f1", error="ValueError: x")
    assert cannot_finish([*slow, failed], 5, left=170.0) is not None  # 3 left at 60 s

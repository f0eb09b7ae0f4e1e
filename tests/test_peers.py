"""Peers run on mmbench's folds and are scored by mmbench's metrics, on small generated data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmbench.data import load_table
from mmbench.data.table import MultiModalTable
from mmbench.errors import MMBenchError, UnknownNameError
from mmbench.evaluation import Fold, chance_level, cv_folds
from mmbench.peers import (
    PEERS,
    Peer,
    PeerUnavailable,
    cross_validate_peer,
    fit_peer,
    holdout_peer,
    peer_frame,
)
from mmbench.suite import parse_suite

TABULAR = ["num_0", "num_1", "num_2", "num_3", "cat_0", "cat_1"]


@pytest.fixture(scope="module")
def table() -> MultiModalTable:
    """150 generated rows with all four modalities, 3 imbalanced classes, 10% missing values."""
    dataset = {
        "name": "tiny",
        "source": {
            "kind": "synthetic",
            "options": {"n_rows": 150, "n_classes": 3, "seed": 1, "missing": 0.1},
        },
        "target": "label",
        "modalities": {"image": "image", "text": "text", "audio": "audio", "tabular": TABULAR},
        "protocol": {"folds": 3},
    }
    suite = parse_suite({"name": "peers", "datasets": [dataset]})
    return load_table(suite.datasets[0], Path.cwd())


@pytest.fixture(scope="module")
def frame(table: MultiModalTable) -> pd.DataFrame:
    return peer_frame(table)


def test_peer_frame_has_text_pixels_mfcc_and_tabular_columns(table, frame) -> None:
    pixels = [f"px_{j}" for j in range(64)]
    mfcc = [f"mfcc_mean_{j}" for j in range(20)] + [f"mfcc_std_{j}" for j in range(20)]
    assert list(frame.columns) == ["text", *pixels, *mfcc, *TABULAR]
    assert len(frame) == len(table)
    no_image = ~table.present("image")
    assert no_image.any() and frame.loc[no_image, pixels].isna().all().all()
    seen = frame.loc[~no_image, pixels].to_numpy()
    assert np.nanmin(seen) >= 0.0 and np.nanmax(seen) <= 1.0 and seen.std() > 0.01
    no_audio = ~table.present("audio")
    assert frame.loc[no_audio, mfcc].isna().all().all()
    assert not frame.loc[~no_audio, mfcc].isna().any().any()
    assert frame["text"].tolist() == table.text
    pd.testing.assert_frame_equal(frame[TABULAR], table.tabular)


def test_peer_frame_renames_a_tabular_column_that_clashes() -> None:
    tab = pd.DataFrame({"text": [1.0, 2.0], "x": ["a", None]})
    small = MultiModalTable("t", np.array([0, 1]), ["a", "b"], text=["hi", None], tabular=tab)
    out = peer_frame(small)
    assert list(out.columns) == ["text", "tabular.text", "x"]
    assert out["text"].tolist() == ["hi", None]


def test_tfidf_xgboost_scores_well_above_chance_on_the_folds(table, frame) -> None:
    folds = cv_folds(table.labels, 3, 1, seed=0)
    cv = cross_validate_peer("tfidf-xgboost", table, folds, frame=frame)
    assert cv.ok and cv.failures == [] and len(cv.folds) == 3
    chance = chance_level("f1_macro", table.labels, table.n_classes)
    assert cv.mean("f1_macro") > chance + 0.2
    assert cv.mean("roc_auc") > 0.75
    assert len(cv.fold_scores("f1_macro")) == 3
    oof = cv.oof[0]
    assert not np.isnan(oof).any()  # every row was a validation row once
    np.testing.assert_allclose(oof.sum(axis=1), 1.0, atol=1e-6)
    assert (oof >= 0).all()
    assert cv.spec.flat_params()["peer"] == "tfidf-xgboost"
    assert cv.spec.model_dump(mode="json")["peer"] == "tfidf-xgboost"
    assert cv.modalities == ["image", "text", "tabular", "audio"]
    assert set(cv.seconds) == {"encode", "fit", "total"}


def test_a_class_missing_from_training_gets_probability_zero(table, frame) -> None:
    rows = np.arange(len(table))
    without_2 = rows[table.labels != 2]
    model = fit_peer("tfidf-xgboost", table.subset(without_2), seed=0, frame=frame.iloc[without_2])
    proba = model.predict_proba(frame)
    assert proba.shape == (len(table), 3)
    assert (proba[:, 2] == 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert (proba[table.labels == 0].argmax(axis=1) == 0).mean() > 0.6

    only_0 = rows[table.labels == 0][:10]
    constant = PEERS.get("tfidf-xgboost").fit(frame.iloc[only_0], table.labels[only_0], 3, seed=0)
    np.testing.assert_array_equal(constant.predict_proba(frame.iloc[:4]), [[1, 0, 0]] * 4)


def test_a_failing_fold_is_recorded_and_the_others_still_run(table, frame) -> None:
    good = cv_folds(table.labels, 3, 1, seed=0)[0]
    empty = Fold(0, 1, train=np.array([], dtype=np.int64), valid=good.train[:10], seed=1)
    cv = cross_validate_peer("tfidf-xgboost", table, [good, empty], frame=frame)
    assert not cv.ok and cv.folds[0].ok and not cv.folds[1].ok
    assert cv.failures and cv.failures[0].startswith("r0f1: ")
    assert not np.isnan(cv.summary["f1_macro"]["mean"])
    assert np.isnan(cv.oof[0, good.train[:10]]).all()


def test_holdout_scores_the_test_rows_with_every_metric(table) -> None:
    rows = np.arange(len(table))
    train, test = table.subset(rows[rows % 4 != 0]), table.subset(rows[rows % 4 == 0])
    score = holdout_peer("tfidf-xgboost", train, test, seed=0)
    assert {"f1_macro", "roc_auc", "log_loss"} <= set(score.metrics)
    assert score.metrics["roc_auc"] > 0.7 and score.fit_seconds > 0
    renamed = MultiModalTable("t", test.labels, ["x", "y", "z"], text=test.text)
    with pytest.raises(MMBenchError, match="training classes"):
        holdout_peer("tfidf-xgboost", train.without(["image", "audio", "tabular"]), renamed, seed=0)


def test_unknown_or_uninstalled_peers_say_what_to_do() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'tfidf-xgboost'"):
        PEERS.get("tfidf-xgbost")
    assert PEERS.get("tfidf-xgboost").available() is None
    assert PEERS.get("autogluon").extra == "peers"
    ghost = Peer(
        "ghost", "needs a missing package", ("no_such_pkg_zz.sub",), lambda *a: None, "peers"
    )
    reason = ghost.available()
    assert reason == "ghost: no_such_pkg_zz.sub is not installed: pip install 'mmbench[peers]'"
    with pytest.raises(PeerUnavailable, match=r"mmbench\[peers\]"):
        ghost.fit(pd.DataFrame({"x": [1.0, 2.0]}), np.array([0, 1]), 2, seed=0)


@pytest.mark.slow
@pytest.mark.peers
def test_autogluon_fits_under_a_small_time_limit(table, frame) -> None:
    pytest.importorskip("autogluon.tabular", reason="autogluon is not installed (mmbench[peers])")
    folds = cv_folds(table.labels, 3, 1, seed=0)[:1]
    cv = cross_validate_peer("autogluon", table, folds, time_limit_s=30, frame=frame)
    assert cv.ok, cv.failures
    chance = chance_level("f1_macro", table.labels, table.n_classes)
    assert cv.mean("f1_macro") > chance + 0.1
    proba = cv.oof[0, folds[0].valid]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert cv.folds[0].seconds < 90


@pytest.fixture
def shrunk_peer(monkeypatch: pytest.MonkeyPatch) -> str:
    """A real, heavily regularised logistic regression on the numbers: its probabilities shrink
    towards the prior, so arg-max under-predicts a rare class (what a tuned rule corrects)."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from mmbench.peers import register_peer

    monkeypatch.setattr(PEERS, "_entries", dict(PEERS._entries))  # registered for this test only

    @register_peer("shrunk-logistic", "logistic regression, C=0.005", requires=("sklearn",))
    def _fit(frame, y, n_classes, seed, time_limit_s, metric):  # type: ignore[no-untyped-def]
        columns = [c for c in frame.columns if str(c).startswith("num_")]
        model = make_pipeline(SimpleImputer(), LogisticRegression(C=0.005)).fit(frame[columns], y)

        class Fitted:
            def predict_proba(self, rows: pd.DataFrame) -> np.ndarray:
                return model.predict_proba(rows[columns])

        return Fitted()

    return "shrunk-logistic"


def imbalanced_table() -> MultiModalTable:
    dataset = {
        "name": "rare",
        "source": {
            "kind": "synthetic",
            "options": {
                "n_rows": 300,
                "n_classes": 2,
                "seed": 1,
                "imbalance": 0.7,
                "signal": {"tabular": 0.8},
            },
        },
        "target": "label",
        "modalities": {"tabular": ["num_0", "num_1", "num_2", "num_3"]},
        "protocol": {"folds": 3},
    }
    suite = parse_suite({"name": "peers", "datasets": [dataset]})
    return load_table(suite.datasets[0], Path.cwd())


def test_a_peer_gets_the_decision_rule_of_every_row_in_cv_and_held_out(shrunk_peer) -> None:
    """The peer's CV is scored with the rule fitted on its own out-of-fold probabilities, each
    fold with weights tuned on the other folds (cross-fitted); held-out rows with the rule."""
    from mmbench.evaluation import TUNED_WEIGHTS, compute_metrics, tune_class_weights

    table = imbalanced_table()
    folds = cv_folds(table.labels, 3, 1, seed=0)
    cv = cross_validate_peer(shrunk_peer, table, folds)
    rule = cv.decision
    assert rule is not None and rule.name == TUNED_WEIGHTS
    assert rule.weights is not None and rule.weights[1] > rule.weights[0]  # the rare class
    arg_max = [
        compute_metrics(table.labels[f.valid], cv.oof[0, f.valid])["f1_macro"] for f in folds
    ]
    assert cv.mean("f1_macro") > np.mean(arg_max) + 0.1
    for fold, scored in zip(folds, cv.folds, strict=True):
        rest = np.setdiff1d(np.arange(len(table)), fold.valid)
        crossed = tune_class_weights(table.labels[rest], cv.oof[0, rest], "f1_macro")
        np.testing.assert_allclose(scored.info["decision_weights"], crossed)
        y, proba = table.labels[fold.valid], cv.oof[0, fold.valid]
        assert scored.metrics == compute_metrics(y, proba, weights=crossed)

    rows = np.arange(len(table))
    train, test = table.subset(rows[rows % 4 != 0]), table.subset(rows[rows % 4 == 0])
    plain = holdout_peer(shrunk_peer, train, test, seed=0)
    ruled = holdout_peer(shrunk_peer, train, test, seed=0, decision=rule)
    assert ruled.rule == TUNED_WEIGHTS and plain.rule == "arg-max"
    assert ruled.metrics["f1_macro"] > plain.metrics["f1_macro"] + 0.1
    assert ruled.metrics["roc_auc"] == plain.metrics["roc_auc"]  # the ranking is the same


@pytest.mark.slow
@pytest.mark.peers
def test_autogluon_runs_as_a_pipeline_end_to_end_on_a_tiny_table(tmp_path: Path) -> None:
    """``mmbench run --pipeline autogluon --timeout 15``: three folds of 5 s and a held-out
    model of 15 s on 120 generated rows, written as a result file like any pipeline's."""
    import subprocess
    import sys

    import yaml

    from mmbench.config import PeerSpec
    from mmbench.results import ResultLayout

    pytest.importorskip("autogluon.tabular", reason="autogluon is not installed (mmbench[peers])")
    tiny = {"kind": "synthetic", "options": {"n_rows": 120, "n_classes": 3, "seed": 1}}
    held_out = {"kind": "synthetic", "options": {"n_rows": 60, "n_classes": 3, "seed": 7}}
    dataset = {"name": "tiny", "source": tiny, "test_source": held_out, "target": "label"}
    dataset |= {"modalities": {"text": "text", "tabular": TABULAR}, "protocol": {"folds": 3}}
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"name": "ag", "seed": 0, "datasets": [dataset]}))
    res = tmp_path / "res"
    args = ["run", str(suite), "--pipeline", "autogluon", "--timeout", "15", "--no-track"]
    proc = subprocess.run(
        [sys.executable, "-m", "mmbench.cli", *args, "--results", str(res), "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [result] = ResultLayout(res, "ag").load()
    assert isinstance(result.pipeline, PeerSpec) and result.pipeline.peer == "autogluon"
    assert len(result.folds) == 3
    assert result.metrics["f1_macro"]["mean"] > result.chance["f1_macro"] + 0.1
    assert result.test_metrics and result.test_metrics["f1_macro"] > result.chance["f1_macro"]
    assert all(fold.seconds < 30 for fold in result.folds)  # its 5 s limit, with room for load
    assert result.decision is not None  # the same decision rule as every other row


def test_a_requested_peer_whose_extra_is_missing_fails_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--pipeline PEER`` without its extra writes no result file, so the run says so and
    exits non-zero: a requested row that was not computed is not a success."""
    from mmbench.cli import main
    from mmbench.registry import Entry

    ghost = Peer("ghost", "needs a missing package", ("no_such_pkg_zz",), lambda *a: None, "x")
    monkeypatch.setitem(PEERS._entries, "ghost", Entry("ghost", ghost, None))
    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(
        "name: s\ndatasets:\n  - name: d\n    source: {kind: synthetic, options: {n_rows: 60}}\n"
        "    target: label\n    modalities: {tabular: [num_0]}\n"
    )
    code = main(
        ["run", str(suite_file), "--pipeline", "ghost", "--results", str(tmp_path / "r"),
         "--no-track"]
    )  # fmt: skip
    assert code == 1
    assert not list((tmp_path / "r").rglob("*.json"))

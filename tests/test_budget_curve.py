"""The checks in ``benchmarks/budget_curve.py``, on figures set by hand."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import budget_curve


def curve(tmp_path: Path) -> budget_curve.Curve:
    found = budget_curve.Curve(tmp_path, ["d"], [60.0, 120.0, 300.0, 600.0])
    finals = {60.0: (0.80, 0.90), 120.0: (0.82, 0.91), 300.0: (0.816, 0.92), 600.0: (0.83, 0.93)}
    for budget, (f1, auc) in finals.items():
        found.final["d", budget] = {"f1_macro": f1, "roc_auc": auc}
        found.ratio["d", budget] = 1.0
    found.first["d"] = {"f1_macro": 0.82, "roc_auc": 0.90}
    found.peers["d", 120.0] = {
        "autogluon": {"f1_macro": 0.805, "roc_auc": 0.915},
        "tfidf-xgboost": {"f1_macro": 0.81, "roc_auc": 0.90},
    }
    return found


def test_the_checks_read_the_issue_literally(tmp_path: Path) -> None:
    (row,) = curve(tmp_path).summary()
    _, scores, grows, first, wall, peers = row
    assert scores == "0.8000 → 0.8200 → 0.8160 → 0.8300"
    assert grows.startswith("yes")  # 120 → 300 s drops 0.004: within 0.005
    assert first == "300 s: no (-0.0040); 600 s: yes (+0.0100)"
    assert wall.startswith("yes")
    # against AutoGluon: both held-out scores must reach its own
    assert peers == "no (F1 +0.0150, AUC -0.00500)"


def test_a_drop_beyond_the_tolerance_and_a_slow_job_fail(tmp_path: Path) -> None:
    found = curve(tmp_path)
    found.final["d", 300.0]["f1_macro"] = 0.81
    found.ratio["d", 600.0] = 1.15
    (row,) = found.summary()
    assert row[2].startswith("no: 120→300 s -0.0100")
    assert row[4] == "no (max 1.15 at 600 s)"


def test_missing_runs_say_so(tmp_path: Path) -> None:
    (row,) = budget_curve.Curve(tmp_path, ["d"], [60.0]).summary()
    assert row[1:] == [
        "—",
        "n/a (one budget)",
        "n/a (first trial not scored)",
        "—",
        "n/a (no 120 s run with autogluon)",
    ]


def test_reaching_autogluon_needs_both_scores(tmp_path: Path) -> None:
    found = curve(tmp_path)
    found.peers["d", 120.0]["autogluon"]["roc_auc"] = 0.91  # the final model's own AUC: a tie
    (row,) = found.summary()
    assert row[5] == "yes (F1 +0.0150, AUC +0.00000)"

"""Peers on real held-out rows: each available peer fitted on a suite's train file, scored on its test file.

For every dataset of the suite (default ``benchmarks/suites/real.yaml``; run
``benchmarks/real_data.py`` first), the train and test sources are loaded through the suite
like any mmbench run, :func:`mmbench.peers.peer_frame` is computed once per split, and every
available peer is cross-validated on the suite's folds of the training rows (``time limit /
folds`` per fold, as ``mmbench run --pipeline PEER``), refitted on all training rows and scored
on the test rows with :func:`mmbench.evaluation.compute_metrics`, its labels decided by the rule
fitted on its own out-of-fold probabilities — the rule every mmbench row gets. A peer whose
extra is missing is listed as skipped.

    python benchmarks/peers.py [--suite PATH] [--peer NAME ...] [--time-limit 120] [--name peers]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from _common import REPO, emit, oracle_f1, parse_args, table

SUITE = REPO / "benchmarks" / "suites" / "real.yaml"
HEADERS = [
    "dataset", "peer", "macro-F1", "ROC-AUC", "decision", "chance macro-F1", "fit s", "predict s"
]  # fmt: skip


def load_split(spec: Any, root: Path) -> tuple[Any, Any]:
    """(train, test) tables; the test labels are encoded with the training classes."""
    from mmbench.data import load_table

    train = load_table(spec, root)
    test = load_table(spec, root, split="test", classes=train.classes)
    return train, test


def score_dataset(
    spec: Any, root: Path, peers: list[str], time_limit: float, seed: int
) -> tuple[list[list[str]], str]:
    """One table row per peer, and a line about the data and the frame computation."""
    from mmbench.evaluation import chance_level
    from mmbench.peers import PEERS, peer_frame

    train, test = load_split(spec, root)
    start = time.perf_counter()
    train_frame, test_frame = peer_frame(train), peer_frame(test)
    note = (
        f"- {spec.name}: {len(train)} train / {len(test)} test rows, {train.n_classes} classes, "
        f"modalities {train.modalities}; peer frame {train_frame.shape[1]} columns, "
        f"{time.perf_counter() - start:.1f} s for both splits"
    )
    chance = chance_level("f1_macro", test.labels, test.n_classes)
    protocol = spec.protocol
    folds = protocol.folds_for(train.labels, seed, train.groups)
    rows = []
    for name in peers:
        reason = PEERS.get(name).available()
        if reason is not None:
            rows.append([spec.name, name, "skipped", reason, "", "", "", ""])
            continue
        frames = (train_frame, test_frame)
        got = fit_and_score(name, train, test, frames, time_limit, seed, folds=folds)
        metrics = got["metrics"]
        rows.append(
            [spec.name, name, f"{metrics['f1_macro']:.3f}", f"{metrics['roc_auc']:.3f}",
             got["rule"], f"{chance:.3f}", f"{got['fit_s']:.1f}", f"{got['predict_s']:.1f}"]
        )  # fmt: skip
        print(f"  {spec.name} {name}: {metrics}", file=sys.stderr, flush=True)
    return rows, note


def fit_and_score(
    name: str,
    train: Any,
    test: Any,
    frames: tuple[Any, Any],
    time_limit: float | None,
    seed: int,
    folds: list[Any] | None = None,
    metric: str = "f1_macro",
) -> dict[str, Any]:
    """Peer ``name`` refitted on every training row (``frames``: the train and test
    :func:`~mmbench.peers.peer_frame`) and scored once on the test rows: ``metrics``
    (macro-F1, ROC-AUC), ``oracle_f1_macro`` (two classes: the best threshold's macro-F1 on the
    test rows, a ceiling, not a score), ``fit_s``, ``predict_s``, ``rule`` and ``cv_s``.

    With ``folds`` (of the training rows), the peer is first cross-validated on them
    (``time_limit / len(folds)`` per fold) and its test labels are decided by the rule fitted on
    its own out-of-fold probabilities for ``metric`` (:func:`mmbench.evaluation.decide`), as
    mmbench's rows are; without, by arg-max."""
    from mmbench.evaluation import DecisionRule, compute_metrics
    from mmbench.peers import cross_validate_peer, fit_peer

    rule, cv_start = DecisionRule(), time.perf_counter()
    if folds:
        per_fold = None if time_limit is None else time_limit / len(folds)
        cv = cross_validate_peer(
            name, train, folds, time_limit_s=per_fold, metric=metric, frame=frames[0]
        )
        rule = cv.decision or rule
    fit_start = time.perf_counter()
    model = fit_peer(name, train, seed=seed, time_limit_s=time_limit, frame=frames[0])
    fitted = time.perf_counter()
    proba = model.predict_proba(frames[1])
    predicted = time.perf_counter()
    metrics = compute_metrics(test.labels, proba, ["f1_macro", "roc_auc"], weights=rule.weights)
    return {
        "metrics": metrics,
        "rule": rule.name
        if rule.weights is None
        else "tuned " + "/".join(f"{w:.2f}" for w in rule.weights),
        "cv_s": fit_start - cv_start,
        "oracle_f1_macro": oracle_f1(test.labels, proba),
        "fit_s": fitted - fit_start,
        "predict_s": predicted - fitted,
    }


def main() -> None:
    from mmbench.peers import PEERS
    from mmbench.suite import load_suite

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, default=SUITE)
    parser.add_argument("--peer", action="append", choices=PEERS.names(), help="default: all")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per fit")
    parser.add_argument("--name", default="peers", help="results/<name>.md")
    args = parse_args(parser)
    suite = load_suite(args.suite)
    missing = [d.name for d in suite.datasets if not _files_exist(d, suite.root)]
    if missing:
        print(f"skipped: no data for {missing}; run benchmarks/real_data.py", file=sys.stderr)
        return
    rows, notes = [], []
    for spec in suite.datasets:
        found, note = score_dataset(
            spec, suite.root, args.peer or PEERS.names(), args.time_limit, suite.seed
        )
        rows += found
        notes.append(note)
    body = (
        f"Suite `{args.suite.name}`; each peer refitted on all training rows (time limit "
        f"{args.time_limit:.0f} s per fit, seed {suite.seed}) and scored once on the held-out "
        f"rows.\n\n" + "\n".join(notes) + "\n\n" + table(HEADERS, rows) + "\n"
    )
    emit(args.name, "Peers on held-out real data", body)


def _files_exist(spec: Any, root: Path) -> bool:
    sources = [spec.source, spec.test_source]
    return all(s is not None and (root / str(s.path)).exists() for s in sources)


if __name__ == "__main__":
    main()

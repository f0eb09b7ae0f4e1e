"""Power and false alarms of the CI regression gate, measured on the CI suite.

Three parts, all against the committed baseline (``benchmarks/baselines/ci.json``):

1. **Noise**: the unchanged gate rerun ``--noise-runs`` times (default 10), each in a fresh
   process under nondeterminism CI really sees: 1 or 2 intra-op threads for torch, BLAS and
   XGBoost (``OMP_NUM_THREADS`` and friends; XGBoost's ``nthread`` follows OpenMP's), a
   competing CPU-bound process, and a cold feature cache (frozen encoders recompute their
   features under that thread count). Target: 0 false alarms (score or time).
2. **Planted drops**: changes that cost about 2 points of macro-F1, each rerun once through the
   same code path (a changed suite pipeline or a ``table_transform``): a training default, a
   degraded encoder, a training-label bug and a partly shuffled weak modality. Target: every
   one caught (exit status 1).
3. **Power curve**: detection rate against drop size. Drops of each size are *simulated* on the
   baseline's real out-of-fold predictions of the MLP dataset (random correct rows made wrong,
   plus as many rows moved both ways as the planted changes moved), ``--trials`` times per size,
   and judged by the gate's own rule (Holm over the suite's datasets, the untouched dataset
   included). Simulation is labelled as such in the output.

    python benchmarks/regress_power.py                 # about 25 min on 2 cores
    python benchmarks/regress_power.py --noise-runs 4 --trials 50

Children: ``python benchmarks/regress_power.py --child LABEL --out FILE [--plant NAME]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _common import REPO, emit, parse_args, require_clean, table

SUITE = REPO / "suites" / "ci.yaml"
BASELINE = REPO / "benchmarks" / "baselines" / "ci.json"
TARGET = "synthetic"  # the dataset the plants hit (the MLP one)
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

# (label, threads (None = library default), CPU hogs, cold cache)
CONDITIONS: list[tuple[str, int | None, int, bool]] = [
    ("1 thread", 1, 0, False),
    ("2 threads", 2, 0, False),
    ("default threads", None, 0, False),
    ("1 thread + CPU hog", 1, 1, False),
    ("2 threads + CPU hog", 2, 1, False),
    ("cold cache, 1 thread", 1, 0, True),
    ("cold cache, 2 threads", 2, 0, True),
    ("2 threads + 2 CPU hogs", 2, 2, False),
    ("1 thread (again)", 1, 0, False),
    ("2 threads (again)", 2, 0, False),
]


# --------------------------------------------------------------------------- planted changes


def _target_only(transform: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Apply a table transform to the MLP dataset only (the one with images)."""

    def wrapped(table: Any) -> Any:
        return transform(table) if "image" in table.modalities else table

    return wrapped


def _flip_labels(rate: float) -> Callable[[Any], Any]:
    """Label bug: ``rate`` of the training labels moved to the next class (scored on the truth)."""

    def transform(table: Any) -> Any:
        rng = np.random.default_rng(7)
        labels = table.labels.copy()
        hit = rng.random(len(labels)) < rate
        labels[hit] = (labels[hit] + 1) % table.n_classes
        return dataclasses.replace(table, labels=labels, fingerprint="")

    return transform


def _shuffle_text(fraction: float) -> Callable[[Any], Any]:
    """Weak-modality bug: ``fraction`` of the rows get another row's text (a join off by rows)."""

    def transform(table: Any) -> Any:
        rng = np.random.default_rng(11)
        rows = np.flatnonzero(rng.random(len(table)) < fraction)
        text = list(table.text)
        moved = rng.permutation(rows)
        for i, j in zip(rows, moved, strict=True):
            text[i] = table.text[j]
        return dataclasses.replace(table, text=text, fingerprint="")

    return transform


def _with_pipeline(suite: Any, **change: Any) -> Any:
    """The suite with the target dataset's fixed pipeline changed (``training``/``encoders``)."""
    from mmbench.config import default_pipeline

    spec = suite.dataset(TARGET)
    pipeline = default_pipeline(spec.modalities.present(), spec.pipeline)
    if "training" in change:
        pipeline = pipeline.model_copy(
            update={"training": pipeline.training.model_copy(update=change["training"])}
        )
    if "encoders" in change:
        pipeline = pipeline.model_copy(
            update={"encoders": {**pipeline.encoders, **change["encoders"]}}
        )
    datasets = [
        d.model_copy(update={"pipeline": pipeline}) if d.name == TARGET else d
        for d in suite.datasets
    ]
    return suite.model_copy(update={"datasets": datasets})


def plant(name: str, suite: Any) -> tuple[Any, Callable[[Any], Any] | None]:
    """The suite and table transform of a planted change: ``kind@value`` (see :data:`PLANTS`)."""
    from mmbench.config import EncoderSpec

    kind, _, value = name.partition("@")
    if kind == "lr":
        return _with_pipeline(suite, training={"lr": float(value)}), None
    if kind == "class_weight":
        return _with_pipeline(suite, training={"class_weight": False}), None
    if kind == "tabular_encoder":
        tabular = EncoderSpec(name="tabular", options={"min_frequency": 0.99})
        return _with_pipeline(suite, encoders={"tabular": tabular}), None
    if kind == "labels":
        return suite, _target_only(_flip_labels(float(value)))
    if kind == "shuffle_text":
        return suite, _target_only(_shuffle_text(float(value)))
    raise SystemExit(f"unknown plant {name!r}")


PLANTS = {
    "lr@0.01": "training default: learning rate 3e-3 → 1e-2",
    "tabular_encoder": "degraded encoder: tabular one-hot keeps no category (min_frequency 0.99)",
    "labels@0.06": "label bug: 6% of training labels shifted to the next class",
    "shuffle_text@1.0": "weak modality: text column shuffled across rows",
    "class_weight": "training default: class_weight true → false",
}


# --------------------------------------------------------------------------- child


def child(label: str, out: Path, plant_name: str | None) -> None:
    """One gate run in this process; writes what the gate decided as JSON."""
    from mmbench.gate.regress import regress
    from mmbench.pipeline.cache import FeatureCache, default_cache_dir
    from mmbench.suite import load_suite

    suite = load_suite(SUITE)
    transform = None
    if plant_name:
        suite, transform = plant(plant_name, suite)
    start = time.perf_counter()
    report = regress(
        suite, BASELINE, table_transform=transform, cache=FeatureCache(default_cache_dir())
    )
    wall = time.perf_counter() - start
    datasets = {}
    for v in report.verdicts:
        t = v.test
        datasets[v.dataset] = {
            "status": v.status,
            "message": v.message,
            "delta": None if t is None else t.delta,
            "low": None if t is None else t.low,
            "high": None if t is None else t.high,
            "p": None if t is None else t.p_value,
            "p_holm": v.p_holm,
            "rows_changed": None if t is None else t.rows_changed,
            "time_growth": v.time_growth,
            "time_status": v.time_status,
        }
    out.write_text(
        json.dumps({"label": label, "exit": report.exit_code, "wall": wall, "datasets": datasets})
    )


def run_child(
    label: str, threads: int | None, hogs: int, cold: bool, plant_name: str | None = None
) -> dict[str, Any]:
    """A child gate run under the given thread count, CPU hogs and cache state."""
    env = dict(os.environ)
    for var in THREAD_VARS:
        env.pop(var, None)
        if threads is not None:
            env[var] = str(threads)
    with tempfile.TemporaryDirectory() as tmp:
        if cold:
            env["MMBENCH_CACHE_DIR"] = str(Path(tmp) / "cache")
        out = Path(tmp) / "out.json"
        cmd = [sys.executable, __file__, "--child", label, "--out", str(out)]
        if plant_name:
            cmd += ["--plant", plant_name]
        burners = [
            subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(hogs)
        ]
        try:
            subprocess.run(cmd, env=env, check=False)
        finally:
            for b in burners:
                b.kill()
                b.wait()
        if not out.exists():
            return {"label": label, "exit": -1, "wall": float("nan"), "datasets": {}}
        return dict(json.loads(out.read_text()))


# --------------------------------------------------------------------------- tables


def _fmt(x: Any, spec: str) -> str:
    return "—" if x is None or x != x else format(x, spec)


def noise_table(runs: list[dict[str, Any]]) -> str:
    rows = []
    for r in runs:
        for name, d in r["datasets"].items():
            rows.append(
                [
                    r["label"],
                    name,
                    _fmt(d["delta"], "+.4f"),
                    _fmt(d["p_holm"], ".3g"),
                    _fmt(d["rows_changed"], "d"),
                    d["status"],
                    f"x{d['time_growth']:.2f} {d['time_status']}",
                    str(r["exit"]),
                    f"{r['wall']:.0f}",
                ]
            )
    head = ["condition", "dataset", "Δ macro-F1", "p (Holm)", "rows changed", "verdict",
            "fit time", "exit", "wall s"]  # fmt: skip
    alarms = sum(r["exit"] != 0 for r in runs)
    return table(head, rows) + f"\n\nfalse alarms: {alarms} of {len(runs)} unchanged reruns\n"


def plant_table(runs: list[dict[str, Any]]) -> str:
    rows = []
    for r in runs:
        d = r["datasets"].get(TARGET, {})
        rows.append(
            [
                PLANTS[r["label"]],
                _fmt(d.get("delta"), "+.4f"),
                f"[{_fmt(d.get('low'), '+.4f')}, {_fmt(d.get('high'), '+.4f')}]",
                _fmt(d.get("p_holm"), ".3g"),
                _fmt(d.get("rows_changed"), "d"),
                d.get("status", "—"),
                "caught" if _caught(r) else f"MISSED (exit {r['exit']})",
            ]
        )
    head = ["planted change", "Δ macro-F1", "95% interval", "p (Holm)", "rows changed",
            "verdict", "gate"]  # fmt: skip
    caught = sum(_caught(r) for r in runs)
    return table(head, rows) + (
        f"\n\ncaught: {caught} of {len(runs)} planted changes (by the score verdict, exit 1)\n"
    )


def _caught(run: dict[str, Any]) -> bool:
    """Caught means the *score* verdict of the planted dataset failed the gate, not its time."""
    return run["exit"] == 1 and run["datasets"].get(TARGET, {}).get("status") == "regression"


# --------------------------------------------------------------------------- power curve


def power_curve(churn: int, trials: int, sizes: list[float]) -> str:
    """Detection rate of simulated drops on the baseline's real rows (see the module docstring)."""
    from mmbench.gate import Verdict
    from mmbench.gate.baseline import read_baseline, rows_of
    from mmbench.gate.paired import paired_bootstrap
    from mmbench.gate.regress import decide
    from mmbench.suite import load_suite

    suite = load_suite(SUITE)
    baseline = read_baseline(BASELINE)
    ref = baseline.datasets[TARGET]
    base = rows_of(ref.rows)
    others = [n for n in baseline.datasets if n != TARGET]
    rng = np.random.default_rng(0)
    rows = []
    for size in sizes:
        caught, deltas = 0, []
        for _ in range(trials):
            current = dataclasses.replace(base, pred=_simulated(base, size, churn, rng))
            test = paired_bootstrap(
                ref.metric, base, current, resamples=suite.regress.resamples, seed=ref.seed
            )
            verdicts = [Verdict(TARGET, "pass", ref.metric, test=test)]
            verdicts += [Verdict(n, "pass", ref.metric, test=_null(test)) for n in others]
            decide(verdicts, suite.regress)
            caught += verdicts[0].status == "regression"
            deltas.append(test.delta)
        rows.append(
            [
                f"{size:.3f}",
                f"{np.mean(deltas):+.4f}",
                f"{caught}/{trials}",
                f"{caught / trials:.2f}",
            ]
        )
    head = ["planted accuracy drop", "mean Δ macro-F1", "caught", "detection rate"]
    return table(head, rows) + (
        f"\n\nSimulated: {trials} trials per size on the baseline's {len(base.labels)} real "
        f"out-of-fold predictions of `{TARGET}`; each trial makes random correct rows wrong and "
        f"moves {churn} rows in all (the median the planted changes moved), judged with the "
        f"suite's rule and Holm over its {len(baseline.datasets)} datasets.\n"
    )


def _simulated(base: Any, size: float, churn: int, rng: np.random.Generator) -> np.ndarray:
    """Predictions with ``size`` × rows more wrong than ``base``, ``churn`` rows moved in all."""
    pred = base.pred.copy()
    labels = base.labels
    net = round(size * len(labels))
    worse = max(net, (churn + net) // 2)
    better = worse - net
    right = np.flatnonzero(pred[0] == labels)
    wrong = np.flatnonzero(pred[0] != labels)
    hit = rng.choice(right, worse, replace=False)
    pred[:, hit] = (labels[hit] + rng.integers(1, base.n_classes, len(hit))) % base.n_classes
    fixed = rng.choice(wrong, better, replace=False)
    pred[:, fixed] = labels[fixed]
    return pred


def _null(test: Any) -> Any:
    """An unchanged dataset's test: Δ 0, p 1 (what the noise reruns measured)."""
    return dataclasses.replace(test, delta=0.0, low=0.0, high=0.0, p_drop=1.0, p_gain=1.0)


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--plant", help="with --child: the planted change")
    parser.add_argument("--noise-runs", type=int, default=len(CONDITIONS))
    parser.add_argument("--plants", nargs="*", default=list(PLANTS), help="planted changes")
    parser.add_argument("--trials", type=int, default=100, help="simulations per drop size")
    args = parse_args(parser, check=False)
    if not args.child:  # a child writes no result; its parent checked
        require_clean()
    if args.child:
        child(args.child, args.out, args.plant)
        return
    sections = []
    noise = [run_child(*c) for c in (CONDITIONS * 2)[: args.noise_runs]]
    if noise:
        sections += ["## Unchanged reruns (false alarms)\n", noise_table(noise)]
    plants = [run_child(name, 2, 0, False, name) for name in args.plants]
    if plants:
        sections += ["## Planted drops\n", plant_table(plants)]
    changed = [r["datasets"].get(TARGET, {}).get("rows_changed") for r in plants]
    churn = int(np.median([c for c in changed if c is not None] or [0]))
    if args.trials:
        sizes = [0.0, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03]
        sections += ["## Power curve (simulated)\n", power_curve(churn, args.trials, sizes)]
    raw = REPO / "benchmarks" / "results" / "regress_power.json"
    raw.write_text(json.dumps({"noise": noise, "plants": plants}, indent=1) + "\n")
    emit(
        "regress_power",
        "CI regression gate: false alarms, planted drops, power",
        "\n".join(sections),
    )


if __name__ == "__main__":
    main()

"""Fusion strategies on the embedded smoke data: quality, and trial cost cold vs cached.

For every fusion head with the default frozen encoders, a COLD trial cross-validates with a
fresh, empty feature cache (every feature computed), then CACHED trials repeat it with the same
cache directory (every frozen/fitted feature read back). The target is a cached trial of a
frozen-encoder candidate costing at most 1/10 of a cold one. Two candidates are added for
contrast: a frozen ResNet-18 (random init, 224 px: what a real image backbone costs to run)
and a fine-tuned one, whose towers train inside every trial so the cache only saves inputs.

    python benchmarks/fusion_cache.py            # 600 rows, 5 folds, 3 repeats per timing
    python benchmarks/fusion_cache.py --quick    # 200 rows, 3 folds, 1 repeat
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from _common import SUITE, emit, mean_std, median, parse_args, table

from mmbench.config import EncoderSpec, FusionSpec, PipelineSpec, default_pipeline
from mmbench.data import MultiModalTable, load_table
from mmbench.evaluation import Fold, cv_folds
from mmbench.pipeline import CVResult, evaluate_pipeline
from mmbench.pipeline.cache import FeatureCache
from mmbench.suite import load_suite

FUSIONS = ["early", "late", "hybrid", "attention", "gated", "xgboost"]
TARGET_RATIO = 0.1
PROFILED = "early"


def candidates(modalities: list[str]) -> list[tuple[str, PipelineSpec]]:
    """Each fusion with the default frozen encoders; a costlier frozen image encoder; and one
    fine-tuned candidate."""
    out = []
    for name in FUSIONS:
        spec = default_pipeline(modalities)
        spec.fusion = FusionSpec(name=name)
        out.append((name, spec))
    heavy = default_pipeline(modalities)
    if "image" in heavy.encoders:  # random init: no download; costs what a real backbone costs
        heavy.encoders["image"] = EncoderSpec(name="timm/resnet18")
        out.append(("early, frozen image timm/resnet18 (224 px)", heavy))
    tuned = default_pipeline(modalities)
    if "image" in tuned.encoders:
        options = {"frozen": False, "image_size": 32}
        tuned.encoders["image"] = EncoderSpec(name="timm/test_resnet", options=options)
    if "text" in tuned.encoders:
        tuned.encoders["text"] = EncoderSpec(name="embbag")
    out.append(("early, fine-tuned image + embbag text", tuned))
    return out


def load(rows: int | None) -> tuple[MultiModalTable, int]:
    suite = load_suite(SUITE)
    spec = suite.datasets[0]
    if rows is not None:
        source = spec.source.model_copy(update={"options": {**spec.source.options, "n_rows": rows}})
        spec = spec.model_copy(update={"source": source})
    return load_table(spec, suite.root, seed=suite.seed), suite.seed


def warm_up(data: MultiModalTable, seed: int) -> None:
    """Pay imports and first-call costs (torch, timm, librosa, xgboost) outside the timings."""
    small = data.subset(list(range(min(len(data), 60))))
    folds = cv_folds(small.labels, 2, 1, seed)
    for name in ("early", "xgboost"):
        spec = default_pipeline(small.modalities)
        spec.fusion = FusionSpec(name=name)
        spec.training.epochs = 2
        evaluate_pipeline(small, spec, folds, cache=FeatureCache(None))


def timed(data: MultiModalTable, spec: PipelineSpec, folds: list[Fold], root: Path) -> CVResult:
    """One trial; adds wall and process CPU seconds to ``CVResult.seconds``."""
    start, cpu = time.perf_counter(), time.process_time()
    cv = evaluate_pipeline(data, spec, folds, cache=FeatureCache(root))
    cv.seconds["wall"] = time.perf_counter() - start
    cv.seconds["cpu"] = time.process_time() - cpu
    if not cv.ok:
        raise SystemExit(f"{spec.fusion.key()} failed: {cv.failures[0]}")
    return cv


def measure(
    data: MultiModalTable, spec: PipelineSpec, folds: list[Fold], repeats: int, workdir: Path
) -> dict[str, Any]:
    """``repeats`` pairs of a cold trial (fresh cache dir) and a cached one (same dir).

    Pairs are interleaved so that a burst of load from other processes hits both kinds alike.
    """
    cold: list[CVResult] = []
    cached: list[CVResult] = []
    roots: list[Path] = []
    for _ in range(repeats):
        roots.append(Path(tempfile.mkdtemp(dir=workdir)))
        cold.append(timed(data, spec, folds, roots[-1]))
        cached.append(timed(data, spec, folds, roots[-1]))
    return {"cold": cold, "cached": cached, "roots": roots}


def fastest(results: list[CVResult]) -> CVResult:
    """The trial with the least wall time: the least disturbed by other processes."""
    return min(results, key=lambda cv: cv.seconds["wall"])


def row(label: str, m: dict[str, Any], encode_floor: float | None) -> list[str]:
    """``encode_floor``: least cold encode time of all frozen candidates (same encoders)."""
    cold, cached = fastest(m["cold"]), fastest(m["cached"])
    ratio = cached.seconds["wall"] / cold.seconds["wall"]
    floor = cold.seconds["encode"] if encode_floor is None else encode_floor
    steady = cached.seconds["wall"] / (floor + cold.seconds["fit"])
    return [
        label,
        mean_std(cold.summary, "f1_macro"),
        mean_std(cold.summary, "roc_auc"),
        f"{cold.seconds['wall']:.2f}",
        f"{cold.seconds['encode']:.2f} / {cold.seconds['fit']:.2f}",
        f"{cached.seconds['wall']:.2f}",
        f"{ratio:.2f} ({'yes' if ratio <= TARGET_RATIO else 'no'})",
        f"{steady:.2f} ({'yes' if steady <= TARGET_RATIO else 'no'})",
        f"{cached.seconds['cpu'] / cold.seconds['cpu']:.2f}",
    ]


def cached_row(label: str, m: dict[str, Any]) -> list[str]:
    cold, cached = fastest(m["cold"]), fastest(m["cached"])
    walls = [cv.seconds["wall"] for cv in m["cold"] + m["cached"]]
    return [
        label,
        f"{cold.seconds['encode']:.2f} → {cached.seconds['encode']:.3f}",
        f"{cached.cache['hits']}/{cached.cache['misses']}",
        f"{cached.seconds['fit']:.2f}",
        fit_detail(cached),
        f"{min(walls):.1f}–{max(walls):.1f}",
    ]


def encode_seconds(cache_dir: Path) -> dict[str, tuple[str, int, float]]:
    """Per modality: encoder, entries computed and seconds, from the cache's JSON sidecars."""
    found: dict[str, list[Any]] = defaultdict(lambda: ["", 0, 0.0])
    for sidecar in cache_dir.glob("*/*.json"):
        meta = json.loads(sidecar.read_text())
        entry = found[meta["key"]["modality"]]
        entry[0] = meta["key"]["encoder"]["name"]
        entry[1] += 1
        entry[2] += float(meta["seconds"])
    return {m: (e[0], e[1], e[2]) for m, e in found.items()}


def encode_rows(roots: list[Path]) -> list[list[Any]]:
    """Per modality over several cold trials: encoder, entries per trial, min and median s."""
    trials = [encode_seconds(root) for root in roots]
    rows = []
    for modality, (encoder, entries, _) in trials[0].items():
        seconds = sorted(t[modality][2] for t in trials)
        rows.append([modality, encoder, entries, f"{seconds[0]:.2f}", f"{median(seconds):.2f}"])
    return sorted(rows, key=lambda r: -float(r[3]))


def fit_detail(cv: CVResult) -> str:
    """Mean epochs run per fold (torch heads) or trees (xgboost), from the fold infos."""
    infos = [f.info for f in cv.folds]
    if all("epochs_run" in i for i in infos):
        return f"{sum(i['epochs_run'] for i in infos) / len(infos):.1f} epochs"
    if all("n_trees" in i for i in infos):
        return f"{sum(i['n_trees'] for i in infos) / len(infos):.0f} trees"
    return ""


def profile_cached(
    data: MultiModalTable, spec: PipelineSpec, folds: list[Fold], root: Path, top: int = 14
) -> str:
    """cProfile of one cached trial: mmbench's functions by cumulative time."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(evaluate_pipeline, data, spec, folds, cache=FeatureCache(root))
    raw = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = max(v[3] for v in raw.values())
    ours = [(k, v) for k, v in raw.items() if "/mmbench/" in k[0]]
    rows = [
        [f"`{Path(file).parent.name}/{Path(file).name}:{name}`", calls, f"{cum:.3f}",
         f"{100 * cum / total:.0f}%"]
        for (file, _, name), (_, calls, _own, cum, _) in sorted(ours, key=lambda kv: -kv[1][3])
    ][:top]  # fmt: skip
    return table(["function", "calls", "cumulative s", "share of trial"], rows)


def report(args: argparse.Namespace, data: MultiModalTable, results: dict[str, Any]) -> str:
    headers = [
        "candidate",
        "macro-F1 (mean ± std)",
        "ROC-AUC (mean ± std)",
        "cold s/trial",
        "cold encode / fit s",
        "cached s/trial",
        "cached/cold wall (≤ 0.10?)",
        "cached / (least-loaded encode + fit)",
        "cached/cold CPU",
    ]
    frozen = {label: m for label, m in results.items() if label in FUSIONS}
    floor = min(cv.seconds["encode"] for m in frozen.values() for cv in m["cold"])
    main = table(
        headers,
        [row(label, m, floor if label in frozen else None) for label, m in results.items()],
    )
    detail = table(
        ["candidate", "encode s cold → cached", "cached hits/misses", "cached fit s",
         "per fold", "range of all trial walls s"],
        [cached_row(label, m) for label, m in results.items()],
    )  # fmt: skip
    roots = [root for m in frozen.values() for root in m["roots"]]
    encode_tbl = table(
        ["modality", "encoder", "entries per trial", "min s", "median s"], encode_rows(roots)
    )
    return (
        f"{len(data)} rows, {data.n_classes} classes, modalities {', '.join(data.modalities)}; "
        f"{args.folds}-fold CV. Each candidate ran {args.repeats} interleaved pair(s) of a cold "
        "trial (fresh cache dir) and a cached trial (same dir); the table shows the fastest "
        "trial of each kind (least disturbed by other load on the shared cores). encode/fit are "
        f"`CVResult.seconds`; CPU is process CPU time. The frozen candidates share their encoders, "
        "so the least cold encode time among all of them estimates an undisturbed encode; the "
        "second ratio uses it: cached / (that encode + the candidate's cold fit). Encoder "
        "seconds per modality come from the feature cache's JSON sidecars. "
        f"Load average at start: {args.load}.\n\n"
        f"## Quality and trial cost\n\n{main}\n\n"
        f"## What the cache removes, and what a cached trial still pays\n\n{detail}\n\n"
        f"## Where cold encode time goes (all cold trials of the frozen candidates)\n\n"
        f"{encode_tbl}\n\n"
        f"## Where a cached `{PROFILED}` trial spends its time (cProfile, cumulative)\n\n"
        f"{args.profile}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="synthetic rows (suite: 600)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="timings per candidate")
    parser.add_argument("--quick", action="store_true", help="200 rows, 3 folds, 1 repeat")
    args = parse_args(parser)
    if args.quick:
        args.rows, args.folds, args.repeats = args.rows or 200, 3, 1
    data, seed = load(args.rows)
    folds = cv_folds(data.labels, args.folds, 1, seed)
    warm_up(data, seed)
    args.load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="mmbench-bench-") as tmp:
        for label, spec in candidates(data.modalities):
            results[label] = measure(data, spec, folds, args.repeats, Path(tmp))
            print(f"  {label}: done", file=sys.stderr, flush=True)
            if label == PROFILED:
                args.profile = profile_cached(data, spec, folds, results[label]["roots"][-1])
        body = report(args, data, results)
    name = "fusion_cache_quick" if args.quick else "fusion_cache"
    emit(name, "Fusion strategies: quality and cold vs cached trial cost", body)


if __name__ == "__main__":
    main()

"""Mutation check: do the tests fail when the code that produces scores is broken?

Each *plant* is a small hand-written bug — the kind a refactor introduces silently: an off-by-one
in the folds, the wrong average in macro-F1, class weights dropped, ensemble weights not
normalised, a threshold ignored, encoders fitted on validation rows. For each, the script copies
the package and its tests to a temporary directory, applies the plant (an exact, unique text
replacement, so a plant that no longer matches the code is an error, not a silent pass), runs the
tests that cover that module (the default selection less slow, browser and GPU tests), stops at
the first failure, and records which test caught it. A plant no test catches *survived*: a gap in
the tests, or (rarely) a change that does not alter behaviour.

    python benchmarks/mutation_check.py [--plant NAME ...] [--list] [--jobs 1]

The unmutated code is run first on the union of the selected tests: they must pass, or the
check stops. Writes ``benchmarks/results/mutation_check.md`` (refused from a dirty tree).
Also ``nox -s mutation``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _common import REPO, emit, parse_args, table

MARKERS = "not slow and not faults and not browser and not gpu"
TIMEOUT_S = 600


@dataclass(frozen=True)
class Plant:
    name: str
    path: str
    """File under the repository, e.g. ``mmbench/evaluation/metrics.py``."""
    old: str
    new: str
    tests: tuple[str, ...]

    @property
    def module(self) -> str:
        return self.path.removeprefix("mmbench/").removesuffix(".py")


EVAL = ("tests/test_evaluation.py", "tests/test_paired.py", "tests/test_ensemble.py")
PIPE = ("tests/test_pipeline.py", "tests/test_final.py")
PAIRED = ("tests/test_paired.py", "tests/test_regress.py")
ENS = ("tests/test_ensemble.py", "tests/test_final.py")
SEARCH = ("tests/test_search.py",)
FUSION = ("tests/test_fusion_regularisers.py", "tests/test_fusion_training.py")

PLANTS = [
    # ---------------------------------------------------------------- evaluation
    Plant(
        "macro-F1 averaged by class support (weighted, not macro)",
        "mmbench/evaluation/metrics.py",
        "    return float(scores.mean())\n",
        "    return float(np.average(scores, weights=np.bincount(y_true, minlength=n_classes)))\n",
        EVAL,
    ),
    Plant(
        "macro-F1 computed as micro-F1 (pooled counts)",
        "mmbench/evaluation/metrics.py",
        "    return float(scores.mean())\n",
        "    return float(2.0 * tp.sum() / denom.sum())\n",
        EVAL,
    ),
    Plant(
        "folds not stratified (plain KFold)",
        "mmbench/evaluation/splits.py",
        "            splitter: Any = StratifiedKFold(n_splits=folds, shuffle=True, "
        "random_state=split_seed)",
        "            splitter: Any = __import__('sklearn.model_selection', fromlist=['KFold'])"
        ".KFold(n_splits=folds, shuffle=True, random_state=split_seed)",
        EVAL,
    ),
    Plant(
        "grouped folds ignore the groups (a group on both sides of a split)",
        "mmbench/evaluation/splits.py",
        "            splitter = StratifiedGroupKFold(n_splits=folds",
        "            splitter = StratifiedKFold(n_splits=folds",
        EVAL,
    ),
    Plant(
        "every CV repeat reuses the first repeat's split",
        "mmbench/evaluation/splits.py",
        'split_seed = derive_seed(seed, "split", r)',
        'split_seed = derive_seed(seed, "split", 0)',
        EVAL,
    ),
    Plant(
        "fold std with ddof=0 (population) instead of the sample std",
        "mmbench/evaluation/metrics.py",
        "std = float(finite.std(ddof=1))",
        "std = float(finite.std(ddof=0))",
        EVAL,
    ),
    Plant(
        "tuned binary threshold ignored when scoring (arg-max instead)",
        "mmbench/evaluation/metrics.py",
        "    if weights is not None or (threshold is not None and proba.shape[1] == 2):\n",
        "    if weights is not None:\n",
        EVAL,
    ),
    Plant(
        "binary threshold: strict > instead of >=",
        "mmbench/evaluation/metrics.py",
        "        return (proba[:, 1] >= threshold).astype(np.int64)",
        "        return (proba[:, 1] > threshold).astype(np.int64)",
        EVAL,
    ),
    Plant(
        "log-loss declared higher-is-better",
        "mmbench/evaluation/metrics.py",
        '@_metric("log_loss", "log-loss", higher_is_better=False)',
        '@_metric("log_loss", "log-loss", higher_is_better=True)',
        EVAL,
    ),
    Plant(
        "chance level from a uniform prior instead of the class prior",
        "mmbench/evaluation/metrics.py",
        "    prior = np.bincount(y, minlength=n_classes) / len(y)\n",
        "    prior = np.full(n_classes, 1.0 / n_classes)\n",
        EVAL,
    ),
    Plant(
        "multiclass ROC-AUC weighted by support instead of macro",
        "mmbench/evaluation/metrics.py",
        'roc_auc_score(y, proba, multi_class="ovr", average="macro"',
        'roc_auc_score(y, proba, multi_class="ovr", average="weighted"',
        EVAL,
    ),
    # ---------------------------------------------------------------- pipeline
    Plant(
        "encoders fitted on all rows, validation rows included (both branches)",
        "mmbench/pipeline/encode.py",
        "            features[m] = enc.fit(take(values, train), table.labels[train]).transform(values)\n"
        "        else:\n"
        "            key = feature_key(table.fingerprint, m, enc.spec(), train)\n"
        "\n"
        "            def compute(enc: Encoder = enc, values: Any = values) -> np.ndarray:\n"
        "                enc.fit(take(values, train), table.labels[train])\n",
        "            features[m] = enc.fit(values, table.labels).transform(values)\n"
        "        else:\n"
        "            key = feature_key(table.fingerprint, m, enc.spec(), train)\n"
        "\n"
        "            def compute(enc: Encoder = enc, values: Any = values) -> np.ndarray:\n"
        "                enc.fit(values, table.labels)\n",
        PIPE,
    ),
    Plant(
        "head trained on every row, validation rows included",
        "mmbench/pipeline/fold.py",
        "    train = features.take(fold.train)\n",
        "    train = features\n",
        PIPE,
    ),
    Plant(
        "fold scored without its tuned threshold",
        "mmbench/pipeline/cv.py",
        "        result.metrics = compute_metrics(table.labels[fold.valid], proba, threshold=threshold)",
        "        result.metrics = compute_metrics(table.labels[fold.valid], proba)",
        PIPE,
    ),
    Plant(
        "fold models summed, not averaged",
        "mmbench/pipeline/fitted.py",
        "        return total / len(self.heads)\n",
        "        return total\n",
        PIPE,
    ),
    Plant(
        "fold models: only the first fold's head predicts",
        "mmbench/pipeline/fitted.py",
        "        for encoders, head in zip(self.fitted, self.heads, strict=True):",
        "        for encoders, head in list(zip(self.fitted, self.heads, strict=True))[:1]:",
        PIPE,
    ),
    Plant(
        "inner early-stopping hold-out not stratified",
        "mmbench/evaluation/splits.py",
        "    stratify = labels if counts[counts > 0].min() >= 2 else None\n",
        "    stratify = None\n",
        PIPE,
    ),
    # ---------------------------------------------------------------- paired (the gate's test)
    Plant(
        "bootstrap resamples all rows together, not within each fold",
        "mmbench/gate/paired.py",
        "    for s in np.unique(strata):\n"
        "        idx = np.flatnonzero(strata == s)\n"
        "        weights[:, idx] = rng.multinomial("
        "len(idx), np.full(len(idx), 1.0 / len(idx)), resamples)\n",
        "    idx = np.arange(len(strata))\n"
        "    weights[:, idx] = rng.multinomial("
        "len(idx), np.full(len(idx), 1.0 / len(idx)), resamples)\n",
        PAIRED,
    ),
    Plant(
        "bootstrap strata ignored by the caller (all rows one stratum)",
        "mmbench/gate/paired.py",
        "    weights = resample_weights(baseline.folds[0], resamples, seed)",
        "    weights = resample_weights(np.zeros_like(baseline.folds[0]), resamples, seed)",
        PAIRED,
    ),
    Plant(
        "bootstrap not paired (baseline gets its own resamples)",
        "mmbench/gate/paired.py",
        "    a, b = fold_scores(metric, current, weights), fold_scores(metric, baseline, weights)\n",
        "    a = fold_scores(metric, current, weights)\n"
        "    b = fold_scores(metric, baseline, np.random.default_rng(1).permutation(weights, axis=0))\n",
        PAIRED,
    ),
    Plant(
        "drop and gain p-values swapped",
        "mmbench/gate/paired.py",
        "        p_drop=float((1 + np.sum(gain >= 0)) / (kept + 1)),\n"
        "        p_gain=float((1 + np.sum(gain <= 0)) / (kept + 1)),\n",
        "        p_drop=float((1 + np.sum(gain <= 0)) / (kept + 1)),\n"
        "        p_gain=float((1 + np.sum(gain >= 0)) / (kept + 1)),\n",
        PAIRED,
    ),
    Plant(
        "Holm without the step-down maximum (not monotone)",
        "mmbench/gate/paired.py",
        "        running = max(running, min(1.0, (m - rank) * float(p_values[i])))",
        "        running = min(1.0, (m - rank) * float(p_values[i]))",
        PAIRED,
    ),
    # ---------------------------------------------------------------- ensemble
    Plant(
        "ensemble weights not normalised (raw counts)",
        "mmbench/final/selection.py",
        "        return {i: c / total for i, c in sorted(self.counts.items())}",
        "        return {i: float(c) for i, c in sorted(self.counts.items())}",
        ENS,
    ),
    Plant(
        "ensemble starts from the worst single candidate",
        "mmbench/final/selection.py",
        "    best = max(range(len(probas)), key=lambda i: singles[i])",
        "    best = min(range(len(probas)), key=lambda i: singles[i])",
        ENS,
    ),
    Plant(
        "ensemble keeps adding without checking it helps",
        "mmbench/final/selection.py",
        "        if not _better(trials[pick], current, tolerance):\n            break\n",
        "        if False:\n            break\n",
        ENS,
    ),
    Plant(
        "ensemble's log-loss tie-break prefers worse calibration",
        "mmbench/final/selection.py",
        "        return (score(y, p), -_log_loss(y, p))",
        "        return (score(y, p), _log_loss(y, p))",
        ENS,
    ),
    # ---------------------------------------------------------------- final
    Plant(
        "ensemble candidates ranked worst first",
        "mmbench/final/model.py",
        "    ranked = sorted(ok, key=lambda n: _rank_key(ok[n], primary, select_by))[:MAX_CANDIDATES]",
        "    ranked = sorted(ok, key=lambda n: -_rank_key(ok[n], primary, select_by))[:MAX_CANDIDATES]",
        ENS,
    ),
    Plant(
        "decision rule adopted even when it does not help held-out folds",
        "mmbench/evaluation/decision.py",
        "    if gain < MIN_DECISION_GAIN:",
        "    if gain < -1.0:",
        ENS,
    ),
    Plant(
        "decision rule tuned with the scored fold's own rows",
        "mmbench/evaluation/decision.py",
        "    rest = np.setdiff1d(scored, fold.valid)",
        "    rest = scored",
        ENS,
    ),
    Plant(
        "final weights not renormalised after a member is dropped",
        "mmbench/final/model.py",
        "        [w / total for w in weights],",
        "        list(weights),",
        ENS,
    ),
    Plant(
        "final model scores without its decision weights",
        "mmbench/final/model.py",
        "        return compute_metrics(table.labels, self.predict_proba(table), weights=self.decision)",
        "        return compute_metrics(table.labels, self.predict_proba(table))",
        ENS,
    ),
    # ---------------------------------------------------------------- search (objective, study)
    Plant(
        "a trial may be pruned after its last fold (guard removed)",
        "mmbench/search/objective.py",
        "        if step < len(self.folds) - 1 and trial.should_prune():",
        "        if trial.should_prune():",
        SEARCH,
    ),
    Plant(
        "pruning guard off by one (never prunes before the last two folds)",
        "mmbench/search/objective.py",
        "        if step < len(self.folds) - 1 and trial.should_prune():",
        "        if step < len(self.folds) - 2 and trial.should_prune():",
        SEARCH,
    ),
    Plant(
        "study direction inverted",
        "mmbench/search/study.py",
        '    return "maximize" if METRICS.get(metric).higher_is_better else "minimize"',
        '    return "minimize" if METRICS.get(metric).higher_is_better else "maximize"',
        SEARCH,
    ),
    Plant(
        "trial value is the last fold's score, not the CV mean",
        "mmbench/search/objective.py",
        "        primary = cv.mean(self.settings.primary)\n",
        "        primary = cv.fold_scores(self.settings.primary)[-1]\n",
        SEARCH,
    ),
    # ---------------------------------------------------------------- training (class weights)
    Plant(
        "class weights dropped (every class weighs 1)",
        "mmbench/fusion/regularisers.py",
        "    weights[seen] = counts.sum() / (seen.sum() * counts[seen])\n",
        "",
        FUSION,
    ),
    # ---------------------------------------------------------------- fair comparisons
    Plant(
        "nested comparison selects the blend on the fold it scores (in-sample)",
        "mmbench/final/stacking.py",
        "        rest = np.setdiff1d(np.flatnonzero(covered), fold.valid)\n",
        "        rest = np.flatnonzero(covered)\n",
        ("tests/test_stacking.py",),
    ),
    Plant(
        "the rung promotes the worst candidates instead of the best",
        "mmbench/search/fidelity.py",
        "    return sign * score >= ranked[keep - 1]\n",
        "    return sign * score <= ranked[-keep]\n",
        ("tests/test_fidelity.py",),
    ),
    Plant(
        "the budget subsample ignores the time left (all rows but one)",
        "mmbench/run/subsample.py",
        "    rows = min(len(table) - 1, int(SUBSAMPLE_SHARE * exc.left / exc.per_row))\n",
        "    rows = len(table) - 1\n",
        ("tests/test_budget.py",),
    ),
    Plant(
        "media fingerprinted by their path, not their bytes",
        "mmbench/data/table.py",
        "    content = None if path is None else file_sha256(path)\n",
        "    content = None\n",
        ("tests/test_fingerprint.py", "tests/test_download.py"),
    ),
    Plant(
        "the inner hold-out of a grouped table ignores the groups",
        "mmbench/evaluation/splits.py",
        "    if groups is not None:\n        return _group_holdout(labels, groups, seed)\n",
        "",
        ("tests/test_pipeline.py",),
    ),
    Plant(
        "peers scored by arg-max, not the decision rule of every other row",
        "mmbench/peers/evaluate.py",
        "    return decide(cv, table.labels, folds, metric)\n",
        "    return cv\n",
        ("tests/test_peers.py",),
    ),
]


COPIED = ("mmbench", "tests", "pyproject.toml")
"""What each mutant gets its own copy of; everything else is symlinked to the checkout."""


def snapshot(tmp: Path) -> Path:
    """The checkout's package, tests and pyproject as they are now: every mutant starts from
    this copy, so editing the checkout while the check runs cannot leak into it."""
    for name in COPIED:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, tmp / name, **_ignore(REPO / name))
    return tmp


def _ignore(path: Path) -> dict[str, object]:
    return {"ignore": shutil.ignore_patterns("__pycache__")} if path.is_dir() else {}


def workspace(tmp: Path, source: Path) -> Path:
    """A copy of ``source``'s package, tests and pyproject in ``tmp``; the rest symlinked."""
    for entry in REPO.iterdir():
        if entry.name in (".git", ".venv", ".nox") or entry.name.endswith("_cache"):
            continue
        if entry.name in COPIED:
            copy = shutil.copytree if entry.is_dir() else shutil.copy2
            copy(source / entry.name, tmp / entry.name, **_ignore(entry))
        else:
            (tmp / entry.name).symlink_to(entry)
    return tmp


def apply(root: Path, plant: Plant) -> None:
    path = root / plant.path
    text = path.read_text()
    found = text.count(plant.old)
    if found != 1:
        raise SystemExit(f"plant {plant.name!r}: expected 1 match in {plant.path}, found {found}")
    path.write_text(text.replace(plant.old, plant.new))


def pytest(root: Path, tests: tuple[str, ...]) -> tuple[int, str, float]:
    """(exit status, output, seconds) of the tests in ``root``'s copy, stopping at a failure."""
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", MARKERS]
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [*cmd, *tests], cwd=root, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return -1, "timeout", time.perf_counter() - start
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - start


def killer(output: str) -> str:
    """The first failing test's id (``test_file.py::test_name``), from pytest's summary."""
    match = re.search(r"^(?:FAILED|ERROR) (\S+)", output, re.M)
    return match.group(1).removeprefix("tests/") if match else "(no test named)"


def check(plant: Plant, source: Path) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="mmbench-mutant-") as name:
        root = workspace(Path(name), source)
        apply(root, plant)
        code, output, seconds = pytest(root, plant.tests)
    if code == 0:
        verdict, by = "survived", "—"
    elif code == -1:
        verdict, by = "killed (timeout)", f"timeout after {TIMEOUT_S} s"
    elif code in (1, 2):  # 1: a test failed; 2: collection error (the plant breaks an import)
        verdict, by = "killed", killer(output)
    else:
        raise SystemExit(f"plant {plant.name!r}: pytest exit {code}\n{output[-3000:]}")
    return {"plant": plant, "verdict": verdict, "by": by, "seconds": seconds}


def baseline(plants: list[Plant], source: Path) -> float:
    """The unmutated copy passes every selected test, and imports the copy, not the checkout."""
    tests = tuple(dict.fromkeys(t for p in plants for t in p.tests))
    with tempfile.TemporaryDirectory(prefix="mmbench-unmutated-") as name:
        root = workspace(Path(name), source)
        where = subprocess.run(
            [sys.executable, "-c", "import mmbench; print(mmbench.__file__)"],
            cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        if not where.startswith(str(root)):
            raise SystemExit(f"the copy is not what gets imported: mmbench from {where}")
        code, output, seconds = pytest(root, tests)
    if code != 0:
        raise SystemExit(f"unmutated tests fail (exit {code}); fix them first:\n{output[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plant", action="append", help="run only plants whose name contains this")
    parser.add_argument("--list", action="store_true", help="list the plants and exit")
    args = parse_args(parser)
    plants = [p for p in PLANTS if not args.plant or any(s in p.name for s in args.plant)]
    if args.list:
        for p in plants:
            print(f"{p.module:22} {p.name}")
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="mmbench-snapshot-") as name:
        source = snapshot(Path(name))
        base = baseline(plants, source)
        print(f"unmutated: selected tests pass ({base:.0f} s)", flush=True)
        for i, plant in enumerate(plants, 1):
            r = check(plant, source)
            rows.append(r)
            print(f"[{i}/{len(plants)}] {plant.module}: {plant.name}: {r['verdict']} "
                  f"{r['by']} ({r['seconds']:.0f} s)", flush=True)  # fmt: skip
    killed = sum(r["verdict"] != "survived" for r in rows)
    body = table(
        ["plant", "module", "killed?", "by (first failing test)", "tests run", "s"],
        [
            [r["plant"].name, r["plant"].module, r["verdict"], f"`{r['by']}`" if r["by"] != "—"
             else "—", ", ".join(t.removeprefix("tests/") for t in r["plant"].tests),
             f"{r['seconds']:.0f}"]
            for r in rows
        ],
    )  # fmt: skip
    body += (
        f"\n\nkill rate: {killed} of {len(rows)} plants ({100 * killed / max(len(rows), 1):.0f} %); "
        f"unmutated run of the selected tests {base:.0f} s; pytest -x -m '{MARKERS}'"
    )
    emit("mutation_check", "Mutation check: planted bugs in the score-producing modules", body)


if __name__ == "__main__":
    main()

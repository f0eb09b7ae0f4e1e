"""CI regression gate: rerun a fixed, fast configuration and compare it fold by fold with a baseline.

The gate must be neither flaky nor blind. Its decision rule, per dataset:

1. The rerun uses the same folds and seeds as the baseline (both derive from the suite seed), so
   each fold's score can be *paired* with its baseline score. With ``k`` folds, let
   ``d_i = current_i − baseline_i``, oriented so that positive is better (sign flipped for
   lower-is-better metrics such as log-loss), and ``drop = −mean(d)``.
2. The tolerance is the largest of three noise scales::

       tolerance = max(min_drop,                          # floor: drops too small to matter
                       t_{0.95, k−1} · s / √k,            # paired run-to-run noise (one-sided t)
                       z · sd(baseline folds) / √k)       # standard error of the baseline mean

   with ``s = min(sd(d), √2 · sd(baseline folds))``. The first keeps bit-identical reruns from
   failing on rounding; the second widens the band when the rerun's fold scores move in
   different directions (nondeterministic kernels, another CPU); the third scales with how noisy
   the task is across folds (``z = 1`` by default).

   Why the cap on ``s``: if the code did not change, the rerun's fold scores come from the same
   distribution as the baseline's, and even *unpaired* draws would differ by at most
   ``sd(d) ≈ √2 · sd(baseline)``; pairing on identical folds only lowers that. A larger spread
   of differences means the folds reacted *differently* to a change, i.e. a real, heterogeneous
   effect, which must not widen the band. Without the cap the gate is blind with few folds:
   with 3 folds (``t = 2.92``) a drop of 0.24 macro-F1 that hit one fold much less than the
   other two passed.
3. The dataset **fails** when ``drop > tolerance``; it is reported as *improved* when ``−drop >
   tolerance`` (not an error, but a hint to refresh the baseline with ``--update``).

A changed dataset fingerprint (the data changed), different fold keys (the protocol changed), a
different metric, a failed fold or a dataset that could not be rerun is an **error**, never a
silent comparison. Exit status: 0 pass, 1 regression, 2 error.

The rerun deliberately bypasses search: each dataset's suite pipeline (or the default pipeline)
is cross-validated once, without tracking, with result files in a temporary directory. It calls
the same pieces as :func:`mmbench.runner.run_dataset` (``load_table``, ``cv_folds`` and
:mod:`mmbench.jobs`' ``evaluate_fixed`` and ``build_result``) so that tests can inject a ``table_transform`` — e.g.
shuffle an informative modality to simulate a bug — through exactly the code path CI runs.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mmbench.errors import MMBenchError
from mmbench.evaluation import mean_std

if TYPE_CHECKING:
    from mmbench.cache import FeatureCache
    from mmbench.data.table import MultiModalTable
    from mmbench.progress import Reporter
    from mmbench.results import RunResult
    from mmbench.suite import DatasetSpec, Suite

BASELINE_SCHEMA_VERSION = 1
MIN_DROP = 0.01
CONFIDENCE = 0.95
BASELINE_Z = 1.0
PIPELINE_NAME = "regress"
TableTransform = Callable[["MultiModalTable"], "MultiModalTable"]
Status = Literal["pass", "improved", "regression", "error", "new"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BaselineDataset(_Model):
    """The reference fold scores of one dataset's fixed configuration."""

    metric: str
    higher_is_better: bool
    fold_keys: list[str]
    fold_scores: list[float]
    mean: float
    std: float
    fingerprint: str
    seed: int
    n_rows: int
    pipeline_name: str
    pipeline: dict[str, Any]


class Baseline(_Model):
    """A versioned baseline file: what the gate compares against, and where it came from."""

    schema_version: int = BASELINE_SCHEMA_VERSION
    suite: str
    created_at: str
    mmbench_version: str
    git_commit: str | None
    seed: int
    rule: dict[str, float] = Field(default_factory=dict)
    datasets: dict[str, BaselineDataset]


# --------------------------------------------------------------------------- baseline files


def baseline_from_results(results: Sequence[RunResult], suite: str) -> Baseline:
    """A baseline holding each result's per-fold primary-metric scores."""
    import mmbench
    from mmbench._io import git_commit
    from mmbench.evaluation import METRICS

    datasets = {}
    for r in results:
        metric, mean, std = r.primary()
        datasets[r.dataset.name] = BaselineDataset(
            metric=metric,
            higher_is_better=METRICS.get(metric).higher_is_better,
            fold_keys=[f.key for f in r.folds],
            fold_scores=[f.metrics.get(metric, math.nan) for f in r.folds],
            mean=mean,
            std=std,
            fingerprint=r.dataset.fingerprint,
            seed=r.seed,
            n_rows=r.dataset.n_rows,
            pipeline_name=r.pipeline_name,
            pipeline=r.pipeline.model_dump(mode="json"),
        )
    return Baseline(
        suite=suite,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        mmbench_version=mmbench.__version__,
        git_commit=git_commit(),
        seed=results[0].seed if results else 0,
        rule={"min_drop": MIN_DROP, "confidence": CONFIDENCE, "baseline_z": BASELINE_Z},
        datasets=datasets,
    )


def read_baseline(path: Path) -> Baseline:
    """Load and validate a baseline; every problem is an error that names the file."""
    path = Path(path)
    if not path.is_file():
        raise MMBenchError(f"{path}: baseline file not found; create it with --update")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise MMBenchError(f"{path}: cannot read baseline file: {exc}") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version != BASELINE_SCHEMA_VERSION:
        raise MMBenchError(
            f"{path}: baseline schema version {version!r}, this mmbench reads "
            f"{BASELINE_SCHEMA_VERSION}; regenerate it with --update"
        )
    try:
        return Baseline.model_validate(data)
    except ValidationError as exc:
        raise MMBenchError(f"{path}: invalid baseline file: {exc}") from None


def write_baseline(baseline: Baseline, path: Path) -> Path:
    from mmbench._io import write_json_atomic

    write_json_atomic(Path(path), baseline.model_dump(mode="json"))
    return Path(path)


# --------------------------------------------------------------------------- decision


def tolerance(
    diffs: np.ndarray,
    baseline_std: float,
    *,
    min_drop: float = MIN_DROP,
    confidence: float = CONFIDENCE,
    z: float = BASELINE_Z,
) -> float:
    """The largest drop still explained by noise (see the module docstring for the rule)."""
    from scipy import stats

    k = len(diffs)
    has_spread = math.isfinite(baseline_std) and baseline_std > 0
    paired = 0.0
    if k > 1:
        sd = float(np.std(diffs, ddof=1))
        if has_spread:  # beyond this the folds reacted differently: an effect, not noise
            sd = min(sd, math.sqrt(2) * baseline_std)
        paired = float(stats.t.ppf(confidence, k - 1)) * sd / math.sqrt(k)
    spread = z * baseline_std / math.sqrt(k) if k and has_spread else 0.0
    return max(min_drop, paired, spread)


@dataclass
class Verdict:
    """The gate's decision for one dataset."""

    dataset: str
    status: Status
    metric: str = ""
    baseline: tuple[float, float] = (math.nan, math.nan)
    current: tuple[float, float] = (math.nan, math.nan)
    delta: float = math.nan
    """Current mean − baseline mean, in metric units (negative is worse for higher-is-better)."""
    tolerance: float = math.nan
    message: str = ""


@dataclass
class RegressionReport:
    suite: str
    verdicts: list[Verdict]
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.status == "regression"]

    @property
    def errors(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.status == "error"]

    @property
    def ok(self) -> bool:
        return not self.regressions and not self.errors

    @property
    def exit_code(self) -> int:
        return 2 if self.errors else 1 if self.regressions else 0

    def rows(self) -> list[list[str]]:
        return [_cells(v) for v in self.verdicts]

    def to_markdown(self) -> str:
        lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in self.rows()]
        return "\n".join([*lines, "", *self.notes]).rstrip() + "\n"

    def to_rich(self) -> Any:
        from rich.table import Table

        table = Table(title=f"mmbench regress: {self.suite}")
        for col in HEADER:
            table.add_column(col)
        colour = {"regression": "red", "error": "red", "improved": "green", "new": "yellow"}
        for v, row in zip(self.verdicts, self.rows(), strict=True):
            table.add_row(*row, style=colour.get(v.status))
        return table


HEADER = [
    "dataset",
    "metric",
    "baseline mean ± std",
    "current mean ± std",
    "Δ",
    "tolerance",
    "verdict",
]


def _cells(v: Verdict) -> list[str]:
    def pair(p: tuple[float, float]) -> str:
        return "—" if not math.isfinite(p[0]) else f"{p[0]:.4f} ± {p[1]:.4f}"

    delta = "—" if not math.isfinite(v.delta) else f"{v.delta:+.4f}"
    tol = "—" if not math.isfinite(v.tolerance) else f"{v.tolerance:.4f}"
    verdict = v.status.upper() if v.status in ("regression", "error") else v.status
    return [
        v.dataset,
        v.metric,
        pair(v.baseline),
        pair(v.current),
        delta,
        tol,
        f"{verdict}: {v.message}" if v.message else verdict,
    ]


def compare(
    baseline: Baseline,
    results: Sequence[RunResult],
    *,
    errors: dict[str, str] | None = None,
    min_drop: float = MIN_DROP,
    confidence: float = CONFIDENCE,
    z: float = BASELINE_Z,
) -> RegressionReport:
    """Judge each baseline dataset's rerun ``results`` (``errors``: datasets that failed to run)."""
    by_name = {r.dataset.name: r for r in results}
    errors = errors or {}
    verdicts, notes = [], []
    for name, ref in baseline.datasets.items():
        if name not in by_name:
            why = errors.get(name, "no result for this dataset in the rerun")
            verdicts.append(Verdict(name, "error", ref.metric, message=why))
            continue
        verdicts.append(
            judge(name, ref, by_name[name], min_drop=min_drop, confidence=confidence, z=z)
        )
        changed = pipeline_diff(ref.pipeline, by_name[name].pipeline.model_dump(mode="json"))
        if changed:
            notes.append(
                f"note: {name}: pipeline differs from the baseline's: {', '.join(changed)}"
            )
    verdicts += [
        Verdict(n, "error", message=e) for n, e in errors.items() if n not in baseline.datasets
    ]
    for name in sorted(by_name.keys() - baseline.datasets.keys()):
        metric = by_name[name].primary()[0]
        verdicts.append(
            Verdict(name, "new", metric, message="not in the baseline; add it with --update")
        )
    return RegressionReport(baseline.suite, verdicts, notes)


def pipeline_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Flat names of the settings that differ (``fusion``, ``lr``...), to explain a changed score."""

    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    a, b = flat(old), flat(new)
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def judge(
    name: str,
    ref: BaselineDataset,
    result: RunResult,
    *,
    min_drop: float = MIN_DROP,
    confidence: float = CONFIDENCE,
    z: float = BASELINE_Z,
) -> Verdict:
    """Paired fold comparison of one dataset; mismatched data or protocol is an error."""
    current = result.folds
    scores = [f.metrics.get(ref.metric, math.nan) for f in current]
    verdict = Verdict(name, "error", ref.metric, (ref.mean, ref.std))
    stats = mean_std(scores)
    verdict.current = (stats["mean"], stats["std"])
    problem = _mismatch(ref, result)
    if problem:
        verdict.message = problem
        return verdict
    verdict.delta = verdict.current[0] - ref.mean
    sign = 1.0 if ref.higher_is_better else -1.0
    diffs = sign * (np.asarray(scores, dtype=float) - np.asarray(ref.fold_scores, dtype=float))
    verdict.tolerance = tolerance(diffs, ref.std, min_drop=min_drop, confidence=confidence, z=z)
    drop = -float(diffs.mean())
    if drop > verdict.tolerance:
        verdict.status, verdict.message = "regression", f"drop {drop:.4f} > tolerance"
    elif -drop > verdict.tolerance:
        verdict.status, verdict.message = "improved", "refresh the baseline with --update"
    else:
        verdict.status = "pass"
    return verdict


def _mismatch(ref: BaselineDataset, result: RunResult) -> str | None:
    """Why the rerun cannot be compared with the baseline, or None."""
    if result.seed != ref.seed:
        return f"suite seed changed ({ref.seed} -> {result.seed}): folds are not comparable"
    if result.dataset.fingerprint != ref.fingerprint:
        return (
            f"dataset fingerprint changed ({ref.fingerprint} -> {result.dataset.fingerprint}): "
            "the data differ from the baseline's; if intended, refresh it with --update"
        )
    keys = [f.key for f in result.folds]
    if keys != ref.fold_keys:
        return (
            f"folds changed ({ref.fold_keys} -> {keys}): the protocol differs from the baseline's"
        )
    failed = [f"{f.key}: {f.error}" for f in result.folds if f.error]
    if failed:
        return f"{len(failed)} fold(s) failed; first: {failed[0]}"
    scores = [f.metrics.get(ref.metric, math.nan) for f in result.folds]
    if not all(math.isfinite(s) for s in [*scores, *ref.fold_scores]):
        return f"{ref.metric} is undefined (NaN) on some fold"
    return None


# --------------------------------------------------------------------------- rerun


def rerun(
    suite: Suite,
    results_dir: Path,
    *,
    datasets: list[str] | None = None,
    table_transform: TableTransform | None = None,
    cache: FeatureCache | None = None,
    reporter: Reporter | None = None,
) -> tuple[list[RunResult], dict[str, str]]:
    """Cross-validate each dataset's fixed pipeline once; returns results and per-dataset errors.

    Result files go to ``results_dir`` (pipeline name ``regress``, so they never overwrite a
    real run's files). A dataset that fails is recorded and the others still run.
    """
    from mmbench.results import ResultLayout

    layout = ResultLayout(results_dir, suite.name)
    specs = [suite.dataset(n) for n in datasets] if datasets else suite.datasets
    results, errors = [], {}
    for spec in specs:
        try:
            result = evaluate_dataset(suite, spec, table_transform=table_transform, cache=cache)
        except MMBenchError as exc:
            errors[spec.name] = str(exc)
            if reporter is not None:
                reporter.error(f"{spec.name}: {exc}")
            continue
        path = layout.write(result)
        if reporter is not None:
            reporter.info(f"{spec.name}: {result.primary()[0]} {result.primary()[1]:.4f}; {path}")
        results.append(result)
    return results, errors


def evaluate_dataset(
    suite: Suite,
    spec: DatasetSpec,
    *,
    table_transform: TableTransform | None = None,
    cache: FeatureCache | None = None,
) -> RunResult:
    """The fixed configuration of one dataset as a :class:`RunResult`.

    ``table_transform`` is applied to the loaded table before evaluation only: the result still
    describes (and fingerprints) the data as loaded, as if the transform were a bug in the
    pipeline. The transformed table keeps its own fingerprint, so cached features of the real
    data are never served for it.
    """
    from mmbench.data import load_table
    from mmbench.evaluation import cv_folds
    from mmbench.jobs import build_result, evaluate_fixed

    start = time.perf_counter()
    table = load_table(spec, suite.root, seed=suite.seed)
    used = table_transform(table) if table_transform is not None else table
    folds = cv_folds(table.labels, spec.protocol.folds, spec.protocol.repeats, suite.seed)
    cv = evaluate_fixed(spec, used, folds, cache=cache)
    wall = time.perf_counter() - start
    return build_result(suite, spec, table, cv, PIPELINE_NAME, wall=wall)


def regress(
    suite: Suite,
    baseline_path: Path,
    *,
    update: bool = False,
    results_dir: Path | None = None,
    datasets: list[str] | None = None,
    table_transform: TableTransform | None = None,
    cache: FeatureCache | None = None,
    reporter: Reporter | None = None,
) -> RegressionReport:
    """Rerun ``suite`` and compare it with the baseline; with ``update``, (re)write the baseline.

    Without ``update`` a missing or unreadable baseline is an error before anything runs. With
    ``update`` the old baseline, when readable, is still compared (so the diff shows what the
    refresh changes), and a rerun with failed datasets refuses to write a new one.
    """
    baseline, notes = _existing_baseline(Path(baseline_path), suite.name, update)
    with tempfile.TemporaryDirectory(prefix="mmbench-regress-") as tmp:
        out = Path(results_dir) if results_dir else Path(tmp)
        results, errors = rerun(
            suite,
            out,
            datasets=datasets,
            table_transform=table_transform,
            cache=cache,
            reporter=reporter,
        )
    report = (
        compare(baseline, results, errors=errors)
        if baseline is not None
        else unjudged(suite.name, results, errors)
    )
    report.notes += notes
    if update:
        if errors:
            raise MMBenchError(f"not updating {baseline_path}: {len(errors)} dataset(s) failed")
        fresh = baseline_from_results(results, suite.name)
        if baseline is not None and datasets:  # a partial rerun refreshes only its datasets
            fresh.datasets = {**baseline.datasets, **fresh.datasets}
        write_baseline(fresh, baseline_path)
        report.notes.append(f"wrote baseline {baseline_path}")
    return report


def _existing_baseline(path: Path, suite: str, update: bool) -> tuple[Baseline | None, list[str]]:
    """The baseline to compare with; with ``update`` a missing or unreadable one is only a note."""
    if update and not path.exists():
        return None, [f"no baseline at {path} yet"]
    try:
        baseline = read_baseline(path)
    except MMBenchError as exc:
        if not update:
            raise
        return None, [f"replacing unreadable baseline: {exc}"]
    if baseline.suite != suite:
        raise MMBenchError(f"{path}: baseline is for suite {baseline.suite!r}, not {suite!r}")
    return baseline, []


def unjudged(suite: str, results: Sequence[RunResult], errors: dict[str, str]) -> RegressionReport:
    """The report of a rerun without a baseline to compare with (first ``--update``)."""
    verdicts = [Verdict(name, "error", message=why) for name, why in errors.items()]
    for r in results:
        metric, mean, std = r.primary()
        verdicts.append(Verdict(r.dataset.name, "new", metric, current=(mean, std)))
    return RegressionReport(suite, verdicts)

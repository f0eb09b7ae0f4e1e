"""CI regression gate: rerun a fixed configuration and compare it *row by row* with a baseline.

The gate must be neither flaky nor blind. The baseline file stores, for every gated dataset, the
out-of-fold predictions of its fixed pipeline; the rerun uses the same folds and seeds (both
derive from the suite seed), so every row's prediction is paired with its baseline prediction.
The decision rule, per dataset, with the suite's :class:`~mmbench.suite.RegressRule`:

1. ``Δ = score(rerun) − score(baseline)`` where the score is the primary metric averaged over
   folds, both computed on the same rows (the result file's number).
2. A paired bootstrap (:func:`mmbench.gate.paired.paired_bootstrap`; 2,000 resamples of rows, drawn
   within each fold, both prediction sets scored on each resample) gives a 95% interval of
   ``Δ`` and one-sided p-values for "worse" (``p_drop``) and "better" (``p_gain``). A fold
   whose metric is undefined (AUC where a resample drew none of a class's rows) is left out of
   both sides' means, and a resample with no such fold defined is dropped; the Δ cell counts
   both, so a NaN is never silently a drop or a gain.
3. Holm's step-down correction over the suite's datasets, for drops and for gains separately,
   keeps the chance that *any* unchanged dataset fails at ``alpha`` (0.05). One-sided, because
   the gate asks "did anything get worse?"; improvements never fail CI.
4. The dataset **fails** when its Holm-adjusted p ≤ ``alpha`` *and* its drop is at least
   ``min_effect`` (default 0.01, one point of macro-F1); it is *improved* under the mirror
   condition (a hint to refresh the baseline with ``--update``); otherwise it passes.

Why this rule, with numbers measured on ``suites/ci.yaml`` (``benchmarks/regress_power.py``,
``benchmarks/README.md`` §7): ten unchanged reruns with 1, 2 or default threads, one or two
competing CPU hogs or a cold feature cache reproduced the baseline's predictions (Δ = 0 in 19
of 20 dataset reruns; 91 of 3,000 rows moved once, Δ +0.0006): 0 false alarms. Planted changes
of −1.7 to −2.4 points moved 350–420 rows and had Holm p 0.002–0.033: all caught; a −1.4 point
one (p 0.074) was not. The old fold-level rule needed a drop larger than the spread of five
fold means (2.7–4.9 points) and passed planted 2-point drops. ``min_effect`` keeps a real but
negligible change (a few rows on a large suite) from failing CI; the test keeps a large but
noisy change (many rows moving both ways on few rows) from it.

Fit time is gated too, beside the score: the rerun's fit seconds divided by the seconds of a
fixed reference computation timed in the same process (:func:`mmbench.gate.speed.reference_seconds`)
must not exceed the baseline's ratio by more than ``time_tolerance`` (×1.5), so a slower or
busier CI machine, which slows both, does not fail it while a 2× slower head does.

The baseline records the versions of the packages that shape scores
(:data:`mmbench.results.SCORE_PACKAGES`: numpy, scikit-learn, xgboost, torch, ...). A rerun
under other versions is an **error** that names them, before anything runs: a new xgboost
moves predictions for reasons that have nothing to do with the change under test. Install the
CI constraints (``.ci/constraints.txt``) to match, or compare anyway with
``allow_package_mismatch`` (``--allow-package-mismatch``), which turns the error into a note.
The fingerprint itself is machine-independent (:meth:`MultiModalTable.compute_fingerprint`),
so the gate holds on any CPU.

A changed dataset fingerprint (the data changed), different folds (the protocol changed), a
different metric, a failed fold or a dataset that could not be rerun is an **error**, never a
silent comparison; so is a baseline written by an older mmbench (rerun with ``--update``).
Exit status: 0 pass, 1 regression (score or time), 2 error.

The rerun (:mod:`.rerun`) deliberately bypasses search: each dataset's suite pipeline (or the
default pipeline) is cross-validated once, without tracking, with result files in a temporary
directory. It calls the same pieces as :func:`mmbench.run.runner.run_dataset` (``load_table``,
``Protocol.folds_for``, :func:`~mmbench.run.fixed.evaluate_fixed` and
:func:`~mmbench.results.build.build_result`) so that tests and benchmarks can inject a
``table_transform`` (e.g. shuffle a modality) or a pipeline change through exactly the code path
CI runs.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmbench.errors import MMBenchError
from mmbench.gate.baseline import (
    Baseline,
    BaselineDataset,
    read_baseline,
    rows_of,
    rows_record,
    write_baseline,
)
from mmbench.gate.paired import holm, paired_bootstrap
from mmbench.gate.rerun import Rerun, TableTransform, rerun
from mmbench.gate.verdict import RegressionReport, Verdict
from mmbench.results import SCORE_PACKAGES, package_versions

if TYPE_CHECKING:
    from mmbench.pipeline.cache import FeatureCache
    from mmbench.progress import Reporter
    from mmbench.results import RunResult
    from mmbench.suite import RegressRule, Suite

__all__ = ["baseline_from_reruns", "compare", "decide", "regress"]


def baseline_from_reruns(reruns: Sequence[Rerun], suite: str, rule: RegressRule) -> Baseline:
    """A baseline holding each rerun's fold scores, row-level predictions and fit timing."""
    import mmbench
    from mmbench._io import git_commit
    from mmbench.evaluation import METRICS

    datasets = {}
    for run in reruns:
        r = run.result
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
            rows=rows_record(run.rows),
            fit_seconds=run.fit_seconds,
            reference_seconds=run.reference_seconds,
            time_ratio=run.time_ratio,
        )
    return Baseline(
        suite=suite,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        mmbench_version=mmbench.__version__,
        git_commit=git_commit(),
        seed=reruns[0].result.seed if reruns else 0,
        rule=rule.model_dump(),
        datasets=datasets,
        packages=package_versions(SCORE_PACKAGES),
    )


def package_mismatch(recorded: dict[str, str], installed: dict[str, str]) -> list[str]:
    """``name installed (baseline recorded)`` for each score-shaping package that differs."""
    return [
        f"{name} {installed.get(name, 'not installed')} (baseline {version})"
        for name, version in sorted(recorded.items())
        if installed.get(name) != version
    ]


# --------------------------------------------------------------------------- decision


def compare(
    baseline: Baseline,
    reruns: Sequence[Rerun],
    rule: RegressRule,
    *,
    errors: dict[str, str] | None = None,
) -> RegressionReport:
    """Judge each baseline dataset's rerun (``errors``: datasets that failed to run)."""
    by_name = {r.result.dataset.name: r for r in reruns}
    errors = errors or {}
    verdicts, notes = [], []
    for name, ref in baseline.datasets.items():
        if name not in by_name:
            why = errors.get(name, "no result for this dataset in the rerun")
            verdicts.append(Verdict(name, "error", ref.metric, ref.mean, message=why))
            continue
        verdicts.append(judge(name, ref, by_name[name], rule))
        changed = pipeline_diff(ref.pipeline, by_name[name].result.pipeline.model_dump(mode="json"))
        if changed:
            notes.append(
                f"note: {name}: pipeline differs from the baseline's: {', '.join(changed)}"
            )
    decide(verdicts, rule)
    verdicts += [
        Verdict(n, "error", message=e) for n, e in errors.items() if n not in baseline.datasets
    ]
    for name in sorted(by_name.keys() - baseline.datasets.keys()):
        metric, mean, _ = by_name[name].result.primary()
        verdicts.append(
            Verdict(
                name,
                "new",
                metric,
                current=mean,
                message="not in the baseline; add it with --update",
            )
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


def judge(name: str, ref: BaselineDataset, run: Rerun, rule: RegressRule) -> Verdict:
    """The paired test and time ratio of one dataset; mismatched data or protocol is an error.

    The score status is left ``pass`` here: :func:`decide` settles it once every dataset's
    p-value is known (Holm's correction needs them all).
    """
    current = run.result.primary()[1]
    verdict = Verdict(name, "error", ref.metric, ref.mean, current)
    problem = _mismatch(ref, run.result)
    if problem:
        verdict.message = problem
        return verdict
    try:
        verdict.test = paired_bootstrap(
            ref.metric, rows_of(ref.rows), run.rows, resamples=rule.resamples, seed=ref.seed
        )
    except ValueError as exc:
        verdict.message = f"cannot pair the rerun's rows with the baseline's: {exc}"
        return verdict
    if not math.isfinite(verdict.test.delta):
        verdict.message = f"{ref.metric} is undefined in every fold: nothing to compare"
        return verdict
    verdict.status = "pass"
    verdict.time_growth = run.time_ratio / ref.time_ratio
    verdict.time_status = (
        "slower"
        if verdict.time_growth > rule.time_tolerance
        else "faster"
        if verdict.time_growth < 1 / rule.time_tolerance
        else "ok"
    )
    return verdict


def decide(verdicts: list[Verdict], rule: RegressRule) -> None:
    """Holm-adjust the one-sided p-values of the compared datasets, then apply size.

    Drops and gains are two one-sided families, each Holm-adjusted over the datasets: the
    gate's question is "did any dataset get worse?", and a two-sided test would spend half of
    ``alpha`` on improvements, which never fail CI.
    """
    tested = [v for v in verdicts if v.test is not None and v.status == "pass"]
    drops = holm([v.test.p_drop for v in tested if v.test is not None])
    gains = holm([v.test.p_gain for v in tested if v.test is not None])
    for v, p_drop, p_gain in zip(tested, drops, gains, strict=True):
        assert v.test is not None
        gain = v.test.delta if _higher_is_better(v.metric) else -v.test.delta
        v.p_holm = p_gain if gain > 0 else p_drop
        if p_drop <= rule.alpha and -gain >= rule.min_effect:
            v.status, v.message = "regression", f"drop {-gain:.4f} >= {rule.min_effect}"
        elif p_gain <= rule.alpha and gain >= rule.min_effect:
            v.status, v.message = "improved", "refresh the baseline with --update"
        if v.time_status == "slower":
            v.message = "; ".join(filter(None, [v.message, "fit time grew"]))


def _higher_is_better(metric: str) -> bool:
    from mmbench.evaluation import METRICS

    return METRICS.get(metric).higher_is_better


def _mismatch(ref: BaselineDataset, result: RunResult) -> str | None:
    """Why the rerun cannot be compared with the baseline, or None."""
    if result.seed != ref.seed:
        return f"suite seed changed ({ref.seed} -> {result.seed}): folds are not comparable"
    if result.dataset.fingerprint != ref.fingerprint:
        return (
            f"dataset fingerprint changed ({ref.fingerprint} -> {result.dataset.fingerprint}): "
            "the data differ from the baseline's; if intended, refresh it with --update"
        )
    if result.primary()[0] != ref.metric:
        return f"primary metric changed ({ref.metric} -> {result.primary()[0]})"
    keys = [f.key for f in result.folds]
    if keys != ref.fold_keys:
        return (
            f"folds changed ({ref.fold_keys} -> {keys}): the protocol differs from the baseline's"
        )
    failed = [f"{f.key}: {f.error}" for f in result.folds if f.error]
    if failed:
        return f"{len(failed)} fold(s) failed; first: {failed[0]}"
    return None


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
    allow_package_mismatch: bool = False,
) -> RegressionReport:
    """Rerun ``suite`` and compare it with the baseline; with ``update``, (re)write the baseline.

    Without ``update`` a missing or unreadable baseline is an error before anything runs, and
    so are other versions of the score-shaping packages than the baseline's (unless
    ``allow_package_mismatch``). With ``update`` the old baseline, when readable, is still
    compared (so the diff shows what the refresh changes), and a rerun with failed datasets
    refuses to write a new one.
    """
    baseline, notes = _existing_baseline(Path(baseline_path), suite.name, update)
    if baseline is not None:
        differ = package_mismatch(baseline.packages, package_versions(SCORE_PACKAGES))
        if differ and not (update or allow_package_mismatch):
            return mismatched(baseline, differ)
        if differ:
            notes.append(f"note: package versions differ from the baseline's: {'; '.join(differ)}")
    with tempfile.TemporaryDirectory(prefix="mmbench-regress-") as tmp:
        out = Path(results_dir) if results_dir else Path(tmp)
        reruns, errors = rerun(
            suite,
            out,
            datasets=datasets,
            table_transform=table_transform,
            cache=cache,
            reporter=reporter,
        )
    report = (
        compare(baseline, reruns, suite.regress, errors=errors)
        if baseline is not None
        else unjudged(suite.name, reruns, errors)
    )
    report.notes += notes
    if update:
        if errors:
            raise MMBenchError(f"not updating {baseline_path}: {len(errors)} dataset(s) failed")
        fresh = baseline_from_reruns(reruns, suite.name, suite.regress)
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


def mismatched(baseline: Baseline, differ: list[str]) -> RegressionReport:
    """Every dataset an error: the installed packages are not the ones the baseline was made with."""
    why = (
        f"package versions differ from the baseline's: {'; '.join(differ)}. Scores are only "
        "comparable under the same versions: install the pinned CI environment "
        "(pip install -c .ci/constraints.txt -e '.[dev]'), refresh the baseline with --update, "
        "or compare anyway with --allow-package-mismatch"
    )
    verdicts = [
        Verdict(name, "error", d.metric, d.mean, message="not rerun: package versions differ")
        for name, d in baseline.datasets.items()
    ]
    return RegressionReport(baseline.suite, verdicts, notes=[f"error: {why}"])


def unjudged(suite: str, reruns: Sequence[Rerun], errors: dict[str, str]) -> RegressionReport:
    """The report of a rerun without a baseline to compare with (first ``--update``)."""
    verdicts = [Verdict(name, "error", message=why) for name, why in errors.items()]
    for run in reruns:
        metric, mean, _ = run.result.primary()
        verdicts.append(Verdict(run.result.dataset.name, "new", metric, current=mean))
    return RegressionReport(suite, verdicts)

"""Modality ablations: what each modality contributes, and how a model copes without it.

A benchmark score says how good a pipeline is, not *why*. Three complementary views answer that:

- **Subsets** — the same pipeline cross-validated on the full set of modalities, without each one
  (leave-one-out), on each one alone and, when there are few modalities, on every non-empty
  subset. All runs share the folds and seeds, and the feature cache serves every subset from the
  full run's features, so the only thing that changes between rows is which modalities the head
  sees.
- **Shapley values** — each modality's average marginal contribution over all orders in which
  modalities could be added, with the empty set scored at the chance level. Unlike leave-one-out
  drops, they split the credit for redundant modalities fairly and sum to ``full − chance``.
  Because the folds are shared, subset scores of one fold form a complete game; Shapley values
  are computed per fold and reported as mean ± std across folds, which shows whether a ranking
  is more than fold noise.
- **Robustness** — the *full* model with one modality removed at test time only (no retraining):
  how badly a deployed model degrades when an input goes missing.

Values are in the units of the primary metric: for a lower-is-better metric (log-loss) a helpful
modality has a *negative* Shapley value; :meth:`AblationReport.ranking` and the "drop" columns
respect the direction so that positive always means "helps" / "hurts when removed".
"""

from __future__ import annotations

import contextlib
import itertools
import math
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mmbench._io import write_json_atomic
from mmbench.budget import NO_DEADLINE, Deadline, DeadlineReached
from mmbench.config import PipelineSpec
from mmbench.evaluation import METRICS, Fold, chance_level, mean_std
from mmbench.results import AblationKind, AblationReport, AblationRow

if TYPE_CHECKING:
    import pandas as pd

    from mmbench.data.table import MultiModalTable
    from mmbench.pipeline import CVResult
    from mmbench.pipeline.cache import FeatureCache

__all__ = ["AblationReport", "AblationRow", "run_ablation", "write_report"]
ProgressFn = Callable[[str, int, int], None]
"""Called after each subset run with (subset label, runs done, runs planned)."""


# --------------------------------------------------------------------------- Shapley values


def shapley_values(
    players: Sequence[str], value: Callable[[frozenset[str]], float]
) -> dict[str, float]:
    """Exact Shapley value of every player of the game ``value`` (called on every coalition).

    ``phi_i = sum over S ⊆ N∖{i} of |S|! (n−|S|−1)! / n! · (v(S ∪ {i}) − v(S))``. Exponential in
    the number of players, which is fine for at most a handful of modalities.
    """
    n = len(players)
    weight = [math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)]
    out: dict[str, float] = {}
    for p in players:
        others = [q for q in players if q != p]
        total = 0.0
        for size in range(n):
            for coalition in itertools.combinations(others, size):
                s = frozenset(coalition)
                total += weight[size] * (value(s | {p}) - value(s))
        out[p] = total
    return out


def fold_shapley(
    modalities: Sequence[str],
    scores: Mapping[frozenset[str], Sequence[float]],
    chance: Sequence[float],
) -> dict[str, list[float]]:
    """Shapley values per fold from per-fold subset scores; ``v(∅)`` is the fold's chance level.

    ``scores[subset][i]`` is fold ``i``'s score of that subset. A fold where any subset failed
    (NaN) gives NaN values for that fold, which the summary then ignores.
    """
    per_fold: dict[str, list[float]] = {m: [] for m in modalities}
    for i, empty in enumerate(chance):

        def value(s: frozenset[str], i: int = i, empty: float = empty) -> float:
            return empty if not s else float(scores[s][i])

        for m, v in shapley_values(list(modalities), value).items():
            per_fold[m].append(v)
    return per_fold


# --------------------------------------------------------------------------- report files


def report_frame(report: AblationReport) -> pd.DataFrame:
    """One row per subset: kind, primary mean/std, every other metric's mean and std."""
    import pandas as pd

    records = []
    names = sorted({k for r in report.rows for k in r.metrics})
    for r in report.rows:
        rec: dict[str, Any] = {"modalities": r.label, "kind": r.kind, "n": len(r.modalities)}
        for name in [report.primary, *(n for n in names if n != report.primary)]:
            stats = r.metrics.get(name, {})  # empty when every fold of the row failed
            rec[f"{name}_mean"] = stats.get("mean", math.nan)
            rec[f"{name}_std"] = stats.get("std", math.nan)
        rec["failed_folds"] = len(r.failures)
        rec["seconds"] = round(r.seconds, 3)
        records.append(rec)
    return pd.DataFrame.from_records(records)


def write_report(report: AblationReport, directory: Path) -> dict[str, Path]:
    """``ablation.csv``, ``.json``, ``.md`` and ``.png`` under ``directory``; returns the paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {ext: directory / f"ablation.{ext}" for ext in ("csv", "json", "md", "png")}
    report_frame(report).to_csv(paths["csv"], index=False)
    write_json_atomic(paths["json"], report.model_dump(mode="json"))
    paths["md"].write_text(render_markdown(report))
    plot_report(report, paths["png"])
    return paths


# --------------------------------------------------------------------------- running


def run_ablation(
    table: MultiModalTable,
    spec: PipelineSpec,
    folds: list[Fold],
    *,
    cache: FeatureCache | None = None,
    primary: str = "f1_macro",
    max_subset_modalities: int = 5,
    progress: ProgressFn | None = None,
    deadline: Deadline = NO_DEADLINE,
    pipeline_name: str | None = None,
) -> AblationReport:
    """Cross-validate ``spec`` on subsets of the table's modalities and attribute the score.

    Evaluates the full set (also scored with each modality missing at test time), each
    leave-one-out and single-modality subset and, with at most ``max_subset_modalities``
    modalities, every non-empty subset, from which per-fold Shapley values follow. Every run uses
    ``folds`` as given, so pass the folds of the main run to make the full row reproduce it.
    Pass the run's feature cache so that subsets reuse the features already computed instead of
    re-encoding; without one (or with a disabled one) a temporary cache lives for this call.

    ``deadline`` bounds the ablation: subsets it cuts (or declines, when rows already run say
    it would not fit in the time left, :func:`expected_seconds`) are listed in
    :attr:`AblationReport.skipped`, and
    Shapley values then need every subset; the full set not fitting is an error.
    """
    from mmbench.pipeline.cache import FeatureCache

    metric = METRICS.get(primary)
    modalities: list[str] = [m for m in table.modalities if m in spec.encoders]
    plan = plan_subsets(modalities, max_subset_modalities)
    with contextlib.ExitStack() as stack:
        if cache is None or not cache.enabled:
            cache = FeatureCache(stack.enter_context(tempfile.TemporaryDirectory()))
        rows, full_cv, skipped = _run_plan(table, spec, folds, plan, cache, progress, deadline)
    chance = [chance_level(primary, table.labels[f.valid], table.n_classes) for f in folds]
    report = build_report(table.name, spec, metric, modalities, folds, chance, rows, full_cv)
    report.skipped, report.pipeline_name = skipped, pipeline_name
    return report


def _run_plan(
    table: MultiModalTable,
    spec: PipelineSpec,
    folds: list[Fold],
    plan: list[tuple[tuple[str, ...], AblationKind]],
    cache: FeatureCache,
    progress: ProgressFn | None,
    deadline: Deadline = NO_DEADLINE,
) -> tuple[list[AblationRow], CVResult, list[str]]:
    """Rows of the subsets run in plan order, the full set's CV, and the labels of the subsets
    the deadline cut or declined."""
    from mmbench.pipeline import evaluate_pipeline

    rows: list[AblationRow] = []
    walls: list[float] = []  # each row's wall seconds: what the next one is expected to take
    skipped: list[str] = []
    full_cv: CVResult | None = None
    for done, (subset, kind) in enumerate(plan, start=1):
        cv = None
        if deadline.remaining() > expected_seconds(rows, walls, len(subset)):
            started = time.perf_counter()
            try:
                cv = evaluate_pipeline(
                    table,
                    spec,
                    folds,
                    modalities=list(subset),
                    cache=cache,
                    test_time_missing=kind == "full",
                    deadline=deadline,
                )
            except DeadlineReached:
                cv = None
        if cv is None:
            if kind == "full":
                raise DeadlineReached("the time budget ran out before the full set was scored")
            skipped.append("+".join(subset))
        else:
            full_cv = cv if kind == "full" else full_cv
            rows.append(row_from_cv(subset, kind, cv))
            walls.append(time.perf_counter() - started)
        if progress is not None:
            progress("+".join(subset), done, len(plan))
    assert full_cv is not None, "the plan always starts with the full set"
    return rows, full_cv, skipped


def expected_seconds(rows: Sequence[AblationRow], walls: Sequence[float], size: int) -> float:
    """Wall seconds a subset of ``size`` modalities should take, from the rows already run
    (``walls[i]`` is ``rows[i]``'s): the slowest of that size (cautious, like
    :class:`~mmbench.budget.CostModel`), else the quickest larger one other than the full set
    (fewer modalities cost no more); 0 before any row."""
    same = [w for r, w in zip(rows, walls, strict=True) if len(r.modalities) == size]
    if same:
        return max(same)
    larger = [
        w for r, w in zip(rows, walls, strict=True) if len(r.modalities) > size and r.kind != "full"
    ]
    return min(larger, default=0.0)


def plan_subsets(
    modalities: Sequence[str], max_subset_modalities: int
) -> list[tuple[tuple[str, ...], AblationKind]]:
    """(subset, kind) pairs to evaluate, full set first so that it fills the feature cache.

    Then each leave-one-out and single-modality subset, then (few modalities) the other subsets,
    largest first: a deadline that cuts the plan short keeps the most telling rows. Subsets keep
    the table's canonical modality order, so the full row is exactly the normal run.
    """
    n = len(modalities)
    loo = [tuple(m for m in modalities if m != left) for left in modalities] if n > 2 else []
    first = [tuple(modalities), *loo, *((m,) for m in modalities)]
    rest = []
    if n <= max_subset_modalities:
        rest = [c for size in range(n - 2, 1, -1) for c in itertools.combinations(modalities, size)]
    subsets = list(dict.fromkeys([*first, *rest]))
    return [(s, subset_kind(s, n)) for s in subsets]


def subset_kind(subset: Sequence[str], n_modalities: int) -> AblationKind:
    if len(subset) == n_modalities:
        return "full"
    if len(subset) == 1:
        return "single"
    return "leave-one-out" if len(subset) == n_modalities - 1 else "subset"


def row_from_cv(subset: tuple[str, ...], kind: AblationKind, cv: CVResult) -> AblationRow:
    return AblationRow(
        modalities=subset,
        kind=kind,
        metrics=cv.summary,
        folds=[dict(f.metrics) if f.ok else {} for f in cv.folds],
        failures=cv.failures,
        seconds=float(cv.seconds.get("total", 0.0)),
        cache={k: float(v) for k, v in cv.cache.items()},
    )


def build_report(
    dataset: str,
    spec: PipelineSpec,
    metric: Any,
    modalities: list[str],
    folds: list[Fold],
    chance: list[float],
    rows: list[AblationRow],
    full_cv: CVResult,
) -> AblationReport:
    """Attribute the subset scores: Shapley (all subsets run), leave-one-out drops, robustness."""
    by_set = {frozenset(r.modalities): r.fold_scores(metric.name) for r in rows}
    n_subsets = 2 ** len(modalities) - 1
    shapley, per_fold = None, None
    if len(by_set) == n_subsets:
        per_fold = fold_shapley(modalities, by_set, chance)
        shapley = {m: mean_std(v) for m, v in per_fold.items()}
    sign = 1.0 if metric.higher_is_better else -1.0
    full = np.asarray(by_set[frozenset(modalities)], dtype=float)
    leave_one_out = {}
    if len(modalities) > 1:
        for m in modalities:
            left_out = by_set.get(frozenset(modalities) - {m})
            if left_out is not None:  # None: cut by the deadline
                leave_one_out[m] = mean_std(sign * (full - np.asarray(left_out, dtype=float)))
    return AblationReport(
        dataset=dataset,
        primary=metric.name,
        higher_is_better=metric.higher_is_better,
        modalities=list(modalities),
        fold_keys=[f.key for f in folds],
        chance=chance,
        rows=rows,
        shapley=shapley,
        shapley_folds=per_fold,
        leave_one_out=leave_one_out,
        robustness=robustness(full_cv, metric.name, sign),
        pipeline=spec,
    )


def robustness(full_cv: CVResult, primary: str, sign: float) -> dict[str, dict[str, float]]:
    """Per removed modality: the primary score at test time without it, and the paired drop."""
    out: dict[str, dict[str, float]] = {}
    for m in full_cv.modalities if len(full_cv.modalities) > 1 else []:
        scores, drops = [], []
        for f in full_cv.folds:
            if not f.ok or m not in f.missing_metrics:
                continue
            value = f.missing_metrics[m].get(primary, math.nan)
            scores.append(value)
            drops.append(sign * (f.metrics.get(primary, math.nan) - value))
        s, d = mean_std(scores), mean_std(drops)
        out[m] = {"mean": s["mean"], "std": s["std"], "drop": d["mean"], "drop_std": d["std"]}
    return out


# --------------------------------------------------------------------------- rendering


def _fmt(stats: Mapping[str, float] | None, key: str = "mean", spread: str = "std") -> str:
    if not stats or not math.isfinite(stats.get(key, math.nan)):
        return "—"
    return f"{stats[key]:+.3f} ± {stats.get(spread, math.nan):.3f}"


def render_markdown(report: AblationReport) -> str:
    """Human-readable report: subset table, attribution table, how to read them."""
    label = METRICS.get(report.primary).label
    direction = "higher" if report.higher_is_better else "lower"
    from mmbench.results.identity import describe

    of = f" — pipeline {report.pipeline_name}" if report.pipeline_name else ""
    lines = [
        f"# Modality ablation: {report.dataset}{of}",
        "",
        f"Ablated pipeline: {describe(report.pipeline)}",
        "",
        f"Primary metric: {label} ({direction} is better), {len(report.fold_keys)} shared folds; "
        f"chance level {np.mean(report.chance):.3f}.",
        "",
        f"| modalities | kind | {label} mean ± std | failed folds |",
        "|---|---|---|---|",
    ]
    for r in report.rows:
        stats = r.metrics.get(report.primary, {})
        mean, std = stats.get("mean", math.nan), stats.get("std", math.nan)
        lines.append(f"| {r.label} | {r.kind} | {mean:.3f} ± {std:.3f} | {len(r.failures)} |")
    lines += [
        "",
        "| modality | Shapley value | leave-one-out drop | drop when missing at test time |",
        "|---|---|---|---|",
    ]
    for m in report.ranking() or report.modalities:
        shap = report.shapley.get(m) if report.shapley else None
        rob = report.robustness.get(m)
        lines.append(
            f"| {m} | {_fmt(shap)} | {_fmt(report.leave_one_out.get(m))} "
            f"| {_fmt(rob, 'drop', 'drop_std')} |"
        )
    lines += [
        "",
        "Shapley values are per-fold averages of marginal contributions over all subsets "
        "(empty set = chance), mean ± std across folds; they sum to full − chance. Drops are "
        "positive when removing the modality makes the score worse.",
    ]
    if report.skipped:
        lines.append(
            f"Not run within the job's time budget: {', '.join(report.skipped)}"
            + (" (so no Shapley values)." if report.shapley is None else ".")
        )
    elif report.shapley is None:
        lines.append("Shapley values were skipped: too many modalities to run every subset.")
    return "\n".join(lines) + "\n"


def plot_report(report: AblationReport, path: Path) -> Path:
    """Bar chart: Shapley value (or leave-one-out drop) and test-time-missing drop per modality."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    label = METRICS.get(report.primary).label
    mods = report.modalities
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    FigureCanvasAgg(fig)  # Agg canvas without touching pyplot's global backend
    left, right = fig.subplots(1, 2)
    if report.shapley is not None:
        values = [report.shapley[m] for m in mods]
        left.set_title(f"Shapley value ({label})")
    else:
        values = [report.leave_one_out.get(m, {}) for m in mods]
        left.set_title(f"leave-one-out drop ({label})")
    _bars(left, mods, values, "mean", "std", "tab:blue")
    _bars(right, mods, [report.robustness.get(m, {}) for m in mods], "drop", "drop_std", "tab:red")
    right.set_title(f"drop when missing at test time ({label})")
    of = f" of {report.pipeline_name}" if report.pipeline_name else ""
    fig.suptitle(f"{report.dataset}: modality ablation{of} ({len(report.fold_keys)} folds)")
    fig.savefig(path, dpi=120)
    return path


def _bars(
    ax: Any, names: list[str], stats: Sequence[Mapping[str, float]], key: str, err: str, color: str
) -> None:
    heights = [s.get(key, math.nan) for s in stats]
    errors = [s.get(err, 0.0) for s in stats]
    ax.bar(names, np.nan_to_num(heights), yerr=np.nan_to_num(errors), color=color, capsize=4)
    ax.axhline(0.0, color="black", linewidth=0.8)

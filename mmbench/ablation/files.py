"""An ablation's files: ``ablation.csv``, ``.json``, ``.md`` (:func:`render_markdown`) and
``.png`` (:func:`plot_report`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mmbench._io import write_json_atomic
from mmbench.evaluation import METRICS
from mmbench.results import AblationReport

if TYPE_CHECKING:
    import pandas as pd


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

"""Modality ablations in MLflow: one nested parent run per ablated pipeline under the job's run,
``<dataset>/ablation of <pipeline>``, with a child run per subset and the report files as its
artifacts, so the ablation is one collapsible row beside the trials instead of many."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmbench.results import AblationReport
from mmbench.tracking.client import Tracker, cv_metrics, fold_steps


def track_ablation(
    tracker: Tracker,
    parent_run_id: str,
    report: AblationReport,
    tags: Mapping[str, Any],
    files: Mapping[str, Path],
) -> dict[str, str]:
    """A nested run ``<dataset>/ablation of <pipeline>`` under ``parent_run_id``, one child run
    per evaluated subset under it, and ``files`` as its artifacts.

    Children carry ``mmbench.kind=ablation`` and ``mmbench.ablation.modalities`` so the MLflow UI
    can filter and compare them; the nested parent (``mmbench.kind=ablations``) gets Shapley
    values and drops as metrics. ``files`` are the report files already written beside the
    result (``ablation.csv``, ``.json``...), so MLflow holds exactly what the results folder
    holds. Returns subset label -> run id, and the nested parent's id under ``"parent"``.
    """
    from mmbench.results.identity import describe

    pipeline = report.pipeline_name or "pipeline"
    group_tags = {
        **tags,
        "mmbench.kind": "ablations",
        "mmbench.ablation.pipeline": pipeline,
        "mlflow.note.content": f"Modality ablation of **{pipeline}**: {describe(report.pipeline)}"
        + (
            f"\n\nNot run within the time budget: {', '.join(report.skipped)}"
            if report.skipped
            else ""
        ),
    }
    group = tracker.start_run(f"{report.dataset}/ablation of {pipeline}", group_tags, parent_run_id)
    run_ids: dict[str, str] = {"parent": group}
    for r in report.rows:
        run_tags = {
            **tags,
            "mmbench.kind": "ablation",
            "mmbench.ablation.modalities": ",".join(r.modalities),
            "mmbench.ablation.kind": r.kind,
        }
        name = f"{report.dataset}/ablation: {r.label}"
        run_id = tracker.start_run(name, run_tags, parent_id=group)
        tracker.log(
            run_id,
            params={
                "ablation.modalities": r.label,
                "ablation.kind": r.kind,
                "ablation.n_modalities": len(r.modalities),
            },
            metrics=cv_metrics(r.metrics),
            steps=fold_steps([f for f in r.folds if f]),
        )
        tracker.end_run(run_id, "FAILED" if r.failures else "FINISHED")
        run_ids[r.label] = run_id
    tracker.log(group, metrics={**summary_metrics(report), "ablation.skipped": len(report.skipped)})
    for path in files.values():
        tracker.log_artifact(group, Path(path), "ablation")
    tracker.end_run(group, "FINISHED")
    return run_ids


def summary_metrics(report: AblationReport) -> dict[str, float]:
    """Flat ``ablation.*`` metrics for the parent run (NaN values are skipped by the tracker)."""
    out: dict[str, float] = {}
    for m in report.modalities:
        if report.shapley:
            out[f"ablation.shapley.{m}"] = report.shapley[m]["mean"]
            out[f"ablation.shapley.{m}.std"] = report.shapley[m]["std"]
        if m in report.leave_one_out:
            out[f"ablation.loo_drop.{m}"] = report.leave_one_out[m]["mean"]
        if m in report.robustness:
            out[f"ablation.missing_drop.{m}"] = report.robustness[m]["drop"]
    return out

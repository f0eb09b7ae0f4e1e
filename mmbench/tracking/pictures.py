"""Pictures people look at in the MLflow UI: confusion matrix, ROC/PR curves, Optuna history."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_matrix_png(y: np.ndarray, proba: np.ndarray, classes: list[str], path: Path) -> Path:
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4 + 0.4 * len(classes), 4 + 0.4 * len(classes)))
    ConfusionMatrixDisplay.from_predictions(
        y,
        proba.argmax(axis=1),
        labels=list(range(len(classes))),
        display_labels=classes,
        ax=ax,
        colorbar=False,
        xticks_rotation=45,
    )
    ax.set_title("out-of-fold confusion matrix")
    return _save(fig, path)


def roc_pr_png(y: np.ndarray, proba: np.ndarray, classes: list[str], path: Path) -> Path:
    """One-vs-rest ROC and precision-recall curves per class (class 1 only for binary)."""
    from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

    plt = _pyplot()
    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(10, 4.5))
    targets = [1] if len(classes) == 2 else range(len(classes))
    for c in targets:
        RocCurveDisplay.from_predictions(y == c, proba[:, c], name=classes[c], ax=ax_roc)
        PrecisionRecallDisplay.from_predictions(y == c, proba[:, c], name=classes[c], ax=ax_pr)
    ax_roc.set_title("ROC (one-vs-rest)")
    ax_pr.set_title("precision-recall (one-vs-rest)")
    return _save(fig, path)


def optuna_pngs(
    study: Any, directory: Path, rename: Callable[[str], str] | None = None
) -> list[Path]:
    """Optimization history and parameter importances; skips what the study can't support.

    ``rename`` maps Optuna's parameter names to the ones the viewer knows (MLflow's), so the
    importance bars say ``fusion.width``, not ``fusion.attention.d_model``.
    """
    import optuna.visualization.matplotlib as ovm

    _pyplot()
    out = []
    single = len(study.directions) == 1
    plots: dict[str, Any] = {
        "optuna_history.png": ovm.plot_optimization_history,
        "optuna_importances.png": ovm.plot_param_importances,
    }
    if rename is not None:
        plots["optuna_importances.png"] = lambda s, **kw: importances_bars(s, rename, **kw)
    for name, fn in plots.items():
        try:
            kwargs = {} if single else {"target": lambda t: t.values[0]}
            with warnings.catch_warnings():  # "few trials per regime", experimental notices
                warnings.simplefilter("ignore")
                ax = fn(study, **kwargs)
        except (ValueError, RuntimeError, ZeroDivisionError):
            continue  # e.g. importances need >= 2 completed trials with varying params
        fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        out.append(_save(fig, directory / name))
    return out


def importances_bars(study: Any, rename: Callable[[str], str], **kwargs: Any) -> Any:
    """Optuna's fANOVA importances as horizontal bars, summed per renamed parameter."""
    import optuna

    merged: dict[str, float] = {}
    for name, value in optuna.importance.get_param_importances(study, **kwargs).items():
        merged[rename(name)] = merged.get(rename(name), 0.0) + value
    if not merged:
        raise ValueError("no parameter importances")
    names = sorted(merged, key=merged.__getitem__)
    plt = _pyplot()
    _, ax = plt.subplots(figsize=(6, 1 + 0.35 * len(names)))
    ax.barh(names, [merged[n] for n in names], color="#4c72b0")
    ax.set_xlabel("importance (fANOVA)")
    ax.set_title("hyperparameter importances")
    return ax


def _save(fig: Any, path: Path) -> Path:
    plt = _pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
